# Every target creates .venv and installs what it needs: a fresh clone needs
# only Python 3.11+ and make. CHATSTORE_DSN names a PostgreSQL server; without it
# an embedded PostgreSQL 16 (pgserver) starts for the run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test soak lint schema demo example bench bench-full clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

# The bounded soak run (about a minute), excluded from `make test`.
soak: $(STAMP)
	$(BIN)/pytest -m soak

lint: $(STAMP)
	$(BIN)/ruff check chatstore tests tools bench examples
	$(BIN)/ruff format --check chatstore tests tools bench examples
	$(BIN)/mypy
	$(BIN)/python tools/async_to_sync.py --check
	$(BIN)/squawk sql/migrations/*.sql

# Regenerate sql/schema.sql from the migrations (tests fail when it is stale).
schema: $(STAMP)
	$(BIN)/python -m chatstore.snapshot > sql/schema.sql

demo: $(STAMP)
	$(BIN)/python -m chatstore.demo

EXAMPLE_STAMP := $(VENV)/.installed-example

$(EXAMPLE_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[example]"
	touch $(EXAMPLE_STAMP)

# The Phase III chat service (examples/phase3_chat) on http://127.0.0.1:8000; it prints
# curl lines to try. Offline demo model unless OPENAI_API_KEY is set.
example: $(EXAMPLE_STAMP)
	$(BIN)/python -m examples.phase3_chat

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

# Quick run (about 3 minutes): 100k and 1M messages, every contender, concurrency,
# bulk-import memory. Writes docs/benchmarks.md, docs/benchmarks.png, bench/results.json.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# Adds the 10M-message scale (loading it takes several minutes).
bench-full: $(BENCH_STAMP)
	$(BIN)/python -m bench --full

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
