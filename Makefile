# Every target installs what it needs first (a .venv with the package and its dev extra).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= small
RUN_DIR ?= runs/$(CONFIG)
SPLIT ?= test
ARGS ?=

.PHONY: install train evaluate translate export test bench notebooks lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

train: install
	$(BIN)/translator train --config $(CONFIG) --run-dir $(RUN_DIR) $(ARGS)

evaluate: install
	$(BIN)/translator evaluate --run-dir $(RUN_DIR) --split $(SPLIT) $(ARGS)

translate: install
	$(BIN)/translator translate --run-dir $(RUN_DIR) $(ARGS)

export: install
	$(BIN)/translator export --run-dir $(RUN_DIR) $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

bench: install
	$(BIN)/translator bench decode --run-dir $(RUN_DIR) --json $(ARGS)

lint: install
	$(BIN)/ruff check translator tests
	$(BIN)/ruff format --check translator tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
