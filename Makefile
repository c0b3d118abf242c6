# optbench — `make run` and `make test` work from a fresh clone (they create .venv and install).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
PYTEST_ARGS ?=
FAULT_TRIALS ?= 10

.PHONY: install run test lint fmt bench faults clean

# `make run` installs what serving needs (the server extra); `make test` adds the dev tooling
# (pytest, playwright, linters) and the example plugin the suite runs end to end.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[server]'
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) examples/plugin/pyproject.toml
	$(PY) -m pip install -q -e '.[server,dev]'
	$(PY) -m pip install -q --no-deps -e examples/plugin
	@touch $(DEV_STAMP)

install: $(DEV_STAMP)

run: $(STAMP)
	$(PY) -m api.launcher

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Kill workers and restart private PostgreSQL/Redis servers mid-experiment; prints the table.
faults: install
	$(PY) -m tests.faults --trials $(FAULT_TRIALS)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/optimizers.py
	$(PY) bench/batching.py
	$(PY) bench/sweeps.py
	$(PY) bench/summary.py
	$(PY) bench/load.py
	$(PY) bench/service.py

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis
