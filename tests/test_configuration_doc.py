"""docs/configuration.md is generated from the Settings class; it must name every setting and be up to date."""

from __future__ import annotations

import re
from pathlib import Path

from citeqa.eval.config_doc import DOC_PATH, default_text, env_name, main, render, type_name
from citeqa.settings import Settings


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = DOC_PATH.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(CITEQA_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    missing = {env_name(name) for name in Settings.model_fields} - documented
    assert not missing, f"not in docs/configuration.md: {sorted(missing)}; run python -m citeqa.eval.config_doc"


def test_the_committed_reference_is_what_the_generator_writes_now() -> None:
    stale = "docs/configuration.md is stale: run python -m citeqa.eval.config_doc"
    assert DOC_PATH.read_text(encoding="utf-8") == render(), stale
    assert main(["--check"]) == 0


def test_the_check_notices_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(render().replace("CITEQA_MAX_TOP_K", "CITEQA_MAX_TOPK"), encoding="utf-8")
    assert main(["--check", "--out", str(stale)]) == 1
    assert main(["--out", str(stale)]) == 0 and main(["--check", "--out", str(stale)]) == 0


def test_every_setting_says_what_it_is() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and field.description.strip(), name
        assert default_text(name, field), name


def test_types_and_defaults_read_as_a_user_sets_them() -> None:
    fields = Settings.model_fields
    assert type_name(fields["search_mode"].annotation) == "one of: hybrid, dense, lexical"
    assert type_name(fields["min_relevance"].annotation) == "float or unset"
    assert default_text("learned_ranking", fields["learned_ranking"]) == "true"
    assert default_text("max_request_bytes", fields["max_request_bytes"]) == "10485760 (10 MiB)"
    # Worked out at start-up: said in words, never this machine's path.
    assert "citeqa" in default_text("home", fields["home"]) and str(Path.home()) not in render()
