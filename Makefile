# Everything runs in a virtualenv of its own (.venv), created on first use.
#   make demo             run examples/demo.py (about 10 s)
#   make test             the whole test suite
#   make lint             ruff check, ruff format --check, mypy
#   make bench ARGS=...   the benchmarks (bench/run.py; ARGS=--quick for a short run)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall when the project's dependencies change.
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: demo test lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest tests $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy --strict examples
	$(PY) -m mypy --strict docs/examples

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
