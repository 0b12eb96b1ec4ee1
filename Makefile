# Two commands set up everything on a fresh machine; each creates .venv on first use.
#   make run    the example pipelines in Dagster's UI (dagster dev, SQLite DAGSTER_HOME in the repo)
#   make test   ruff and the whole test suite, then the Dagster tests on the lowest supported
#               versions (make test-min)
# Also: make train (the training pipeline through Dagster, headless), make plain (no Dagster),
# make bench (the benchmark scripts).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The UI and headless runs keep their instance (runs, events, asset values) in the repo.
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
INSTANCE_SETTINGS := examples/dagster.yaml

# The lowest supported versions (constraints-min.txt), in a venv of their own.
VENV_MIN := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed-stamp
# tests/dagster: every translation on real instances (~4 min). The rest runs on the newest set
# only: tests/e2e alone takes ~7 min and reads the newest webserver's GraphQL fields and log
# lines; tests/dg drives the dg CLI in subprocesses; tests/core has no Dagster;
# reliability/trust/compat repeat tests/dagster's Dagster calls.
MIN_TESTS ?= tests/dagster

.PHONY: install dagster-home run train plain test test-min lint bench

install: $(STAMP)

# uv installs the pinned set in seconds where pip takes minutes; pip brings uv into the venv
# (pinned in both constraints files) and stays there for users' own installs.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[tests,k8s,examples,ui]'
	touch $(STAMP)

$(STAMP_MIN): pyproject.toml constraints-min.txt
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet -c constraints-min.txt uv
	$(VENV_MIN)/bin/uv pip install --quiet --python $(VENV_MIN)/bin/python -c constraints-min.txt \
	  -e '.[tests,k8s,ui]'
	touch $(STAMP_MIN)

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

# Two pytest-xdist workers: most tests wait on processes of their own (Dagster's workers and
# servers, forked steps), so two at a time keep both cores busy. A test file, or a directory
# whose tests share servers, runs whole in one worker (tests/conftest.py).
XDIST := -n 2 --dist loadscope

test: lint
	$(BIN)/pytest $(XDIST)
	$(MAKE) test-min

test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/pytest -p no:cacheprovider -q $(XDIST) $(MIN_TESTS)

bench: $(STAMP)
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done
