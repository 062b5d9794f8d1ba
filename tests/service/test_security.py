"""API keys and roles, secure-by-default serving, allowed Host names and security headers: real app, real HTTP."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from citeqa.eval.bench import wait_ready
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.service.app import create_app
from citeqa.service.auth import required_role
from citeqa.service.headers import CONTENT_SECURITY_POLICY
from citeqa.service.indexing import build_from_corpus
from citeqa.service.keys import KeyConfigError, KeyRing, Role, add_key, hash_key, parse_keys_setting, read_keys_file
from citeqa.service.surface import refuse_to_serve
from citeqa.settings import Settings
from tests.conftest import SEED_ID
from tests.helpers import CITEQA, citeqa_env, free_port, run_citeqa

READ_KEY = "read-key-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
KEYS = f"read:{READ_KEY},write:{WRITE_KEY}"
QUESTION = {"query": "what did Shoygu allege?", "top_k": 2}
CHAT = {"model": "citeqa", "messages": [{"role": "user", "content": "what did Shoygu allege?"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed_client(seed_settings: Settings, seed_engine: Engine) -> Iterator[TestClient]:
    """The seed index behind a server with a read key and a write key (read-only use: the index is shared)."""
    settings = seed_settings.model_copy(update={"api_keys": SecretStr(KEYS)})
    with TestClient(create_app(settings, seed_engine)) as client:
        yield client


@pytest.fixture
def writable_keyed_client(tmp_path: Path, corpus_dir: Path, embedder: Embedder) -> Iterator[TestClient]:
    """A server over an index of its own, for tests that add and delete documents."""
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", home=tmp_path / "home", api_keys=KEYS)
    engine = Engine.create(settings.index_dir, settings.engine_settings(), embedder)
    build_from_corpus(settings, engine=engine)
    with TestClient(create_app(settings, engine)) as client:
        yield client


# -- keys -----------------------------------------------------------------------------------------


def test_keys_setting_is_parsed_into_hashes_with_roles() -> None:
    keys = parse_keys_setting(f" read:{READ_KEY} , write:{WRITE_KEY} ")
    assert [(k.role, k.digest) for k in keys] == [(Role.READ, hash_key(READ_KEY)), (Role.WRITE, hash_key(WRITE_KEY))]
    assert all(READ_KEY not in repr(k) and WRITE_KEY not in repr(k) for k in keys)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("admin:" + READ_KEY, "unknown role 'admin'"),
        (READ_KEY, "expected ROLE:KEY"),
        ("read:short", "shorter than 16 characters"),
    ],
)
def test_a_malformed_keys_setting_is_refused_without_echoing_the_key(value: str, needle: str) -> None:
    with pytest.raises(KeyConfigError) as error:
        parse_keys_setting(value)
    assert needle in str(error.value)
    assert READ_KEY not in str(error.value) and "short" not in str(error.value).replace("shorter", "")


def test_a_key_ring_gives_the_highest_role_of_a_matching_key(tmp_path: Path) -> None:
    ring = KeyRing(parse_keys_setting(f"read:{READ_KEY},write:{READ_KEY},read:{WRITE_KEY}"), None)
    assert ring.role_of(READ_KEY) is Role.WRITE
    assert ring.role_of(WRITE_KEY) is Role.READ
    assert ring.role_of("not-a-key-at-all-0000") is None
    assert ring.role_of("") is None


def test_keys_add_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys"
    env = citeqa_env(tmp_path / "index", CITEQA_API_KEYS_FILE=str(keys_file))
    added = run_citeqa("keys", "add", "--role", "write", "--note", "ci robot", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("citeqa_") and len(key) > 40 and "\n" not in key
    assert "only its sha256 is stored" in added.stderr
    stored = keys_file.read_text()
    assert key not in stored and hash_key(key) in stored
    assert keys_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    [entry] = read_keys_file(keys_file)
    assert entry.role is Role.WRITE and "ci robot" in entry.note

    listed = run_citeqa("keys", "list", env=env)
    assert listed.returncode == 0 and "write" in listed.stdout and key not in listed.stdout

    second = run_citeqa("keys", "add", "--role", "read", env=env).stdout.strip()
    assert second != key and len(read_keys_file(keys_file)) == 2
    removed = run_citeqa("keys", "remove", hash_key(key)[:12], env=env)
    assert removed.returncode == 0 and [k.role for k in read_keys_file(keys_file)] == [Role.READ]
    assert run_citeqa("keys", "add", "--role", "admin", env=env).returncode == 2  # argparse refuses the role


def test_a_key_added_to_the_keys_file_works_without_a_restart(
    seed_settings: Settings, seed_engine: Engine, tmp_path: Path
) -> None:
    keys_file = tmp_path / "api-keys"
    settings = seed_settings.model_copy(update={"api_keys": SecretStr(KEYS), "api_keys_file": keys_file})
    with TestClient(create_app(settings, seed_engine)) as client:
        late_key = add_key(keys_file, Role.READ)
        assert client.post("/v1/search", json=QUESTION, headers=bearer(late_key)).status_code == 200
        keys_file.write_text("# the key was revoked\n")
        assert client.post("/v1/search", json=QUESTION, headers=bearer(late_key)).status_code == 401


def test_removing_every_key_locks_the_server_instead_of_opening_it(
    seed_settings: Settings, seed_engine: Engine, tmp_path: Path
) -> None:
    keys_file = tmp_path / "api-keys"
    key = add_key(keys_file, Role.READ)
    settings = seed_settings.model_copy(update={"api_keys_file": keys_file})
    with TestClient(create_app(settings, seed_engine)) as client:
        assert client.get("/v1/documents", headers=bearer(key)).status_code == 200
        keys_file.write_text("# every key removed\n")
        assert client.get("/v1/documents").status_code == 401


# -- roles over HTTP ------------------------------------------------------------------------------


def test_without_a_key_the_api_answers_401_with_www_authenticate(keyed_client: TestClient) -> None:
    for method, path, body in [
        ("POST", "/v1/search", QUESTION),
        ("POST", "/v1/ask", {"question": "what did Shoygu allege?"}),
        ("POST", "/v1/chat/completions", CHAT),
        ("GET", "/v1/models", None),
        ("GET", "/v1/documents", None),
        ("GET", f"/v1/documents/{SEED_ID}", None),
        ("GET", "/metrics", None),
        ("POST", "/mcp", {}),
        ("POST", "/v1/documents", {"id": "a.md", "text": "x"}),
    ]:
        response = keyed_client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and "Authorization: Bearer" in error["message"]


def test_a_wrong_key_is_401_and_a_non_bearer_scheme_counts_as_no_key(keyed_client: TestClient) -> None:
    wrong = keyed_client.post("/v1/search", json=QUESTION, headers=bearer("wrong-key-0123456789abcdef"))
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "the API key is not valid"
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = keyed_client.post("/v1/search", json=QUESTION, headers={"Authorization": f"Basic {READ_KEY}"})
    assert basic.status_code == 401 and basic.json()["error"]["code"] == "missing_api_key"


def test_a_read_key_reads_everything_and_changes_nothing(keyed_client: TestClient) -> None:
    for headers in (bearer(READ_KEY), {"X-API-Key": READ_KEY}):
        assert keyed_client.post("/v1/search", json=QUESTION, headers=headers).status_code == 200
        assert keyed_client.post("/v1/ask", json={"question": "what did Shoygu allege?"}, headers=headers).status_code == 200
        assert keyed_client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        assert keyed_client.get("/v1/models", headers=headers).status_code == 200
        assert keyed_client.get(f"/v1/documents/{SEED_ID}", headers=headers).json()["id"] == SEED_ID
        assert keyed_client.get("/metrics", headers=headers).status_code == 200
    for method, path, body in [
        ("POST", "/v1/documents", {"id": "a.md", "text": "Some text."}),
        ("DELETE", f"/v1/documents/{SEED_ID}", None),
        ("POST", "/v1/collections", {"name": "handbook"}),
        ("DELETE", "/v1/collections/handbook", None),
        ("POST", "/v1/collections/default/documents", {"id": "a.md", "text": "Some text."}),
    ]:
        response = keyed_client.request(method, path, json=body, headers=bearer(READ_KEY))
        assert response.status_code == 403, (method, path)
        error = response.json()["error"]
        assert error["type"] == "permission_error" and "needs 'write'" in error["message"] and "role 'read'" in error["message"]
    assert keyed_client.get(f"/v1/documents/{SEED_ID}", headers=bearer(READ_KEY)).status_code == 200  # still there


def test_a_write_key_adds_and_deletes_documents(writable_keyed_client: TestClient) -> None:
    client = writable_keyed_client
    upload = {"id": "notes/summit.md", "text": "# Summit note\n\nThe summit was moved to Geneva."}
    added = client.post("/v1/documents", json=upload, headers={"X-API-Key": WRITE_KEY})
    assert added.status_code == 201, added.text
    assert client.get("/v1/documents/notes/summit.md", headers=bearer(READ_KEY)).status_code == 200
    assert client.delete("/v1/documents/notes/summit.md", headers=bearer(WRITE_KEY)).json()["status"] == "deleted"


def test_health_chat_page_and_docs_stay_open(keyed_client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/", "/static/app.js", "/static/style.css", "/docs", "/openapi.json"):
        assert keyed_client.get(path).status_code == 200, path


def test_roles_are_decided_by_method_and_path() -> None:
    assert required_role("GET", "/healthz") is None and required_role("GET", "/static/app.js") is None
    assert required_role("GET", "/v1/documents") is Role.READ
    assert required_role("POST", "/v1/search") is Role.READ
    assert required_role("POST", "/v1/collections/handbook/search") is Role.READ
    assert required_role("POST", "/v1/collections/handbook/chat/completions") is Role.READ
    assert required_role("GET", "/metrics") is Role.READ and required_role("POST", "/mcp") is Role.READ
    assert required_role("POST", "/v1/documents") is Role.WRITE
    assert required_role("DELETE", "/v1/documents/a/b.md") is Role.WRITE
    assert required_role("PUT", "/v1/collections/handbook") is Role.WRITE
    assert required_role("POST", "/v1/collections/handbook/documents") is Role.WRITE
    assert required_role("POST", "/v1/collections/handbook/reindex") is Role.WRITE  # unknown writes need write
    assert required_role("POST", "/v1/something-new") is Role.READ  # never open by accident


def test_keys_never_reach_the_logs(keyed_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        keyed_client.post("/v1/search", json=QUESTION, headers=bearer(READ_KEY))
        keyed_client.post("/v1/documents", json={"id": "a.md", "text": "x"}, headers=bearer(READ_KEY))
        keyed_client.get("/v1/documents", headers=bearer("wrong-key-0123456789abcdef"))
    assert caplog.records  # the access log did write
    for record in caplog.records:
        text = record.getMessage()
        assert READ_KEY not in text and "wrong-key" not in text and "Shoygu" not in text


def test_openapi_declares_the_keys_and_the_401_and_403_they_bring(keyed_client: TestClient) -> None:
    spec = keyed_client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["components"]["securitySchemes"]["apiKeyHeader"]["name"] == "X-API-Key"
    search = spec["paths"]["/v1/search"]["post"]
    assert "401" in search["responses"] and "403" not in search["responses"] and search["security"]
    assert {"401", "403"} <= set(spec["paths"]["/v1/documents"]["post"]["responses"])
    assert "security" not in spec["paths"]["/healthz"]["get"] and "401" not in spec["paths"]["/healthz"]["get"]["responses"]


def test_without_keys_the_schema_promises_no_401(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    for item in spec["paths"].values():
        for operation in item.values():
            assert "401" not in operation["responses"] and "security" not in operation


# -- secure by default ----------------------------------------------------------------------------


def test_serve_on_all_interfaces_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = citeqa_env(tmp_path / "index", CITEQA_HOME=str(tmp_path / "home"))
    env.pop("CITEQA_API_KEYS", None)
    started = time.monotonic()
    result = subprocess.run(
        [*CITEQA, "serve", "--host", "0.0.0.0", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr
    assert "citeqa keys add" in result.stderr and "--insecure" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "index").exists()  # refused before any work: no index was built
    assert time.monotonic() - started < 60


def test_refusal_rules() -> None:
    assert refuse_to_serve(Settings(host="127.0.0.1")) is None
    assert refuse_to_serve(Settings(host="::1")) is None
    assert refuse_to_serve(Settings(host="localhost")) is None
    assert refuse_to_serve(Settings(host="192.168.1.20")) is not None
    assert refuse_to_serve(Settings(host="myhost.example")) is not None
    assert refuse_to_serve(Settings(host="0.0.0.0", insecure=True)) is None
    assert refuse_to_serve(Settings(host="0.0.0.0", api_keys=KEYS)) is None


@contextmanager
def serving_on_all_interfaces(tmp_path: Path, *args: str, **env: str) -> Iterator[str]:
    """A real `citeqa serve --host 0.0.0.0`; requests go to it over loopback only."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CITEQA, "serve", "--host", "0.0.0.0", "--port", str(port), *args],
            env=citeqa_env(tmp_path / "index", CITEQA_HOME=str(tmp_path / "home"), **env),
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process, seconds=180, log_path=log_path)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.mark.slow
def test_serve_on_all_interfaces_with_keys_starts_and_requires_them(tmp_path: Path) -> None:
    with serving_on_all_interfaces(tmp_path, CITEQA_API_KEYS=KEYS) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.post(f"{base}/v1/search", json=QUESTION).status_code == 401
        assert httpx.post(f"{base}/v1/search", json=QUESTION, headers=bearer(READ_KEY)).status_code == 200
        # A browser led here by a rebound DNS name carries that name: refused.
        assert httpx.get(f"{base}/healthz", headers={"Host": "attacker.example"}).status_code == 400


@pytest.mark.slow
def test_serve_on_all_interfaces_with_insecure_starts_open(tmp_path: Path) -> None:
    with serving_on_all_interfaces(tmp_path, "--insecure") as base:
        assert httpx.post(f"{base}/v1/search", json=QUESTION).status_code == 200
    log = (tmp_path / "serve.log").read_text()
    assert "warning: serving on 0.0.0.0 without API keys (--insecure)" in log
    assert "CITEQA_ALLOWED_HOSTS" in log  # says which Host names it answers to


# -- allowed hosts and headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("LOCALHOST", 200),
        ("[::1]:8000", 200),
        ("10.1.2.3:8000", 200),  # an address cannot be rebound
        ("citeqa.internal", 200),  # configured
        ("attacker.example", 400),
        ("attacker.example:8000", 400),
        ("localhost.attacker.example", 400),
    ],
)
def test_only_known_host_names_are_answered(seed_settings: Settings, seed_engine: Engine, host: str, status: int) -> None:
    settings = seed_settings.model_copy(update={"allowed_hosts": "citeqa.internal"})
    with TestClient(create_app(settings, seed_engine), base_url="http://127.0.0.1") as client:
        response = client.get("/v1/models", headers={"Host": host})
        assert response.status_code == status
        if status == 400:
            error = response.json()["error"]
            assert "CITEQA_ALLOWED_HOSTS" in error["message"] and error["code"] == "host_not_allowed"


def test_the_bound_host_name_is_answered_and_a_star_turns_the_check_off(seed_settings: Settings, seed_engine: Engine) -> None:
    bound = seed_settings.model_copy(update={"host": "citeqa.lan", "allowed_hosts": ""})
    with TestClient(create_app(bound, seed_engine), base_url="http://citeqa.lan") as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/models", headers={"Host": "other.lan"}).status_code == 400
    anything = seed_settings.model_copy(update={"allowed_hosts": "*"})
    with TestClient(create_app(anything, seed_engine), base_url="http://whatever.example") as client:
        assert client.get("/v1/models").status_code == 200


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/docs", "/v1/models", "/v1/documents/no-such-doc", "/openapi.json"])
def test_every_reply_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_error_replies_made_before_the_routes_carry_them_too(keyed_client: TestClient) -> None:
    for response in (
        keyed_client.get("/v1/models"),  # 401 from the key check
        keyed_client.get("/v1/models", headers={"Host": "attacker.example"}),  # 400 from the host check
    ):
        assert response.status_code in (400, 401)
        assert response.headers["x-frame-options"] == "DENY" and response.headers["x-request-id"]
