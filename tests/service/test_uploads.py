"""Uploads over HTTP: multipart files parsed, indexed and cited by page or section; originals served back; limits
and hostile names refused with clear 4xx replies; the JSON form unchanged."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.originals import INCOMING_DIR, ORIGINALS_DIR
from citeqa.settings import Settings
from tests import files
from tests.conftest import SEED_ID
from tests.helpers import running_server
from tests.upload_helpers import files_form, multipart, upload_app


@pytest.fixture(scope="module")
def mixed() -> tuple[dict[str, bytes], dict[str, str]]:
    return files.mixed_folder_files()


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, mixed) -> Iterator[tuple[TestClient, dict]]:
    """An app whose collection holds the seed document and the mixed folder, uploaded in one request; and the reply."""
    with upload_app(tmp_path_factory.mktemp("uploads") / "index", embedder) as test_client:
        contents, _ = mixed
        reply = test_client.post("/v1/documents", files=files_form(contents))
        assert reply.status_code == 201, reply.text
        yield test_client, reply.json()


@pytest.fixture
def client(uploaded: tuple[TestClient, dict]) -> TestClient:
    return uploaded[0]


def index_folder(client: TestClient) -> Path:
    return client.app.state.engine.collection.folder


def test_one_request_of_fifteen_files_reports_each_file(uploaded: tuple[TestClient, dict], mixed) -> None:
    contents, reasons = mixed
    reply = uploaded[1]
    assert [f["filename"] for f in reply["files"]] == list(contents)  # in the order sent
    outcomes = {f["id"] or f["filename"]: f for f in reply["files"]}
    for name in contents:
        if name in reasons:
            assert outcomes[name]["status"] == "failed" and reasons[name] in outcomes[name]["reason"]
            assert outcomes[name]["document"] is None
        else:
            assert outcomes[name]["status"] == "added", outcomes[name]
            assert outcomes[name]["document"]["id"] == name and outcomes[name]["document"]["chunks"] > 0
            assert outcomes[name]["bytes"] == len(contents[name])
    assert (reply["added"], reply["updated"], reply["unchanged"], reply["failed"]) == (10, 0, 0, 5)
    assert outcomes["notes/plan.md"]["media_type"] == "text/markdown"
    assert outcomes["notes/plan.md"]["document"]["source"] == "upload/notes/plan.md"


def test_the_same_upload_again_is_unchanged_and_nothing_is_written(client: TestClient, mixed) -> None:
    contents, _ = mixed
    generation = client.app.state.engine.collection.generation()
    good = {name: data for name, data in contents.items() if name in ("survey.pdf", "notes/plan.md")}
    reply = client.post("/v1/documents", files=files_form(good))
    assert reply.status_code == 200
    assert [f["status"] for f in reply.json()["files"]] == ["unchanged", "unchanged"]
    assert client.app.state.engine.collection.generation() == generation


def test_an_answer_on_page_three_is_cited_with_page_three_and_the_original_comes_back(client: TestClient, mixed) -> None:
    contents, _ = mixed
    answer = client.post("/v1/ask", json={"question": "Which sentence is printed on page three?"}).json()
    assert answer["found"]
    first = answer["citations"][0]
    assert first["doc_id"] == "survey.pdf"
    assert (first["page_start"], first["page_end"], first["section"]) == (3, 3, None)
    assert first["quote"] == files.PAGE_THREE_SENTENCE
    document = client.get("/v1/documents/survey.pdf").json()
    assert document["text"][first["quote_start"] : first["quote_end"]] == first["quote"]
    assert first["sha256"] == document["sha256"] == hashlib.sha256(document["text"].encode()).hexdigest()
    assert document["pages"] == 5 and document["media_type"] == "application/pdf"
    assert document["original"]["url"] == "/v1/documents/survey.pdf/file"
    assert document["original"]["sha256"] == hashlib.sha256(contents["survey.pdf"]).hexdigest()

    original = client.get(document["original"]["url"])
    assert original.status_code == 200
    assert original.content == contents["survey.pdf"]
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"].startswith("inline")


def test_word_html_and_markdown_citations_name_their_section(client: TestClient) -> None:
    cases = [
        ("Which valley lost the most ice?", "field.docx", "Results"),
        ("When does the upper hut open?", "notes/bulletin.html", "Hut bulletin"),
        ("Where is the weather station set up in week one?", "notes/plan.md", "Field plan > Week one"),
    ]
    for question, doc_id, section in cases:
        results = client.post("/v1/search", json={"query": question, "top_k": 3}).json()["results"]
        citation = next(r["citation"] for r in results if r["citation"]["doc_id"] == doc_id)
        assert citation["section"] == section, (question, citation)
        assert citation["page_start"] is None


def test_nested_ids_get_their_file_and_their_json_at_distinct_paths(client: TestClient, mixed) -> None:
    contents, _ = mixed
    assert client.get("/v1/documents/notes/plan.md/file").content == contents["notes/plan.md"]
    detail = client.get("/v1/documents/notes/plan.md")
    assert detail.headers["content-type"] == "application/json" and detail.json()["id"] == "notes/plan.md"
    word = client.get("/v1/documents/field.docx/file")
    assert word.headers["content-disposition"].startswith("attachment")  # browsers cannot show Word files
    latin = client.get("/v1/documents/latin.txt/file")
    assert latin.headers["content-type"] == "text/plain; charset=windows-1252" and latin.content == contents["latin.txt"]


def test_an_uploaded_html_original_cannot_run_as_this_site(client: TestClient) -> None:
    page = client.get("/v1/documents/article.html/file")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox") and "default-src 'none'" in policy


def test_documents_without_an_original_say_so(client: TestClient) -> None:
    client.post("/v1/documents", json={"id": "typed.txt", "text": "Typed straight into the API, with no file behind it."})
    missing = client.get("/v1/documents/typed.txt/file")
    assert missing.status_code == 404 and "no original file" in missing.json()["error"]["message"]
    assert client.get("/v1/documents/typed.txt").json()["original"] is None
    assert client.get("/v1/documents/nowhere.pdf/file").status_code == 404


def test_an_id_ending_in_file_is_still_readable(client: TestClient) -> None:
    client.post("/v1/documents", json={"id": "notes/file", "text": "A note whose id ends in the word file."})
    reply = client.get("/v1/documents/notes/file")
    assert reply.status_code == 200 and reply.json()["id"] == "notes/file"


def test_the_one_file_of_an_unsupported_type_is_a_415(client: TestClient, mixed) -> None:
    contents, _ = mixed
    before = client.get("/v1/documents").json()
    reply = client.post("/v1/documents", files=files_form({"picture.gif": files.gif_image()}))
    assert reply.status_code == 415
    assert "picture.gif" in reply.json()["error"]["message"] and "GIF image" in reply.json()["error"]["message"]
    scanned = client.post("/v1/documents", files=files_form({"scanned.pdf": contents["scanned.pdf"]}))
    assert scanned.status_code == 400 and "OCR found no words" in scanned.json()["error"]["message"]
    assert client.get("/v1/documents").json() == before


def test_hostile_names_are_refused_and_the_other_files_still_go_in(client: TestClient) -> None:
    names = [b"../escape.txt", b"/etc/passwd.txt", b"a\\b.txt", b"nul\x00.txt", b"tab\tname.txt", b"del\x7f.txt"]
    parts = [(b"files", name, b"Hostile names never become documents.") for name in names]
    parts.append((b"files", b"harmless.txt", b"The harmless file about lighthouse keepers is added."))
    content_type, body = multipart(parts)
    reply = client.post("/v1/documents", content=body, headers={"content-type": content_type})
    assert reply.status_code == 201, reply.text
    outcomes = reply.json()["files"]
    assert [o["status"] for o in outcomes] == ["failed"] * len(names) + ["added"]
    for outcome in outcomes[:-1]:
        assert outcome["id"] is None and "refused" in outcome["reason"]
    # Nothing was written by name anywhere: originals are named by their hash, uploads by their number.
    folder = index_folder(client)
    assert not (folder.parent / "escape.txt").exists() and not (folder / "escape.txt").exists()
    assert all(len(p.name) == 64 for p in (folder / ORIGINALS_DIR).iterdir() if p.name != INCOMING_DIR)
    assert list((folder / ORIGINALS_DIR / INCOMING_DIR).iterdir()) == []  # the request's temporary files are gone


def test_ids_can_be_given_and_are_checked_like_names(client: TestClient) -> None:
    content_type, body = multipart(
        [
            (b"files", b"one.txt", b"The first of two files sent with ids, about tide tables."),
            (b"files", b"two.txt", b"The second of two files sent with ids, about ferry timetables."),
            (b"ids", None, b"coast/tides.txt"),
            (b"ids", None, b"../ferries.txt"),
        ]
    )
    reply = client.post("/v1/documents", content=body, headers={"content-type": content_type}).json()
    assert [(f["id"], f["status"]) for f in reply["files"]] == [("coast/tides.txt", "added"), (None, "failed")]
    assert "id '../ferries.txt' refused" in reply["files"][1]["reason"]


@pytest.mark.parametrize(
    ("parts", "needle"),
    [
        ([(b"ids", None, b"x.txt")], "no files"),
        ([(b"files", b"a.txt", b"A"), (b"files", b"b.txt", b"B"), (b"ids", None, b"a.txt")], "1 'ids' for 2 files"),
        ([(b"files", None, b"text, not a file")], "must be a file"),
        ([(b"attachment", b"a.txt", b"A")], "unknown form field 'attachment'"),
    ],
)
def test_malformed_forms_are_400s(client: TestClient, parts: list, needle: str) -> None:
    content_type, body = multipart(parts)
    reply = client.post("/v1/documents", content=body, headers={"content-type": content_type})
    assert reply.status_code == 400 and needle in reply.json()["error"]["message"]


def test_a_broken_multipart_body_and_a_foreign_content_type_are_refused(client: TestClient) -> None:
    broken = client.post("/v1/documents", content=b"no boundary here", headers={"content-type": "multipart/form-data"})
    assert broken.status_code == 400 and "boundary" in broken.json()["error"]["message"]
    truncated = client.post(
        "/v1/documents", content=b"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\nab",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )  # fmt: skip
    assert truncated.status_code == 400
    assert client.post("/v1/documents", content=b"id=x", headers={"content-type": "text/plain"}).status_code == 415


def test_uploads_into_a_named_collection_stay_there(client: TestClient, mixed) -> None:
    contents, _ = mixed
    assert client.post("/v1/collections", json={"name": "surveys"}).status_code == 201
    reply = client.post("/v1/collections/surveys/documents", files=files_form({"hares.pdf": contents["hares.pdf"]}))
    assert reply.status_code == 201
    detail = client.get("/v1/collections/surveys/documents/hares.pdf").json()
    assert detail["original"]["url"] == "/v1/collections/surveys/documents/hares.pdf/file"
    assert client.get(detail["original"]["url"]).content == contents["hares.pdf"]
    cited = client.post("/v1/collections/surveys/ask", json={"question": "When did the hare count peak?"}).json()
    assert cited["citations"][0]["page_start"] == 2


# -- limits -------------------------------------------------------------------------------------------------------

LIMITS = {
    "max_upload_file_bytes": 20_000,
    "max_upload_bytes": 60_000,
    "max_upload_files": 3,
    "max_request_bytes": 4096,
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    with upload_app(tmp_path_factory.mktemp("limited") / "index", embedder, **LIMITS) as test_client:
        yield test_client


def text_file(size: int, word: str = "glacier ") -> bytes:
    return (word * (size // len(word) + 1)).encode()[:size]


def test_a_file_over_the_per_file_limit_is_a_413_naming_it(limited: TestClient) -> None:
    reply = limited.post("/v1/documents", files=files_form({"big.txt": text_file(25_000)}))
    assert reply.status_code == 413
    assert "big.txt" in reply.json()["error"]["message"] and "CITEQA_MAX_UPLOAD_FILE_BYTES" in reply.json()["error"]["message"]


def test_too_many_files_is_a_413_naming_the_limit(limited: TestClient) -> None:
    reply = limited.post("/v1/documents", files=files_form({f"{n}.txt": b"small note %d" % n for n in range(4)}))
    assert reply.status_code == 413 and "CITEQA_MAX_UPLOAD_FILES" in reply.json()["error"]["message"]


def test_a_request_over_the_upload_limit_is_a_413_declared_or_streamed(limited: TestClient) -> None:
    form = files_form({f"{n}.txt": text_file(19_990, f"word{n} ") for n in range(3)})
    declared = limited.post("/v1/documents", files=form)
    assert declared.status_code == 413 and "CITEQA_MAX_UPLOAD_BYTES" in declared.json()["error"]["message"]
    content_type, body = multipart([(b"files", f"{n}.txt".encode(), text_file(19_990)) for n in range(3)])

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = limited.post("/v1/documents", content=chunks(), headers={"content-type": content_type})
    assert streamed.status_code == 413 and "CITEQA_MAX_UPLOAD_BYTES" in streamed.json()["error"]["message"]
    assert limited.get("/v1/documents").json()["documents"][0]["id"] == SEED_ID
    assert len(limited.get("/v1/documents").json()["documents"]) == 1


def test_uploads_have_their_own_limits_and_json_keeps_the_request_limit(limited: TestClient) -> None:
    # 10 kB of file is over CITEQA_MAX_REQUEST_BYTES (4 kB) but within the upload limits: accepted.
    upload = limited.post("/v1/documents", files=files_form({"notes.txt": text_file(10_000, "moraine ")}))
    assert upload.status_code == 201, upload.text
    as_json = limited.post("/v1/documents", json={"id": "long.txt", "text": "moraine " * 1000})
    assert as_json.status_code == 413 and "CITEQA_MAX_REQUEST_BYTES" in as_json.json()["error"]["message"]


@pytest.mark.slow
def test_an_oversized_declared_upload_is_refused_before_its_body_is_sent(tmp_path: Path) -> None:
    """Over a real socket: the 413 comes back although not one byte of the declared gigabyte was sent."""
    with running_server(tmp_path / "index", CITEQA_MAX_UPLOAD_BYTES="1000000") as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(
                b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000000\r\n\r\n"
            )
            reply = b""  # read until the message arrives: headers and body may come in separate packets
            while b"CITEQA_MAX_UPLOAD_BYTES" not in reply and (chunk := connection.recv(65536)):
                reply += chunk
    status_line, _, rest = reply.decode("latin-1").partition("\r\n")
    assert " 413 " in status_line
    assert "CITEQA_MAX_UPLOAD_BYTES" in rest


def test_the_json_form_is_unchanged(tmp_path: Path, embedder: Embedder) -> None:
    with upload_app(tmp_path / "index", embedder) as plain:
        added = plain.post("/v1/documents", json={"id": "n.md", "text": "# Note\n\nThe lake froze in December."})
        assert added.status_code == 201 and added.json()["status"] == "added" and added.json()["document"]["title"] == "Note"
        bad = plain.post("/v1/documents", json={"id": "../n.md", "text": "x"})
        assert bad.status_code == 400 and "'..'" in bad.json()["error"]["message"]
        malformed = plain.post("/v1/documents", content=b"{not json", headers={"content-type": "application/json"})
        assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]["message"]
        spec = plain.get("/openapi.json").json()["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
        assert set(spec) == {"application/json", "multipart/form-data"}
        assert "/v1/documents/{doc_id}/file" in plain.get("/openapi.json").json()["paths"]


def test_settings_defaults_for_uploads() -> None:
    settings = Settings()
    assert settings.max_upload_file_bytes == 50 * 1024 * 1024
    assert settings.max_upload_bytes == 200 * 1024 * 1024
    assert settings.max_upload_files == 100
    assert settings.upload_job_bytes == 2 * 1024 * 1024
