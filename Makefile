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

LOCKS := images/base/requirements.lock images/pytorch/requirements.lock images/imaging/requirements.lock \
	images/speech/requirements.lock images/recommendation/requirements.lock tests/requirements.lock
# LoadGen builds of rounds other than the installed one's, beside it (harness/loadgen.py)
LOADGEN_BUILDS := 4.0.1

$(VENV)/.installed: $(LOCKS) pyproject.toml $(wildcard images/loadgen/*.lock) images/loadgen-build.sh
	python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --python $(PY) --require-hashes --compile-bytecode $(LOCKS)  # compiled once: every LoadGen test is a new process
	$(UV) pip install --python $(PY) --no-deps -e .
	for version in $(LOADGEN_BUILDS); do images/loadgen-build.sh $$version $(VENV)/loadgen/$$version; done
	touch $@

test: setup  ## run the whole test suite (unit, contract, end-to-end demo runs)
	$(PY) -m pytest

bench: setup  ## performance scripts: harness overhead, batching and Server ratios
	$(PY) tests/perf/bench_overhead.py
	$(PY) tests/perf/bench_batching.py gptj
	$(PY) tests/perf/bench_batching.py resnet --samples 64
	$(PY) tests/perf/bench_server.py bert
	$(PY) tests/perf/bench_batching.py sdxl
	$(PY) tests/perf/bench_batching.py unet3d
	$(PY) tests/perf/bench_batching.py rnnt
	$(PY) tests/perf/bench_batching.py dlrm
	$(PY) tests/perf/bench_dlrm_memory.py  # root, or a delegated memory cgroup

COMPILE = $(UV) pip compile -q --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes

lock: setup  ## re-lock every requirements.in into its requirements.lock (with hashes)
	$(COMPILE) images/base/requirements.in -o images/base/requirements.lock
	$(COMPILE) images/pytorch/requirements.in -c images/base/requirements.lock -o images/pytorch/requirements.lock
	$(COMPILE) images/imaging/requirements.in -c images/base/requirements.lock -c images/pytorch/requirements.lock \
		-o images/imaging/requirements.lock
	$(COMPILE) images/speech/requirements.in -c images/base/requirements.lock -c images/pytorch/requirements.lock \
		-c images/imaging/requirements.lock -o images/speech/requirements.lock
	$(COMPILE) images/recommendation/requirements.in -c images/base/requirements.lock -c images/pytorch/requirements.lock \
		-c images/imaging/requirements.lock -c images/speech/requirements.lock -o images/recommendation/requirements.lock
	$(COMPILE) tests/requirements.in -c images/base/requirements.lock -c images/pytorch/requirements.lock \
		-o tests/requirements.lock
