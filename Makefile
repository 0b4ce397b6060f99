# Two commands on a fresh machine: `make demo` runs the pipeline against the sandbox,
# `make test` runs the test suite. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installing compiles the matching core (mypyc, see pyproject.toml): an edit to it installs again, so what runs is
# what the sources say (matching/compiled.py falls back to the sources, with a warning, if it did not).
$(STAMP): pyproject.toml $(wildcard matching/*.py) | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole product against the built-in sandbox (size M org in both CRMs, SQLite store in .abm/).
demo: $(STAMP)
	$(BIN)/abm demo

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
# Most tests wait on the sandbox (rate limits, retries, leases) far more than they compute, so they run in
# TEST_WORKERS processes (pytest-xdist), each with its own sandbox; TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
