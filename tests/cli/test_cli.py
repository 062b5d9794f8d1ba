"""The `citeqa` command line, run as a real subprocess."""

from pathlib import Path

from tests.conftest import SEED_ID
from tests.helpers import citeqa_env, run_citeqa


def test_index_reports_skips_and_then_is_a_no_op(corpus_dir: Path, tmp_path: Path) -> None:
    (corpus_dir / "broken.txt").write_bytes(b"\xff\xfe\x00binary")
    env = citeqa_env(tmp_path / "index")
    first = run_citeqa("index", str(corpus_dir), env=env)
    assert first.returncode == 0, first.stderr
    assert "documents: 1 (1 added" in first.stdout
    assert "skipped: 1" in first.stdout and "broken.txt" in first.stdout
    second = run_citeqa("index", str(corpus_dir), env=env)
    assert "1 unchanged" in second.stdout and "nothing changed" in second.stdout


def test_ask_prints_the_answer_with_citations(corpus_dir: Path, tmp_path: Path) -> None:
    result = run_citeqa("ask", "what did Shoygu allege?", env=citeqa_env(tmp_path / "index", CITEQA_CORPUS_DIR=str(corpus_dir)))
    assert result.returncode == 0, result.stderr
    assert "Shoygu alleged" in result.stdout
    assert "[1] Russia Rejects" in result.stdout and SEED_ID in result.stdout


def test_a_mismatched_index_is_refused_with_a_rebuild_hint(corpus_dir: Path, tmp_path: Path) -> None:
    env = citeqa_env(tmp_path / "index")
    assert run_citeqa("index", str(corpus_dir), env=env).returncode == 0
    refused = run_citeqa("index", str(corpus_dir), env=env | {"CITEQA_CHUNK_SIZE": "500"})
    assert refused.returncode == 2
    assert "citeqa index --rebuild" in refused.stderr and "Traceback" not in refused.stderr
    rebuilt = run_citeqa("index", str(corpus_dir), "--rebuild", env=env | {"CITEQA_CHUNK_SIZE": "500"})
    assert rebuilt.returncode == 0, rebuilt.stderr


def test_serve_with_several_workers_refuses_a_mismatched_index_before_starting_them(corpus_dir: Path, tmp_path: Path) -> None:
    # With several workers the index is opened in a process of its own; its refusal must still reach the user.
    env = citeqa_env(tmp_path / "index")
    assert run_citeqa("index", str(corpus_dir), env=env).returncode == 0
    refused = run_citeqa("serve", "--workers", "2", "--port", "9", env=env | {"CITEQA_CHUNK_SIZE": "500"})
    assert refused.returncode == 2, refused.stderr
    assert "citeqa: error:" in refused.stderr and "citeqa index --rebuild" in refused.stderr
    assert "Traceback" not in refused.stderr and "worker" not in refused.stderr.split("citeqa: error:")[0]


def test_a_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    result = run_citeqa("index", str(tmp_path / "nowhere"), env=citeqa_env(tmp_path / "index"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_an_invalid_setting_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    env = citeqa_env(tmp_path / "index", CITEQA_CHUNK_VECTORS="averaged", CITEQA_RRF_K="0")
    result = run_citeqa("search", "what did Shoygu allege?", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "citeqa: error: invalid setting: CITEQA_CHUNK_VECTORS: Input should be 'encoded' or 'derived'" in result.stderr
    assert "CITEQA_RRF_K: Input should be greater than or equal to 1" in result.stderr
    assert not (tmp_path / "index").exists()


def test_settings_that_cannot_go_together_are_a_clear_error(tmp_path: Path) -> None:
    env = citeqa_env(tmp_path / "index", CITEQA_UNIT_VECTORS="pooled", CITEQA_ENCODER="torch")
    result = run_citeqa("search", "what did Shoygu allege?", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid setting: CITEQA_UNIT_VECTORS=pooled needs an ONNX encoder, and CITEQA_ENCODER is torch" in result.stderr
    assert not (tmp_path / "index").exists()
    env = citeqa_env(tmp_path / "index", CITEQA_UNIT_VECTORS="pooled", CITEQA_CHUNK_VECTORS="derived")
    result = run_citeqa("search", "what did Shoygu allege?", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid setting: CITEQA_UNIT_VECTORS=pooled cannot go with CITEQA_CHUNK_VECTORS=derived" in result.stderr


def test_serve_refuses_a_ray_address_its_upload_jobs_could_not_use_before_loading_anything(tmp_path: Path) -> None:
    for address, reason in (
        ("ray://127.0.0.1:10001", "Ray Client addresses are not supported"),
        ("nowhere", "is not a Ray address"),
    ):
        refused = run_citeqa("serve", "--port", "9", env=citeqa_env(tmp_path / "index", CITEQA_RAY_ADDRESS=address))
        assert refused.returncode == 2 and reason in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    env = citeqa_env(tmp_path / "index", CITEQA_RAY_ADDRESS="127.0.0.1:6379", CITEQA_ENCODER="torch")
    refused = run_citeqa("serve", "--port", "9", env=env)
    assert refused.returncode == 2 and "use CITEQA_ENCODER=onnx" in refused.stderr, refused.stderr
    assert not (tmp_path / "index").exists(), "refused before the index was built"
