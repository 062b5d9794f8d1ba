"""Chat through an upstream OpenAI-compatible server.

No language model can run here, so the upstream is a small real HTTP server that answers like one
(a fixed reply with one valid and one invented citation marker) and records what it was sent.
"""

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.service.app import create_app
from citeqa.service.prompts import load_prompt
from citeqa.settings import Settings
from tests.helpers import free_port

REPLY = (
    "Shoygu said the European peacekeeping mission carries the hallmark of a planned occupation of western Ukraine [2]. "
    "He also chairs a committee [7]."
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict:
        body = await request.json()
        received.append(body)
        rewriting = "standalone" in body["messages"][0]["content"]
        content = "What position does Shoygu hold?" if rewriting else REPLY
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", received
    server.should_exit = True
    thread.join(timeout=10)


def chat_client(seed_settings: Settings, seed_engine: Engine, base_url: str) -> TestClient:
    settings = seed_settings.model_copy(update={"llm_base_url": base_url, "llm_model": "test-model"})
    return TestClient(create_app(settings, seed_engine))


def test_the_upstream_answer_keeps_only_markers_of_passages_it_was_given(
    upstream: tuple[str, list[dict]], seed_settings: Settings, seed_engine: Engine
) -> None:
    base_url, received = upstream
    with chat_client(seed_settings, seed_engine, base_url) as client:
        body = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "what did Shoygu allege?"}]}
        ).json()
    content = body["choices"][0]["message"]["content"]
    assert "[7]" not in content and "[1]" in content  # [2] renumbered to [1]; [7] named no passage and is dropped
    assert body["citeqa"]["answered_by"] == "test-model"
    [citation] = body["citations"]
    assert citation["marker"] == 1
    sent = received[-1]
    assert sent["model"] == "test-model"
    assert sent["messages"][0]["content"] == load_prompt("system")
    assert (
        "[1] Russia Rejects" in sent["messages"][1]["content"]
        and "Question: what did Shoygu allege?" in sent["messages"][1]["content"]
    )
    passage_two = sent["messages"][1]["content"].split("[2] ")[1].split("\n[3] ")[0]
    assert (
        citation["quote"] in passage_two
        or passage_two.strip().endswith(citation["quote"][-40:])
        or citation["quote"][:40] in passage_two
    )


def test_follow_ups_are_condensed_by_the_upstream_model(
    upstream: tuple[str, list[dict]], seed_settings: Settings, seed_engine: Engine
) -> None:
    base_url, received = upstream
    messages = [
        {"role": "user", "content": "what did Shoygu allege?"},
        {"role": "assistant", "content": "He alleged ... [1]"},
        {"role": "user", "content": "What position does he hold?"},
    ]
    with chat_client(seed_settings, seed_engine, base_url) as client:
        body = client.post("/v1/chat/completions", json={"messages": messages}).json()
    assert body["citeqa"]["query"] == "What position does Shoygu hold?"
    assert any("user: What position does he hold?" in m["messages"][1]["content"] for m in received)


def test_an_unreachable_upstream_is_a_502_naming_it(seed_settings: Settings, seed_engine: Engine) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with chat_client(seed_settings, seed_engine, dead) as client:
        response = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "what did Shoygu allege?"}]}
        )
    assert response.status_code == 502
    assert dead in response.json()["error"]["message"]
