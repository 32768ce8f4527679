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

# Until the agent lands (nothing runs replicas yet), the demo applies the example app to the
# embedded store, shows it the kubectl way, and looks at the raw store underneath.
DEMO := $(BIN)/constellation --data-dir $(DEMO_DIR)
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(DEMO) apply -f manifests/examples/app.yaml
	$(DEMO) apply -f manifests/examples/app.yaml
	$(DEMO) get instances
	$(DEMO) get services -o wide
	$(DEMO) describe instance web
	@echo '# dry run: replicas belong to the ScalePolicy and stay; only the label change would apply'
	sed 's/replicas: 2/replicas: 3/; s/tier: frontend/tier: web/' manifests/examples/app.yaml | $(DEMO) apply -f - --dry-run
	$(DEMO) store list /registry/instances/ --limit 1 >/dev/null
	$(DEMO) store status

bench: $(STAMP) etcd
	$(BIN)/python bench/store.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/scheduler.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
