"""Scans over HTTP: an uploaded image is read by OCR, answered from with a citation whose boxes lie on the picture,
and drawn back by the page endpoint with the quote highlighted; bad pictures fail with their reason, never a 500."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from citeqa.index.models.embedding import Embedder
from tests import scans
from tests.upload_helpers import files_form, upload_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    with upload_app(tmp_path_factory.mktemp("ocr") / "index", embedder, ocr_max_pages=50) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def scan() -> Image.Image:
    return scans.scanned_page(scans.text_pdf([scans.SCAN_PARAGRAPHS]), dpi=300)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with one tiny compressed row behind it: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_an_uploaded_scan_is_answered_from_and_its_quote_highlighted_on_it(client: TestClient, scan: Image.Image) -> None:
    reply = client.post("/v1/documents", files=files_form({"weir.png": scans.image_bytes(scan, "PNG")}))
    assert reply.status_code == 201, reply.text
    assert reply.json()["files"][0]["media_type"] == "image/png"
    answer = client.post("/v1/ask", json={"question": "How deep was the scour hole below the sill?"}).json()
    citation = answer["citations"][0]
    assert citation["doc_id"] == "weir.png" and citation["page_start"] == 1
    assert "scour hole four metres deep" in citation["quote"]
    assert citation["boxes"] and {box["page"] for box in citation["boxes"]} == {1}
    box = citation["boxes"][0]
    assert 0 < box["x0"] < box["x1"] <= scan.width and 0 < box["y0"] < box["y1"] <= scan.height  # pixels of the scan

    span = {"start": citation["quote_start"], "end": citation["quote_end"]}
    page = client.get("/v1/documents/weir.png/pages/1", params=span)
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"
    drawn = Image.open(io.BytesIO(page.content)).convert("RGB")
    scale = float(page.headers["x-page-scale"])
    assert drawn.size == (round(scan.width * scale), round(scan.height * scale))  # the picture itself
    y = int((box["y0"] + box["y1"]) / 2 * scale)
    row = [drawn.getpixel((int(x * scale), y)) for x in range(int(box["x0"]), int(box["x1"]), 3)]
    assert sum(1 for r, g, b in row if r > 200 and g > 150 and b < 170) > len(row) // 3
    assert client.get("/v1/documents/weir.png/pages/2").status_code == 404
    original = client.get("/v1/documents/weir.png/file")
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert original.headers["content-disposition"].startswith("inline")  # a browser shows the picture itself


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bomb.png", png_declaring(100_000, 100_000), "over the limit of 60 megapixels"),
        ("cut.png", scans.image_bytes(Image.new("L", (400, 300), 255), "PNG")[:120], "corrupt or unreadable image"),
        ("noise.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "corrupt or unreadable image"),
    ],
)
def test_bad_pictures_are_refused_with_their_reason(client: TestClient, name: str, content: bytes, reason: str) -> None:
    reply = client.post("/v1/documents", files=files_form({name: content}))
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert message.startswith(f"{name}: ") and reason in message


def test_a_pdf_of_many_blank_scanned_pages_is_refused_before_any_is_read(client: TestClient) -> None:
    blank = Image.new("L", (85, 110), 255)  # a blank page scanned at 10 dpi: the picture's size does not matter
    pdf = scans.scanned_pdf_of([blank] * 1200, dpi=10)
    reply = client.post("/v1/documents", files=files_form({"blank.pdf": pdf}))
    assert reply.status_code == 400
    assert "1,200 pages have no text layer and need OCR, over the limit of 50" in reply.json()["error"]["message"]


def test_one_bad_picture_never_stops_the_others(client: TestClient, scan: Image.Image) -> None:
    form = files_form({"bomb.png": png_declaring(50_000, 50_000), "weir2.jpg": scans.image_bytes(scan, "JPEG")})
    reply = client.post("/v1/documents", files=form)
    assert reply.status_code == 201, reply.text
    outcomes = {f["filename"]: f for f in reply.json()["files"]}
    assert outcomes["bomb.png"]["status"] == "failed" and "megapixels" in outcomes["bomb.png"]["reason"]
    assert outcomes["weir2.jpg"]["status"] == "added"


def test_a_job_shows_the_pages_ocr_has_read(client: TestClient) -> None:
    pages = [scans.scanned_page(scans.text_pdf([[paragraph]]), dpi=150) for paragraph in scans.SCAN_PARAGRAPHS[1:]]
    tiff = io.BytesIO()
    pages[0].save(tiff, "TIFF", save_all=True, append_images=pages[1:])
    reply = client.post("/v1/documents?wait=false", files=files_form({"counts.tiff": tiff.getvalue()}))
    assert reply.status_code == 202, reply.text
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append(client.get(reply.json()["status_url"]).json())
        if seen[-1]["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    job = seen[-1]
    assert job["state"] == "done", job
    [entry] = job["files"]
    assert entry["status"] == "added" and (entry["pages_read"], entry["pages_to_read"]) == (2, 2)
    assert all(f["pages_read"] in (None, 1, 2) for state in seen for f in state["files"])
