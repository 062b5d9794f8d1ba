"""The README's first command, for real: `citeqa serve` builds the seed index and answers over HTTP."""

from pathlib import Path

import httpx
import pytest

from tests.conftest import SEED_ID
from tests.helpers import running_server

pytestmark = pytest.mark.slow  # a real `citeqa serve`; tests/service/test_api.py asks the same app in process


def test_serve_builds_the_seed_index_and_answers_over_http(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    with running_server(index_dir) as base:
        response = httpx.post(f"{base}/v1/search", json={"query": "what did Shoygu allege?"}, timeout=30)
        assert response.status_code == 200
        first = response.json()["results"][0]["citation"]
        assert "Shoygu alleged" in first["quote"]
        text = httpx.get(f"{base}/v1/documents/{SEED_ID}", timeout=30).json()["text"]
        assert text[first["quote_start"] : first["quote_end"]] == first["quote"]
        bad = httpx.post(f"{base}/v1/search", json={"query": " "}, timeout=30)
        assert bad.status_code == 400 and "non-whitespace" in bad.json()["error"]["message"]
    assert (index_dir / "manifest.json").is_file() and (index_dir / "catalog.sqlite").is_file()
