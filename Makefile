# Every target installs what it needs first (a .venv with the package and its dev extra).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= small
RUN_DIR ?= runs/$(CONFIG)
SPLIT ?= test
ARGS ?=

.PHONY: install train evaluate translate export test test-cpu bench bench-inference bench-opennmt notebooks lint tensorboard clean

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

# Two pytest-xdist workers (tests/conftest.py shares the trained tiny run between them); the modules
# whose fixtures start a server or export a model stay on one worker each (xdist_group). Tests are handed
# out in conftest's order (longest modules first), not xdist's (biggest groups first, whose fixtures both
# wait for the shared run): 6 min 11 s against 6 min 39 s back to back (docs/benchmarks.md, stop 55).
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder
test: install
	$(PYTEST) $(ARGS)

# The same suite, each Python process writing its CPU time at exit (tests/cpu_accounting), then a summary:
# where the suite's CPU time goes (workers, notebook kernels, the subprocesses tests start).
CPU_LOG ?= runs/test-cpu.jsonl
test-cpu: install
	mkdir -p $(dir $(CPU_LOG)) && rm -f $(CPU_LOG)
	PYTHONPATH=$(CURDIR)/tests/cpu_accounting TRANSLATOR_CPU_LOG=$(abspath $(CPU_LOG)) \
		$(PYTEST) $(ARGS)
	$(BIN)/python tests/cpu_accounting/report.py $(CPU_LOG)

# Speed benchmarks at the TF tutorial's model size (docs/benchmarks.md): trains runs/tutorial first
# (15 minutes; a no-op once done), then decoding and training throughput (10 minutes per training method).
BENCH_RUN ?= runs/tutorial
bench: install
	$(BIN)/translator train --config tutorial --run-dir $(BENCH_RUN)
	$(BIN)/translator bench decode --run-dir $(BENCH_RUN) --split test --uncached-limit 100 --json | tee $(BENCH_RUN)/bench-decode.json
	$(BIN)/translator bench train --config tutorial --budget-minutes 10 --json | tee runs/bench-train.json

# Issue 12's comparison on the same run: our search, its SavedModel and CTranslate2 (float32, int8, int8 with a
# lexical shortlist), five rounds interleaved, the median and each method's speed over our search's per round.
bench-inference: install
	$(BIN)/translator train --config tutorial --run-dir $(BENCH_RUN)
	$(BIN)/translator bench decode --run-dir $(BENCH_RUN) --split test --rounds 5 \
		--methods beam,beam_requests,savedmodel,ct2_beam,ct2_int8_beam,ct2_int8_shortlist_beam --json | tee $(BENCH_RUN)/bench-inference.json

# The peer, measured on this machine (docs/benchmarks.md): OpenNMT-tf 2.32 needs TensorFlow < 2.14, hence its
# own Python 3.11 venv; then the same corpus and model size as `bench train --config tutorial`, 10 minutes.
PEER_PYTHON ?= python3.11
PEER_VENV := .venv-opennmt
$(PEER_VENV)/bin/onmt-main:
	$(PEER_PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet "opennmt-tf==2.32.0" "tensorflow-cpu==2.13.1"
bench-opennmt: install $(PEER_VENV)/bin/onmt-main
	$(BIN)/translator bench opennmt-tf --config tutorial --onmt-main $(PEER_VENV)/bin/onmt-main --json | tee runs/bench-opennmt.json

# Execute every notebook in notebooks/ (tiny preset, as the test suite does) and check its results.
notebooks: install
	$(BIN)/python -m pytest -q tests/test_notebooks.py $(ARGS)

# Watch a run's loss, learning rate, speed and dev BLEU (http://localhost:6006).
tensorboard: install
	$(BIN)/tensorboard --logdir $(RUN_DIR)/logs

lint: install
	$(BIN)/ruff check translator tests
	$(BIN)/ruff format --check translator tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
