# catalog — run `make help` for the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint format docs soak clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,examples]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the project with its dev extras

demo: $(STAMP) ## Log a few artifacts on the embedded default, then show ls/show/sql/audit/lineage
	$(BIN)/python examples/demo.py

test: $(STAMP) ## Run the whole test suite
	$(BIN)/pytest

test-fast: $(STAMP) ## Run the suite without the slow tests
	$(BIN)/pytest -m "not slow"

soak: $(STAMP) ## The long crash and fuzz loops, with full counts
	CATALOG_SOAK=1 $(BIN)/pytest -m slow

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP) ## Regenerate the generated parts of docs/
	$(BIN)/python -m consumers.schema
	$(BIN)/python docs/gen_cli.py
	$(BIN)/python docs/gen_events.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-output
