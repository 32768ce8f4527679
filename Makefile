# `make demo` and `make test` do all the set-up on a fresh Debian machine (run as root).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: test lint demo bench etcd runtime-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The etcd backend's tests and benchmarks run a real etcd server.
etcd:
	@command -v etcd >/dev/null || (apt-get update -qq && apt-get install -y -qq etcd-server etcd-client)

# Replicas get Debian's tini-static as pid 1 (reaps zombies, forwards stop signals); the
# runtime benchmark compares against runc.
runtime-deps:
	@command -v tini-static >/dev/null && command -v runc >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq tini runc)

lint: $(STAMP)
	$(BIN)/ruff check constellation tests bench scripts
	$(BIN)/ruff format --check constellation tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint etcd runtime-deps
	$(BIN)/pytest

# The example app on a real all-in-one server: start, apply, wait until ready, show it, fetch a
# page, delete it, stop; nothing may be left behind (scripts/demo.py says how it checks).
demo: $(STAMP) runtime-deps
	$(BIN)/python scripts/demo.py $(DEMO_DIR)

# Every benchmark under bench/, one after the other within 10 minutes: each writes its own
# bench/results/<name>.json, bench/all.py merges them into bench/results/latest.json and prints
# one table (value, baseline, ratio, target, met).
bench: $(STAMP) etcd runtime-deps
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
