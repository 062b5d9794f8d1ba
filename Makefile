# Two commands on a fresh machine: `make serve` (the seed documents on http://127.0.0.1:8000) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve check test lint typecheck browser ocr eval bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: here it resolves to the CPU wheel; unpinned, pip would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# The ray extra too: the Ray cluster tests (tests/index/test_cluster_ingest.py) run in CI.
	$(PY) -m pip install --quiet -e ".[test,ray]"
	touch $(STAMP)

install: $(STAMP)

# `make serve PORT=8080 HOST=0.0.0.0` picks another address (or set CITEQA_PORT / CITEQA_HOST).
serve: install
	$(VENV)/bin/citeqa serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# The chat page test drives Debian's Chromium through its chromedriver (never a browser download).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# OCR of scanned pages and images uses Debian's Tesseract with its English data (never a download at run time);
# another language: apt-get install tesseract-ocr-LANG and set CITEQA_OCR_LANGUAGE (README).
ocr:
	@command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null)

lint: install typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy cannot follow the editable install (the repository root is the package citeqa), so it reads the package
# through a link citeqa -> ../.. inside the ignored build/ folder; settings are in pyproject.toml [tool.mypy].
TYPECHECK := build/typecheck
typecheck: install
	mkdir -p $(TYPECHECK)
	ln -sfn ../.. $(TYPECHECK)/citeqa
	cd $(TYPECHECK) && MYPYPATH=. $(abspath $(VENV))/bin/mypy --config-file $(CURDIR)/pyproject.toml -p citeqa

# Tests run in PYTEST_WORKERS processes (pytest-xdist), a file at a time each: on 2 cores, the kill tests' waits
# and server starts leave room for a second process (docs/testing.md has the figures). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The quick tier, for every change: everything not marked slow (no real servers, browsers or public data), in
# under 3 minutes on 2 cores. `make test` runs it all, as CI does.
check: install ocr
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

# The public-data gate reads ../shared/data (or CITEQA_EVAL_DATA); without it: make test PYTEST_ARGS="-m 'not public_data'".
test: install browser ocr
	$(PYTEST) $(PYTEST_ARGS)

eval: install
	$(VENV)/bin/citeqa eval

bench: install
	$(PY) -m citeqa.eval.bench --dataset ../shared/data/squad-dev-a
