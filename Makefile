# The two commands of the README: `make demo` and `make test`. Both create/reuse .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The documentation site (mkdocs.yml) into build/site; --strict turns every warning (a broken
# link, a docstring mkdocstrings cannot read) into a failure.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

.PHONY: demo test docs lint format bench clean

$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mtlkit demo

test: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks examples docs/hooks
	$(BIN)/python -m ruff format --check src tests benchmarks examples docs/hooks
	$(BIN)/lint-imports --no-cache --no-logo
	$(MKDOCS)
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(MKDOCS)

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks examples docs/hooks
	$(BIN)/python -m ruff format --check src tests benchmarks examples docs/hooks
	$(BIN)/lint-imports --no-cache --no-logo

format: $(STAMP)
	$(BIN)/python -m ruff format src tests benchmarks examples docs/hooks
	$(BIN)/python -m ruff check --fix src tests benchmarks examples docs/hooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_foundation.py

clean:
	rm -rf $(VENV) .pytest_cache runs build/site
