"""The MCP server, driven by the official SDK's client over both transports a user would configure:
`python -m citeqa mcp` over stdio, and /mcp over streamable HTTP on a real `citeqa serve`.

The SDK client is async; a blocking portal runs it on its own event loop thread so each server is started
once per module and the tests stay plain functions.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from tests.conftest import SEED_ID
from tests.helpers import CITEQA, citeqa_env, run_citeqa, running_server

pytestmark = pytest.mark.slow  # real `citeqa mcp` and `citeqa serve` processes, each building its own seed index

TOOLS = {"search", "ask", "list_documents", "get_document"}
# Both servers run with limits other than the defaults: the tools must apply the server's settings, as HTTP does.
MAX_QUERY_CHARS, MAX_TOP_K = 300, 7
LIMITS = {"CITEQA_MAX_QUESTION_CHARS": str(MAX_QUERY_CHARS), "CITEQA_MAX_TOP_K": str(MAX_TOP_K)}
SHOYGU = "what did Shoygu allege?"


class McpClient:
    """One initialised ClientSession, called synchronously."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal, self.session = portal, session

    def tools(self) -> dict[str, Any]:
        return {tool.name: tool for tool in self.portal.call(self.session.list_tools).tools}

    def call(self, name: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.session.call_tool, name, arguments)

    def data(self, name: str, **arguments: Any) -> dict[str, Any]:
        """A successful call's structured content, checked against the JSON text sent beside it."""
        result = self.call(name, **arguments)
        assert not result.is_error, result.content
        assert isinstance(result.content[0], TextContent)
        assert json.loads(result.content[0].text) == result.structured_content
        return result.structured_content


@contextmanager
def connect(transport: AbstractAsyncContextManager[Any]) -> Iterator[McpClient]:
    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        async with transport as (read, write), ClientSession(read, write, read_timeout_seconds=120) as client_session:
            await client_session.initialize()
            yield client_session

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(session()) as client_session:
        yield McpClient(portal, client_session)


@pytest.fixture(scope="module")
def stdio_mcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpClient]:
    home = tmp_path_factory.mktemp("mcp-home")
    env = citeqa_env(home / "collections" / "default", CITEQA_HOME=str(home), **LIMITS)
    built = run_citeqa("index", env=env)
    assert built.returncode == 0, built.stderr
    server = StdioServerParameters(command=CITEQA[0], args=[*CITEQA[1:], "mcp"], env=env)
    with (home / "mcp-stderr.log").open("w") as errlog, connect(stdio_client(server, errlog=errlog)) as client:
        yield client


@pytest.fixture(scope="module")
def http_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("mcp-http") / "index", **LIMITS) as base:  # serve builds the seed index
        yield base


@pytest.fixture(scope="module")
def http_mcp(http_base: str) -> Iterator[McpClient]:
    with connect(streamable_http_client(f"{http_base}/mcp")) as client:
        yield client


@pytest.fixture(scope="module", params=["stdio", "http"])
def mcp(request: pytest.FixtureRequest) -> McpClient:
    return request.getfixturevalue(f"{request.param}_mcp")


def test_lists_the_four_tools_with_their_limits(mcp: McpClient) -> None:
    tools = mcp.tools()
    assert set(tools) >= TOOLS
    for name in TOOLS:
        assert tools[name].description and tools[name].output_schema, name
    query = tools["search"].input_schema["properties"]
    assert query["top_k"]["maximum"] == MAX_TOP_K and query["query"]["maxLength"] == MAX_QUERY_CHARS
    assert "quote_start" in tools["get_document"].description
    paging = tools["list_documents"].input_schema["properties"]
    assert (paging["limit"]["minimum"], paging["limit"]["maximum"], paging["limit"]["default"]) == (1, 1000, 100)
    assert "cursor" in paging and "next_cursor" in tools["list_documents"].description


def test_ask_answers_shoygu_with_exact_quotes(mcp: McpClient) -> None:
    answer = mcp.data("ask", question=SHOYGU)
    assert answer["found"] and "Shoygu alleged" in answer["answer"] and "[1]" in answer["answer"]
    assert answer["citations"] and answer["citations"][0]["marker"] == 1
    for citation in answer["citations"]:
        document = mcp.data("get_document", id=citation["doc_id"])
        assert document["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
        assert document["characters"] == len(document["text"])


def test_search_ranks_passages_whose_offsets_hold(mcp: McpClient) -> None:
    found = mcp.data("search", query=SHOYGU, top_k=3)
    results = found["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert "Shoygu alleged" in results[0]["citation"]["quote"]
    for result in results:
        citation = result["citation"]
        passage = mcp.data("get_document", id=citation["doc_id"], start=citation["start"], end=citation["end"])
        assert passage["text"] == result["text"]


def test_get_document_reads_around_a_quote(mcp: McpClient) -> None:
    citation = mcp.data("ask", question=SHOYGU)["citations"][0]
    start, end = citation["quote_start"] - 40, citation["quote_end"] + 40
    window = mcp.data("get_document", id=citation["doc_id"], start=start, end=end)
    assert (window["start"], window["end"]) == (start, end) and len(window["text"]) == end - start
    assert window["text"][citation["quote_start"] - start : citation["quote_end"] - start] == citation["quote"]


def test_list_documents_names_the_seed(mcp: McpClient) -> None:
    listing = mcp.data("list_documents")
    assert listing["collection"] == "default"
    (seed,) = [d for d in listing["documents"] if d["id"] == SEED_ID]
    assert seed["chunks"] > 0 and seed["characters"] == len(mcp.data("get_document", id=SEED_ID)["text"])
    assert listing["next_cursor"] is None and listing["total"] == len(listing["documents"])


def test_list_documents_pages_with_the_cursor(http_base: str, http_mcp: McpClient) -> None:
    notes = [f"notes/page-{n}.md" for n in range(3)]
    for doc_id in notes:
        note = {"id": doc_id, "text": f"# Page note {doc_id}\n\nThis note exists to be listed."}
        assert httpx.post(f"{http_base}/v1/documents", json=note, timeout=60).status_code == 201
    try:
        listed, cursor, pages = [], None, 0
        while True:
            page = http_mcp.data("list_documents", limit=2, **({"cursor": cursor} if cursor else {}))
            assert len(page["documents"]) <= 2 and page["total"] == len(notes) + 1
            listed += [d["id"] for d in page["documents"]]
            cursor, pages = page["next_cursor"], pages + 1
            if cursor is None:
                break
        assert listed == sorted([SEED_ID, *notes]) and pages == 2
        # the HTTP listing hands out the same cursors
        first = httpx.get(f"{http_base}/v1/documents", params={"limit": 2}, timeout=30).json()
        assert first["next_cursor"] == http_mcp.data("list_documents", limit=2)["next_cursor"]
    finally:
        for doc_id in notes:
            httpx.delete(f"{http_base}/v1/documents/{doc_id}", timeout=60)


BAD_CALLS = [
    ("search", {"query": "   "}, "query: must contain non-whitespace text"),
    ("search", {"query": "x" * (MAX_QUERY_CHARS + 1)}, "query"),
    ("search", {"query": SHOYGU, "top_k": 0}, "top_k"),
    ("search", {"query": SHOYGU, "top_k": MAX_TOP_K + 1}, "top_k"),
    ("ask", {"question": ""}, "question"),
    ("ask", {"question": SHOYGU, "collection": "elsewhere"}, "no collection named 'elsewhere'"),
    ("list_documents", {"collection": "elsewhere"}, "no collection named 'elsewhere'"),
    ("list_documents", {"limit": 0}, "limit"),
    ("list_documents", {"limit": 1001}, "limit"),
    ("list_documents", {"cursor": "not a cursor!"}, "cursor: malformed cursor"),
    ("search", {"query": SHOYGU, "collection": "../etc"}, "collection: invalid collection name"),
    ("get_document", {"id": "missing.txt"}, "no document with id 'missing.txt'"),
    ("get_document", {"id": SEED_ID, "start": 10, "end": 5}, "start: 10 is after end (5)"),
    ("get_document", {"id": SEED_ID, "start": -1}, "start"),
    ("get_document", {"id": SEED_ID, "end": 10**7}, "past the end of the document"),
]


@pytest.mark.parametrize(("tool", "arguments", "message"), BAD_CALLS, ids=[f"{t}-{m[:24]}" for t, _, m in BAD_CALLS])
def test_a_bad_argument_is_a_tool_error_not_a_crash(mcp: McpClient, tool: str, arguments: dict, message: str) -> None:
    result = mcp.call(tool, **arguments)
    assert result.is_error
    assert isinstance(result.content[0], TextContent) and message in result.content[0].text
    assert mcp.data("list_documents")["documents"]  # the session still answers


def test_http_mcp_shares_the_apps_engine(http_base: str, http_mcp: McpClient) -> None:
    note = {"id": "notes/mcp-summit.md", "text": "# Summit note\n\nThe summit on the pipeline was moved to Reykjavik."}
    assert httpx.post(f"{http_base}/v1/documents", json=note, timeout=60).status_code == 201
    try:
        quote = http_mcp.data("search", query="Where was the summit moved?", top_k=1)["results"][0]["citation"]
        assert quote["doc_id"] == note["id"] and "Reykjavik" in quote["quote"]
    finally:
        assert httpx.delete(f"{http_base}/v1/documents/{note['id']}", timeout=60).status_code == 200
    assert note["id"] not in {d["id"] for d in http_mcp.data("list_documents")["documents"]}


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}},
}


@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
def test_http_mcp_answers_with_or_without_the_trailing_slash(http_base: str, path: str) -> None:
    headers = {"accept": "application/json, text/event-stream"}
    response = httpx.post(f"{http_base}{path}", json=INITIALIZE, headers=headers, timeout=30, follow_redirects=False)
    assert response.status_code == 200, response.text
    assert "citeqa" in response.text
    # Stateless: no session to remember, so any worker of a multi-process server answers the next request.
    assert response.headers.get("mcp-session-id") is None


def _send(stdin: Any, message: dict[str, Any]) -> None:
    stdin.write(json.dumps(message).encode() + b"\n")


def _read_message(stdout: Any, seconds: float) -> dict[str, Any]:
    ready, _, _ = select.select([stdout], [], [], seconds)
    assert ready, "no reply from citeqa mcp"
    line = stdout.readline()
    return json.loads(line)  # anything else on stdout (a progress line, a log) fails here


def test_stdio_stdout_carries_only_the_protocol_even_while_building(tmp_path: Path) -> None:
    """With no index yet, `citeqa mcp` builds one first; its progress goes to stderr, never into the protocol."""
    env = os.environ | {"CITEQA_HOME": str(tmp_path / "home")}
    env.pop("CITEQA_INDEX_DIR", None)
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*CITEQA, "mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            _send(process.stdin, INITIALIZE)
            assert _read_message(process.stdout, 240)["result"]["serverInfo"]["name"] == "citeqa"
            _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            ask = {"name": "ask", "arguments": {"question": SHOYGU}}
            _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": ask})
            reply = _read_message(process.stdout, 120)
            assert reply["id"] == 2 and "Shoygu alleged" in reply["result"]["structuredContent"]["answer"]
            process.stdin.close()
            assert process.wait(timeout=30) == 0
            assert process.stdout.read() == b""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "building it from" in stderr_path.read_text()
    assert any((tmp_path / "home" / "collections" / "default").iterdir())  # the index was built in the data home
