# Every target creates .venv and installs what it needs: a fresh clone needs
# only Python 3.11+ and make. CHATSTORE_DSN names a PostgreSQL server; without it
# an embedded PostgreSQL 16 (pgserver) starts for the run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint schema demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check chatstore tests
	$(BIN)/ruff format --check chatstore tests
	$(BIN)/mypy
	$(BIN)/squawk sql/migrations/*.sql

# Regenerate sql/schema.sql from the migrations (tests fail when it is stale).
schema: $(STAMP)
	$(BIN)/python -m chatstore.snapshot > sql/schema.sql

demo: $(STAMP)
	$(BIN)/python -m chatstore.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
