# Everything runs in a virtualenv of its own (.venv), created on first use.
#   make demo             run examples/demo.py (about 10 s)
#   make test             the whole test suite on $(TEST_WORKERS) pytest-xdist workers
#                         (ARGS=... passes pytest options; TEST_WORKERS=0 runs it in one process)
#   make lint             ruff check, ruff format --check, mypy
#   make bench ARGS=...   the benchmarks (bench/run.py; ARGS=--quick for a short run)
#   make docs             the documentation site (mkdocs build --strict) into site/
# PYTHON=python3.12 make ... picks the interpreter the virtualenv is made from.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall when the project's dependencies change.
STAMP := $(VENV)/.installed
ARGS ?=
# The suite mostly waits (sleeps, servers, subprocess fleets), so more workers than cores pay;
# tests/conftest.py keeps the fleet and wall-clock tests on one worker, one after another.
TEST_WORKERS ?= 4
# The docs tools (the project's docs extra), installed into the same virtualenv on first use.
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint bench docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "tickwork needs Python 3.11 or newer; try: make PYTHON=python3.11 ..."; exit 1; }
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

# Runs every check, then fails if any failed (so one run shows all problems).
lint: $(STAMP)
	@status=0; \
	for check in "ruff check ." "ruff format --check ." "mypy" \
			"mypy --strict examples" "mypy --strict docs/examples"; do \
		echo "== $$check"; $(PY) -m $$check || status=1; \
	done; \
	exit $$status

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	@touch $(DOCS_STAMP)

# Builds the site into site/ (open site/index.html); any warning fails the build.
docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
