# The README's two commands: `make demo` and `make test`. Each sets everything up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f var/hub.db var/hub.db-wal var/hub.db-shm
	$(BIN)/hub demo-data --out var/demo
	$(BIN)/hub db upgrade
	$(BIN)/hub sync --sandbox
	$(BIN)/hub audience --now 2025-01-01T09:00:00+01:00
	$(BIN)/hub deliver --sandbox --faults error_rate=0.02,drop_rate=0.005,rate_429=0.0005

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
