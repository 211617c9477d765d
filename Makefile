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

.PHONY: setup repro test lint bench clean-reports

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

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check selm_lib tests notebooks benchmarks
	$(BIN)/ruff format --check selm_lib tests notebooks benchmarks

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/pipeline_timing.py
