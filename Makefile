# catalog — run `make help` for the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs into one venv, each with its stamp: the demo's (the package and the
# demo extra: what the demo runs) and everything (dev too: tests, lint, docs).
# A full install touches both; a later demo then installs nothing, and `make test`
# after `make demo` adds what the demo did not need.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint format docs soak bench up down clean chromium ui

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The install also compiles the C kernel (hatch_build.py): a change to it reinstalls.
KERNEL := catalog/_kernel.c catalog/native.py hatch_build.py

$(DEMO_STAMP): pyproject.toml $(KERNEL) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	@touch $(DEMO_STAMP)

$(STAMP): pyproject.toml $(KERNEL) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,examples]'
	@touch $(STAMP) $(DEMO_STAMP)

venv: $(STAMP) ## Create .venv and install the project with its dev extras

demo: $(DEMO_STAMP) ## Log a few artifacts on the embedded default, then show ls/show/sql/audit/lineage
	$(BIN)/python examples/demo.py

# Two workers (this machine's cores), one test file each at a time: about 40% less
# wall time than one process; files keep their module-scoped fixtures.
XDIST := -n 2 --dist loadfile

test: $(STAMP) chromium ## Run the whole test suite
	$(BIN)/pytest $(XDIST)

# The browser tests drive Debian's chromium (never a browser build downloaded by
# Playwright); install it when missing and possible (root with apt-get).
chromium: ## Install Debian's chromium for the browser tests, if missing
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser tests will be skipped"; \
	  else echo "no /usr/bin/chromium (apt-get install chromium): the browser tests will be skipped"; fi; }

ui: $(DEMO_STAMP) ## Serve the web UI on the demo catalog (run `make demo` first)
	CATALOG_HOME=demo-output CATALOG_PROJECT=iris $(BIN)/catalog ui

test-fast: $(STAMP) chromium ## Run the suite without the slow tests
	$(BIN)/pytest $(XDIST) -m "not slow"

soak: $(STAMP) ## The long crash and fuzz loops, with full counts
	CATALOG_SOAK=1 $(BIN)/pytest -m slow

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP) ## Publish a changed event envelope; regenerate the generated parts of docs/
	$(BIN)/python -c 'from catalog.events.codec import publish; print(publish() or "envelope: published already")'
	$(BIN)/python -m catalog.consumers.schema
	$(BIN)/python docs/gen_cli.py
	$(BIN)/python docs/gen_events.py

bench: $(STAMP) ## Run the benchmark suite (B1-B6, web, Kafka); writes docs/benchmarks.md
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

up: ## Start Kafka (KRaft), MinIO and the projector with docker compose
	docker compose up -d

down: ## Stop the docker compose services (named volumes are kept)
	docker compose down

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-output
