"""The OpenAI-compatible endpoints, driven by the official `openai` client against a real server."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import SEED_ID
from tests.helpers import running_server

# A real `citeqa serve` for the official client; test_limits and test_upstream_model ask the same routes in process.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("chat-index")) as base:
        yield base


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


def test_models_lists_citeqa(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["citeqa"]


def test_a_plain_completion_is_a_cited_answer(client: openai.OpenAI, server: str) -> None:
    completion = client.chat.completions.create(
        model="citeqa",
        messages=[{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "what did Shoygu allege?"}],
        temperature=0.2,  # accepted and ignored, like other optional parameters
        max_tokens=300,
    )
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert "Shoygu alleged" in content and "[1]" in content and "Sources:" in content
    extra = completion.model_extra
    [first, *_] = extra["citations"]
    assert first["marker"] == 1 and first["doc_id"] == SEED_ID
    text = httpx.get(f"{server}/v1/documents/{SEED_ID}").json()["text"]
    assert text[first["quote_start"] : first["quote_end"]] == first["quote"]
    assert extra["citeqa"]["query"] == "what did Shoygu allege?"


def test_a_streamed_completion_ends_with_citations_and_done(client: openai.OpenAI, server: str) -> None:
    stream = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": "what did Shoygu allege?"}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Shoygu alleged" in text and "[1]" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["quote"] in text
    with httpx.stream(
        "POST", f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "Shoygu"}], "stream": True}
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize(
    ("follow_up", "searched", "expected"),
    [
        ("What position does he hold?", "What position does Shoygu hold?", "Security Council"),
        ("And what did the SVR claim?", "what did the SVR claim?", "SVR"),
    ],
)
def test_follow_ups_are_resolved_and_the_searched_query_is_shown(
    client: openai.OpenAI, follow_up: str, searched: str, expected: str
) -> None:
    completion = client.chat.completions.create(
        model="citeqa",
        messages=[
            {"role": "user", "content": "what did Shoygu allege?"},
            {"role": "assistant", "content": "Shoygu alleged that the West’s intentions are obscured [1]"},
            {"role": "user", "content": follow_up},
        ],
    )
    content = completion.choices[0].message.content
    assert completion.model_extra["citeqa"]["query"] == searched
    assert f"Searched for: {searched}" in content
    assert any(expected in c["quote"] for c in completion.model_extra["citations"])


def test_content_parts_are_read_as_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": [{"type": "text", "text": "Who is Britain's prime minister?"}]}]
    )
    assert "Keir Starmer" in completion.choices[0].message.content


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([], "must not be empty"),
        ([{"role": "system", "content": "hi"}], "role 'user'"),
        ([{"role": "user", "content": "   "}], "no text"),
        ([{"role": "robot", "content": "hi"}], "role"),
    ],
)
def test_bad_conversations_are_400s_in_the_openai_error_shape(client: openai.OpenAI, messages: list, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="citeqa", messages=messages)
    assert caught.value.status_code == 400
    assert needle in caught.value.body["message"]
    assert caught.value.body["type"] == "invalid_request_error"


def test_the_chat_page_is_served(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text
    script = httpx.get(f"{server}/static/app.js")
    assert script.status_code == 200 and "chat/completions" in script.text
    assert "http" not in Path(__file__).parents[2].joinpath("service/static/app.js").read_text().replace("HTTP ", "")
