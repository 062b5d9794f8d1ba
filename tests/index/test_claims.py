"""Claims: every sentence of an answer with the markers that support it (index/answering/claims.py).

The extractive answer's claims are exact by construction. Generated answers come from a small real HTTP server
standing in for the upstream model; it reads the numbered passages it is sent and answers with four scripted
sentences: (a) a claim citing its own passage, (b) a claim citing a passage about something else, (c) a claim
citing nothing that no passage supports, (d) a claim citing a marker past the passages.
"""

import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.service.app import create_app
from citeqa.settings import Settings
from tests.helpers import free_port

QUESTION = "what did Shoygu allege?"
MARKER = re.compile(r"\[(\d+)\]")


def numbered_passages(prompt: str) -> dict[int, str]:
    """The passages of the prompt (prompts/passage.txt: "[n] title" then the text), by marker."""
    parts = re.split(r"^\[(\d+)\] ", prompt.split("Passages:\n", 1)[1].rsplit("\n\nQuestion:", 1)[0], flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def scripted_answer(prompt: str) -> str:
    passages = numbered_passages(prompt)
    if PERSONNEL in prompt.rsplit("Question:", 1)[1]:
        return personnel_answer(passages)
    right = next(n for n, text in passages.items() if "Shoygu alleged" in text)
    wrong = next(n for n, text in passages.items() if "Shoygu alleged" in text and "Starmer" not in text)
    past = len(passages) + 4
    return (
        f"Shoygu alleged that the West's real aim is to establish a foothold in western territories [{right}]. "
        f"Britain's Prime Minister Keir Starmer planned to send peacekeepers to Ukraine [{wrong}]. "
        "The moon is made of green cheese. "
        f"The SVR says the West plans to deploy approximately 100,000 personnel [{past}]."
    )


PERSONNEL = "How many personnel does the SVR say the West would deploy?"


def personnel_answer(passages: dict[int, str]) -> str:
    """Two sentences citing the passage that gives the SVR's figure: one with the number changed (10,000 for
    100,000), one nearly as the passage says it."""
    cited = next(n for n, text in passages.items() if "approximately 100,000 personnel" in text)
    return (
        f"The SVR says Western nations plan to deploy approximately 10,000 personnel under the guise of a peacekeeping "
        f"mission [{cited}]. Western nations are planning to deploy a contingent of approximately 100,000 personnel, "
        f"according to the SVR [{cited}]."
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict:
        body = await request.json()
        content = scripted_answer(body["messages"][-1]["content"])
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


def client_for(seed_settings: Settings, seed_engine: Engine, **update: object) -> TestClient:
    return TestClient(create_app(seed_settings.model_copy(update=update), seed_engine))


def claim_texts(answer: str, claims: list[dict]) -> list[str]:
    return [answer[c["start"] : c["end"]] for c in claims]


def passage_of(body: dict, marker: int) -> str:
    """The full text of the retrieved passage behind marker [n]."""
    chunk_id = body["citations"][marker - 1]["chunk_id"]
    return next(p["text"] for p in body["passages"] if p["citation"]["chunk_id"] == chunk_id)


def test_extractive_claims_cover_the_answer_and_cite_exactly(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "How many personnel would the West deploy?"}).json()
    answer, claims, citations = body["answer"], body["claims"], body["citations"]
    assert body["found"] and body["answered_by"] == "extractive"
    assert len(claims) == len(citations) >= 1
    assert " ".join(claim_texts(answer, claims)) == answer  # the claims are the answer, sentence by sentence
    for n, (claim, text) in enumerate(zip(claims, claim_texts(answer, claims), strict=True), start=1):
        assert claim["citations"] == [n] and text.endswith(f"[{n}]")
        assert text.removesuffix(f" [{n}]") == citations[n - 1]["quote"]
        assert claim["support"] == 1.0 and claim["supported"] is True
    assert "100,000" in claim_texts(answer, claims)[0]


def test_an_extractive_not_found_has_no_claims(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "What is the capital of France?"}).json()
    assert body["found"] is False and body["claims"] == []


def test_generate_without_an_upstream_is_a_400_naming_the_setting(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": QUESTION, "generate": True})
    assert response.status_code == 400
    assert "CITEQA_LLM_BASE_URL" in response.json()["error"]["message"]


def test_generated_claims_are_checked_against_what_they_cite(upstream: str, seed_settings: Settings, seed_engine: Engine) -> None:
    with client_for(seed_settings, seed_engine, llm_base_url=upstream, llm_model="test-model") as http:
        body = http.post("/v1/ask", json={"question": QUESTION, "generate": True}).json()
    answer, claims = body["answer"], body["claims"]
    assert body["answered_by"] == "test-model" and body["found"]
    right, wrong, unsupported, past = claims
    texts = claim_texts(answer, claims)
    for claim, text in zip(claims, texts, strict=True):  # the markers in each span are exactly its citations
        assert [int(m) for m in MARKER.findall(text)] == claim["citations"]
        assert 0 <= claim["support"] <= 1
    # (a) keeps its citation, supported
    assert texts[0].startswith("Shoygu alleged") and right["citations"] == [1] and right["supported"]
    assert "Shoygu alleged" in passage_of(body, 1)
    # (b) loses the marker of the passage about Shoygu, and is re-cited to a passage about Starmer
    assert texts[1].startswith("Britain’s Prime Minister") or texts[1].startswith("Britain's Prime Minister")
    assert wrong["supported"] and len(wrong["citations"]) == 1
    assert "Starmer" in passage_of(body, wrong["citations"][0])
    assert "Shoygu alleged" not in passage_of(body, wrong["citations"][0])
    # (c) no passage supports it: flagged, kept, uncited
    assert texts[2] == "The moon is made of green cheese."
    assert unsupported["supported"] is False and unsupported["citations"] == [] and unsupported["support"] < 0.4
    # (d) the marker past the passages is gone; the sentence is re-cited to the passage that says it
    assert "[9]" not in answer and past["supported"]
    assert "100,000" in passage_of(body, past["citations"][0])
    assert [c["marker"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    assert "removed" not in answer


def test_unsupported_claims_can_be_dropped_with_a_note(upstream: str, seed_settings: Settings, seed_engine: Engine) -> None:
    with client_for(seed_settings, seed_engine, llm_base_url=upstream, llm_model="test-model", unsupported_claims="drop") as http:
        body = http.post("/v1/ask", json={"question": QUESTION, "generate": True}).json()
    answer, claims = body["answer"], body["claims"]
    assert "cheese" not in answer and answer.endswith("(1 unsupported sentence removed.)")
    assert len(claims) == 3 and all(c["supported"] for c in claims)
    assert all(MARKER.findall(text) for text in claim_texts(answer, claims))


def test_ask_generates_by_setting_and_a_request_can_say_no(upstream: str, seed_settings: Settings, seed_engine: Engine) -> None:
    with client_for(seed_settings, seed_engine, llm_base_url=upstream, llm_model="test-model", ask_generate=True) as http:
        generated = http.post("/v1/ask", json={"question": QUESTION}).json()
        extractive = http.post("/v1/ask", json={"question": QUESTION, "generate": False}).json()
    assert generated["answered_by"] == "test-model" and "cheese" in generated["answer"]
    assert extractive["answered_by"] == "extractive" and all(c["support"] == 1.0 for c in extractive["claims"])


def test_streamed_chat_carries_the_claims_on_its_final_chunk(upstream: str, seed_settings: Settings, seed_engine: Engine) -> None:
    request = {"stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with client_for(seed_settings, seed_engine, llm_base_url=upstream, llm_model="test-model") as http:
        plain = http.post("/v1/chat/completions", json=request | {"stream": False}).json()
        events = http.post("/v1/chat/completions", json=request).text
    chunks = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: {")]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert all("claims" not in c for c in chunks[:-1])
    assert final["claims"] == plain["claims"] and len(final["claims"]) == 4
    assert [c["supported"] for c in final["claims"]] == [True, True, False, True]
    texts = claim_texts(content, final["claims"])  # spans index the message content: the answer comes first
    assert texts[0].startswith("Shoygu alleged") and texts[2] == "The moon is made of green cheese."


def test_extractive_chat_has_claims(client: TestClient) -> None:
    body = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}).json()
    content, claims = body["choices"][0]["message"]["content"], body["claims"]
    assert claims and [c["citations"] for c in claims] == [[n] for n in range(1, len(body["citations"]) + 1)]
    assert all(claim_texts(content, claims)[n - 1].endswith(f"[{n}]") for n in range(1, len(claims) + 1))


def test_the_claim_checker_catches_a_changed_number_that_similarity_lets_through(
    upstream: str, seed_settings: Settings, seed_engine: Engine
) -> None:
    """Every word of "deploy approximately 10,000 personnel" but the number is in the passage that says 100,000: the
    similarity check keeps its marker, the claim checker (the default) flags it and keeps the true sentence."""
    answers = {}
    for checker in ("model", "similarity"):
        with client_for(seed_settings, seed_engine, llm_base_url=upstream, llm_model="test-model", claim_checker=checker) as http:
            answers[checker] = http.post("/v1/ask", json={"question": PERSONNEL, "generate": True}).json()
    changed, true = answers["model"]["claims"]
    assert changed["supported"] is False and changed["citations"] == [] and changed["support"] < 0.5
    assert true["supported"] is True and true["citations"] == [1] and true["support"] >= 0.5
    assert "approximately 100,000 personnel" in passage_of(answers["model"], 1)
    similar_changed, similar_true = answers["similarity"]["claims"]
    assert similar_changed["supported"] is True and similar_true["supported"] is True
