"""GET /v1/documents/{id}/pages/{n}: a PDF page rendered by PDFium, the quote's boxes from the citation drawn on
it; citations of PDFs carry boxes; bad pages and ranges are clear 4xx replies."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from citeqa.index.models.embedding import Embedder
from tests import files
from tests.upload_helpers import files_form, upload_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    with upload_app(tmp_path_factory.mktemp("pages") / "index", embedder) as test_client:
        reply = test_client.post("/v1/documents", files=files_form({"report.pdf": files.report_pdf()}))
        assert reply.status_code == 201, reply.text
        yield test_client


def cited(client: TestClient, question: str) -> dict:
    reply = client.post("/v1/search", json={"query": question, "top_k": 3})
    assert reply.status_code == 200, reply.text
    return next(r["citation"] for r in reply.json()["results"] if r["citation"]["doc_id"] == "report.pdf")


def is_highlight(pixel: tuple[int, ...]) -> bool:
    red, green, blue = pixel[:3]
    return red > 200 and green > 150 and blue < 170  # the translucent yellow over white paper


def test_a_pdf_citation_carries_the_boxes_of_its_quote(client: TestClient) -> None:
    citation = cited(client, "Which sentence is printed on page three?")
    assert citation["quote"] == files.PAGE_THREE_SENTENCE and citation["page_start"] == 3
    [box] = citation["boxes"]
    assert box["page"] == 3
    # Helvetica 10 pt drawn at x=54 pt, 90 pt below the top of the page: the line's box lies around there.
    assert 50 < box["x0"] < 60 and 80 < box["y0"] < box["y1"] < 95 and box["x1"] > 300


def test_the_page_image_shows_the_quote_highlighted(client: TestClient) -> None:
    citation = cited(client, "Which sentence is printed on page three?")
    box = citation["boxes"][0]
    span = {"start": citation["quote_start"], "end": citation["quote_end"]}
    reply = client.get("/v1/documents/report.pdf/pages/3", params=span)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    scale = float(reply.headers["x-page-scale"])
    image = Image.open(io.BytesIO(reply.content)).convert("RGB")
    assert image.size == (round(612 * scale), round(792 * scale))  # a letter page
    inside = (int((box["x0"] + 5) * scale), int((box["y0"] + box["y1"]) / 2 * scale))
    # between two letters, a bit above the baseline: paper under the highlight
    assert any(is_highlight(image.getpixel((inside[0] + dx, inside[1]))) for dx in range(0, 20))
    below = (inside[0], int((box["y1"] + 30) * scale))
    assert image.getpixel(below) == (255, 255, 255)  # the rest of the page is untouched
    plain = Image.open(io.BytesIO(client.get("/v1/documents/report.pdf/pages/3").content)).convert("RGB")
    assert not any(is_highlight(plain.getpixel((inside[0] + dx, inside[1]))) for dx in range(0, 20))


def test_a_page_without_text_is_drawn_too(client: TestClient) -> None:
    reply = client.get("/v1/documents/report.pdf/pages/4")  # the picture page
    assert reply.status_code == 200
    image = Image.open(io.BytesIO(reply.content)).convert("RGB")
    scale = float(reply.headers["x-page-scale"])
    # the picture is drawn at x 150-450, y 400-600 from the bottom of a 792 pt page: its middle is blue
    assert image.getpixel((int(300 * scale), int((792 - 500) * scale))) == (40, 90, 160)


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/v1/documents/report.pdf/pages/6", {}, 404, "out of range"),
        ("/v1/documents/report.pdf/pages/0", {}, 422, ""),
        ("/v1/documents/report.pdf/pages/x", {}, 422, ""),
        ("/v1/documents/report.pdf/pages/1", {"start": 5}, 400, "both start and end"),
        ("/v1/documents/report.pdf/pages/1", {"start": 9, "end": 3}, 400, "start < end"),
        ("/v1/documents/report.pdf/pages/1", {"start": 0, "end": 10_000_000}, 400, "start < end"),
        ("/v1/documents/missing.pdf/pages/1", {}, 404, "missing.pdf"),
    ],
)
def test_bad_pages_and_ranges_are_refused(client: TestClient, path: str, params: dict, status: int, words: str) -> None:
    reply = client.get(path, params=params)
    assert reply.status_code in ((400, 422) if status == 422 else (status,)), reply.text
    assert words in reply.json()["error"]["message"]


def test_a_document_without_pages_has_no_page_images(client: TestClient) -> None:
    seed = client.get("/v1/documents", params={"limit": 1}).json()["documents"][0]["id"]
    reply = client.get(f"/v1/documents/{seed}/pages/1")
    assert reply.status_code == 404 and "no pages" in reply.json()["error"]["message"]


def test_text_citations_carry_no_boxes(client: TestClient) -> None:
    reply = client.post("/v1/search", json={"query": "what did Shoygu allege?", "top_k": 1})
    assert reply.json()["results"][0]["citation"]["boxes"] == []
