# `make demo` and `make test` do all the set-up on a fresh Debian machine (run as root).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: test lint demo bench etcd clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The etcd backend's tests and benchmarks run a real etcd server.
etcd:
	@command -v etcd >/dev/null || (apt-get update -qq && apt-get install -y -qq etcd-server etcd-client)

lint: $(STAMP)
	$(BIN)/ruff check constellation tests bench
	$(BIN)/ruff format --check constellation tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint etcd
	$(BIN)/pytest

# Until the runtime lands, the demo is a round trip through the embedded store: writes with
# compare-and-swap, a read, a replayed watch, a listing and the store's status.
DEMO := $(BIN)/constellation --data-dir $(DEMO_DIR)
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(DEMO) store put /demo/greeting hello
	$(DEMO) store put /demo/greeting "hello again"
	$(DEMO) store put /demo/answer 42
	$(DEMO) store get /demo/greeting
	$(DEMO) store watch /demo/ --from 1 --count 3
	$(DEMO) store delete /demo/answer
	$(DEMO) store list /demo/
	$(DEMO) store status

bench: $(STAMP) etcd
	$(BIN)/python bench/store.py
	$(BIN)/python bench/cli.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
