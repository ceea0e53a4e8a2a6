# The two commands of the README: `make book` and `make test`. Both set up everything they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.phi1-installed
# The CPU build of torch that lies on the project's machines; set TORCH_SPEC to change it.
TORCH_SPEC ?= torch==2.13.0
# EvalPlus's loaders for HumanEval+ and MBPP+; its own dependencies are in pyproject.toml.
EVALPLUS_SPEC ?= evalplus==0.3.1
PROFILE ?= tiny
BOOK_OUT := _build/$(PROFILE)
# What ruff lints and formats: the package, its tests, benchmarks, scripts and the chapters.
RUFF_PATHS := phi1lib tests benchmarks scripts notebooks

# The default profiles run offline: nothing may reach the Hugging Face hub.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install book test test-fast chromium lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml phi1lib/__init__.py  # the version lives in __init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[book,dev]'
	$(BIN)/python -m pip install --quiet --no-deps '$(EVALPLUS_SPEC)'
	@touch $@

# Headless Chromium and its driver, for the browser tests of the rendered site (Debian packages).
chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; \
	fi

book: install
	@rm -rf $(BOOK_OUT)/_build/.doctrees
	@start=$$(date +%s); \
	PHI1_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --path-output $(BOOK_OUT) -W -n --keep-going; \
	echo "Built the book at profile '$(PROFILE)' in $$(( $$(date +%s) - start )) s:"; \
	echo "  $(abspath $(BOOK_OUT)/_build/html/index.html)"

test: install chromium
	$(BIN)/python -m pytest

# The development loop: every test not marked slow (about a minute on 2 cores). CI runs them all.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" -q

lint: install
	$(BIN)/ruff check $(RUFF_PATHS)
	$(BIN)/ruff format --check $(RUFF_PATHS)

format: install
	$(BIN)/ruff format $(RUFF_PATHS)
	$(BIN)/ruff check --fix $(RUFF_PATHS)

clean:
	rm -rf _build runs
