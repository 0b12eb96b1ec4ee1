# Two commands set up everything on a fresh machine; each creates .venv on first use.
#   make run    the example pipelines in Dagster's UI (dagster dev, SQLite DAGSTER_HOME in the repo)
#   make test   ruff and the whole test suite
# Also: make train (the training pipeline through Dagster, headless), make plain (no Dagster),
# make bench (the benchmark scripts).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The UI and headless runs keep their instance (runs, events, asset values) in the repo.
DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install run train plain test lint bench

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[tests,k8s,examples]'
	touch $(STAMP)

$(DAGSTER_HOME):
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml

run: $(STAMP) | $(DAGSTER_HOME)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(or $(PORT),3000)

train: $(STAMP) | $(DAGSTER_HOME)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/python examples/train_headless.py

plain: $(STAMP)
	$(BIN)/python examples/run_plain.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done
