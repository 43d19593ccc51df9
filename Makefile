# Set-up and checks. `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: help setup test bench lock

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.installed  ## create .venv from the hash-locked requirements

$(VENV)/.installed: requirements.lock pyproject.toml
	python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --python $(PY) --require-hashes requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $@

test: setup  ## run the whole test suite (unit, contract, end-to-end demo runs)
	$(PY) -m pytest

bench: setup  ## performance scripts: harness overhead and batching ratios
	$(PY) tests/perf/bench_overhead.py
	$(PY) tests/perf/bench_gptj_batching.py

lock: setup  ## re-lock requirements.in into requirements.lock (with hashes)
	$(UV) pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
		requirements.in -o requirements.lock
