# uvq-tflite: every target runs inside .venv/, built by `make setup`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST := $(PY) -m pytest

.PHONY: setup test test-slow lock clean help

help:
	@echo "make setup      create .venv/ and install pinned dependencies (idempotent)"
	@echo "make test       run the default test suite"
	@echo "make test-slow  run the end-to-end tests marked slow"
	@echo "make clean      remove generated models and caches (keeps .venv/)"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

test: setup
	$(PYTEST)

test-slow: setup
	$(PYTEST) -m slow

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^pip==' | sed 's/+cpu$$//' > constraints.txt.new
	@{ head -2 constraints.txt; cat constraints.txt.new; } > constraints.txt.tmp && rm constraints.txt.new && mv constraints.txt.tmp constraints.txt

clean:
	rm -rf .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
