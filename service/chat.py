"""Chat replies: the cited answer for a conversation, extractive or from an upstream language model."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import httpx

from citeqa.index.answering.claims import Claim, check_claims, extractive_claims
from citeqa.index.answering.compose import NOT_FOUND
from citeqa.index.engine import Engine
from citeqa.index.ranking.evidence import Passage
from citeqa.service.conversation import Turn, condense
from citeqa.service.errors import ApiError
from citeqa.service.prompts import load_prompt, render
from citeqa.settings import Settings

log = logging.getLogger("citeqa")
MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class ChatReply:
    content: str  # the message text: answer with [n] markers, then the sources
    cited: list[Passage]  # cited[n - 1] is the source of marker [n]
    query: str
    found: bool
    answered_by: str
    claims: list[Claim] = field(default_factory=list)  # spans index the content too: the answer comes first


def sources_block(cited: list[Passage]) -> str:
    lines = [f"[{n}] {p.document.title}: “{p.quote.text}”" for n, p in enumerate(cited, start=1)]
    return "Sources:\n" + "\n".join(lines) if lines else ""


def message_text(answer: str, cited: list[Passage], query: str, last_question: str) -> str:
    parts = [answer]
    if cited:
        parts.append(sources_block(cited))
    if query.strip() != last_question.strip():
        parts.append(f"Searched for: {query}")
    return "\n\n".join(parts)


def keep_known_markers(text: str, passage_count: int) -> str:
    """Drop [n] markers that point at no passage the model was given."""
    cleaned = MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= passage_count else "", text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()


def renumber(text: str, passages: list[Passage]) -> tuple[str, list[Passage]]:
    """Markers renumbered 1..m in order of first use; returns the text and the cited passages in that order."""
    order: list[int] = []
    for match in MARKER.finditer(text):
        index = int(match.group(1)) - 1
        if index not in order:
            order.append(index)
    return MARKER.sub(lambda m: f"[{order.index(int(m.group(1)) - 1) + 1}]", text), [passages[i] for i in order]


class UpstreamModel:
    """Any OpenAI-compatible /chat/completions server (llama.cpp, Ollama, vLLM, ...)."""

    def __init__(self, settings: Settings) -> None:
        self.base_url = (settings.llm_base_url or "").rstrip("/")
        self.model = settings.llm_model
        self.headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
        self.timeout = settings.llm_timeout

    def complete(self, system: str, user: str) -> str:
        payload = {"model": self.model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        try:
            response = httpx.post(f"{self.base_url}/chat/completions", json=payload, headers=self.headers, timeout=self.timeout)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("upstream language model failed: %s", exc)
            raise ApiError(502, f"the language model at {self.base_url} did not give an answer ({type(exc).__name__})") from exc


def clip_query(query: str, limit: int) -> str:
    """A follow-up is searched together with an earlier question (or as a model rewrote it), which can make the
    query longer than any one question may be; the question-length limit holds for what is searched, so the
    end (the latest words) is kept, from a word boundary. The reply shows the query as searched."""
    if len(query) <= limit:
        return query
    clipped = query[-limit:]
    boundary = clipped.find(" ")
    return clipped[boundary + 1 :] if 0 <= boundary < len(clipped) - 1 else clipped


def condense_with_model(model: UpstreamModel, turns: list[Turn]) -> str:
    conversation = "\n".join(f"{t.role}: {t.content}" for t in turns if t.role in ("user", "assistant"))
    rewritten = model.complete(
        "You rewrite follow-up questions as standalone questions.", render("condense", conversation=conversation)
    )
    return rewritten.strip().strip('"').strip() or condense(turns)


@dataclass(frozen=True)
class Generated:
    answer: str
    cited: list[Passage]  # cited[n - 1] is the source of marker [n]
    claims: list[Claim]
    found: bool


def generate_answer(engine: Engine, settings: Settings, model: UpstreamModel, query: str, passages: list[Passage]) -> Generated:
    """The upstream model's answer from the numbered passages, every sentence checked against what it cites
    (index/answering/claims.py): unsupporting or unknown markers removed, unsupported sentences re-cited, flagged or dropped."""
    blocks = "\n\n".join(render("passage", marker=str(p.rank), title=p.document.title, text=p.chunk.text) for p in passages)
    raw = model.complete(load_prompt("system"), render("context", passages=blocks, question=query)).strip()
    said = keep_known_markers(raw, len(passages))
    if not said or NOT_FOUND.rstrip(".").lower() in said.lower():
        return Generated(said or NOT_FOUND, [], [], False)
    evidence = [p.chunk.text for p in passages]
    checked = check_claims(raw, evidence, engine.support_scorer(passages, settings.claim_checker), settings.claim_settings())
    return Generated(checked.text, [passages[i] for i in checked.cited], checked.claims, checked.found)


def reply(engine: Engine, settings: Settings, turns: list[Turn]) -> ChatReply:
    last_question = next(t.content for t in reversed(turns) if t.role == "user" and t.content.strip())
    if not settings.llm_base_url:
        query = clip_query(condense(turns), settings.max_question_chars)
        answer = engine.ask(query, settings.answer_top_k)
        text = message_text(answer.composed.text, answer.cited, query, last_question)
        claims = extractive_claims(answer.composed)
        return ChatReply(text, answer.cited, query, answer.composed.found, "extractive", claims)

    model = UpstreamModel(settings)
    follow_up = sum(t.role == "user" for t in turns) > 1
    query = clip_query(condense_with_model(model, turns) if follow_up else condense(turns), settings.max_question_chars)
    passages = engine.search(query, settings.answer_top_k)
    generated = generate_answer(engine, settings, model, query, passages)
    text = message_text(generated.answer, generated.cited, query, last_question)
    return ChatReply(text, generated.cited, query, generated.found, settings.llm_model, generated.claims)
