# Two commands: `make repro` (set up + run the whole pipeline) and `make test` (set up + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.selm-installed

# Nothing the project runs may reach the network.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup repro test test-fast lint bench check-lock check-distributed clean-reports

setup: $(STAMP)

# Re-run the install whenever the pins change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The runner executes notebooks on the kernel named python3; register this venv's one.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (selm)"
	touch $(STAMP)

repro: setup
	@test -d .dvc || { echo "no .dvc folder: run from a git clone of the project"; exit 1; }
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	@echo "Reports: reports/index.html"

# Everything CI needs (what .ci/run calls): unit tests and the pipeline runs on the smoke profile.
test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

# The inner loop: no pipeline runs (tests marked slow are left out).
test-fast: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check selm_lib tests notebooks benchmarks
	$(BIN)/ruff format --check selm_lib tests notebooks benchmarks

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/pipeline_timing.py

# The distributed stages on the CPU: gloo, 2 processes under torchrun, against one process
# (feature store bytes, DDP training, SER-Evals probes, a failing rank). Ends with one line.
check-distributed: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m tests.distributed_checks --nproc 2

# Runs the default pipeline in a fresh copy and compares its output hashes with dvc.lock.
check-lock: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/reproduce.py
