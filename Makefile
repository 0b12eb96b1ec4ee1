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
INSTANCE_SETTINGS := examples/dagster.yaml

.PHONY: install dagster-home run train plain test lint bench

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[tests,k8s,examples]'
	touch $(STAMP)

# Every time, so an instance made by an older Makefile gets the settings added since: each
# top-level section of $(INSTANCE_SETTINGS) that the instance's dagster.yaml lacks is appended;
# the sections it has, and its comments, are left as they are.
dagster-home:
	@mkdir -p "$(DAGSTER_HOME)" && touch "$(DAGSTER_HOME)/dagster.yaml"
	@awk 'FILENAME == ARGV[1] { lines++; if (/^[A-Za-z_]/) has[$$1] = 1; next } \
	  /^[A-Za-z_]/ { adding = !($$1 in has); if (adding && lines && !added++) print "" } \
	  adding' "$(DAGSTER_HOME)/dagster.yaml" $(INSTANCE_SETTINGS) > "$(DAGSTER_HOME)/.added.yaml"
	@cat "$(DAGSTER_HOME)/.added.yaml" >> "$(DAGSTER_HOME)/dagster.yaml"
	@rm "$(DAGSTER_HOME)/.added.yaml"

run: $(STAMP) dagster-home
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(or $(PORT),3000)

train: $(STAMP) dagster-home
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
