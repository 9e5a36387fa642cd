# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY := .venv/bin/python
export PYSPARK_PYTHON := $(CURDIR)/.venv/bin/python

.PHONY: setup s3-server demo test test-fast bench lint format clean

setup:
	@bash infra/scripts/setup.sh

s3-server:
	@bash infra/scripts/s3-server.sh install

demo: setup
	.venv/bin/dmp demo --format mix

test: setup s3-server
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/ruff check dags/ --select AIR3
	$(PY) -m pytest -q --durations=15

# the tests that answer in about two minutes: everything but the whole-pipeline, crash and
# concurrency tests (marked slow); `make test` runs all of them
test-fast: setup s3-server
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) -m pytest -q -m "not slow" --durations=10

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

clean:
	rm -rf data .pytest_cache

bench: setup
	.venv/bin/dmp-dev bench
