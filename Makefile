# gamewallet developer commands.
#
#   make run     start the server on the embedded SQLite default, with demo data
#   make test    run the test suite (PYTEST_ARGS="-k foo -x" to narrow it)
#   make check   lint + typecheck + imports + test: what CI runs
#   make bench   the load benchmark (benchmarks/README.md)
#
# Every target bootstraps .venv first from the hash-pinned requirements/dev.lock (re-installed
# when the lock or pyproject.toml changes). `make lock` regenerates the locks with uv.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
UV ?= uv
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
UV_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
LOCK_FLAGS := --generate-hashes --universal --python-version 3.11 --quiet

.PHONY: help venv run test lint fmt typecheck imports check lock lock-upgrade clean bench bench-big soak soak-long fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info >= (3, 11) else "gamewallet needs Python >= 3.11; got " + sys.version.split()[0] + " (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements/dev.lock
	$(PIP) install --no-deps -e .
	@touch $@

venv: $(STAMP) ## create/update .venv from requirements/dev.lock

run: $(STAMP) ## run the server on 127.0.0.1:8000 (SQLite default, demo data)
	$(BIN)/gamewallet demo --port $(PORT)
	exec $(BIN)/gamewallet serve --host $(HOST) --port $(PORT)

test: $(STAMP) ## run the tests (PYTEST_ARGS=... to pass options)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict over src and tests
	$(BIN)/mypy

imports: $(STAMP) ## layer rules (import-linter)
	$(BIN)/lint-imports

check: lint typecheck imports test ## everything CI runs

# Reliability (docs/reliability.md): loopback only, bounded, they stop by themselves. The soak
# starts its own throwaway PostgreSQL cluster (never the machine's server). SOAK_ARGS="--seed N --keep".
SOAK_ARGS ?=
soak: $(STAMP) ## soak: ~75 s of traffic on all protocols under kill -9 and a PostgreSQL crash (~2 min)
	$(BIN)/python -m soak --profile short $(SOAK_ARGS)

soak-long: $(STAMP) ## the long soak (15 min of traffic), then the long fuzz run; by hand
	$(BIN)/python -m soak --profile long $(SOAK_ARGS)
	$(MAKE) fuzz

fuzz: $(STAMP) ## fuzzing: >= 1,000 schemathesis cases per protocol + malformed bodies
	GAMEWALLET_FUZZ_CASES=1000 $(BIN)/pytest -q tests/fuzz $(PYTEST_ARGS)

bench: $(STAMP) ## load benchmark on loopback, SQLite + PostgreSQL (BENCH_ARGS=...; ~15 min)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-big: $(STAMP) ## scenario 7: 1M players, 10M past operations (long: bulk seeding)
	$(BIN)/python benchmarks/bench.py --big-only $(BENCH_ARGS)

# uv keeps the current pins unless asked to upgrade; runtime.lock is constrained to dev.lock so the
# two always agree on versions.
lock: ## regenerate requirements/*.lock (keeps existing pins)
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) $(UV_ARGS) -o requirements/dev.lock
	$(UV) pip compile pyproject.toml -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/runtime.lock

lock-upgrade: ## regenerate the locks with the newest allowed versions
	$(MAKE) lock UV_ARGS=--upgrade

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
