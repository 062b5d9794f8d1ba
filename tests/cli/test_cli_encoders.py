"""`citeqa add` writes with the configured encoder, like `citeqa index`, `serve` and uploads: an index built under
one encoder takes additions under the same setting, and the added text is found."""

from pathlib import Path

import pytest

from tests.helpers import citeqa_env, run_citeqa


# torch in three fresh processes costs about 20 s; onnx-int8 runs the same steps in the quick tier.
@pytest.mark.parametrize("encoder", [pytest.param("torch", marks=pytest.mark.slow), "onnx-int8"])
def test_add_uses_the_configured_encoder(corpus_dir: Path, tmp_path: Path, encoder: str) -> None:
    env = citeqa_env(tmp_path / "index", CITEQA_ENCODER=encoder)
    built = run_citeqa("index", str(corpus_dir), env=env)
    assert built.returncode == 0, built.stderr
    note = tmp_path / "penguins.txt"
    note.write_text("Emperor penguins breed during the Antarctic winter on the sea ice.", encoding="utf-8")

    added = run_citeqa("add", str(note), env=env)
    assert added.returncode == 0, added.stderr
    assert "penguins.txt: added" in added.stdout
    found = run_citeqa("search", "when do emperor penguins breed?", env=env)
    assert found.returncode == 0, found.stderr
    assert "penguins.txt#0" in found.stdout.splitlines()[0]
    # `serve` (the same settings) opens what `add` wrote: the manifest still names this encoder.
    manifest = (tmp_path / "index" / "manifest.json").read_text(encoding="utf-8")
    assert f'"encoder": "{encoder}' in manifest
