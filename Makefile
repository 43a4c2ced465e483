# The two commands: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install install-test clean help translations stripe-check mutation

help:
	@echo "make run    - install, migrate the SQLite database, load demo data once, start app and scheduler"
	@echo "make test   - install test dependencies (PostgreSQL too), lint, run the whole suite"
	@echo "make lint   - ruff (lint and format check), the import-layer contracts and mypy"
	@echo "make clean  - remove the virtual environment and caches (keeps instance/)"
	@echo "make stripe-check - the app's Stripe calls against Stripe's test mode (needs the internet"
	@echo "                    and STRIPE_API_KEY=sk_test_...)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed-run
	@scripts/run.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(VENV)/.installed-test
	@scripts/ensure-test-deps.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

# The app's own Stripe calls, once each, against Stripe's test mode with the operator's
# STRIPE_API_KEY (sk_test_...). Needs the internet, so it is a command and not a test.
stripe-check: $(VENV)/.installed-run
	$(BIN)/python scripts/stripe_check.py

# Mutation testing of the money's pure core (slow: not part of make test); writes
# bench/MUTATION.md. Needs mutmut (pip install mutmut==3.8.1).
mutation: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet "mutmut==3.8.1"
	$(BIN)/python -m bench.mutation

# After changing text on a page: collect the strings, merge them into the Dutch
# catalogue (translate what is new there), and compile it.
translations: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k lazy_gettext -k N_ -k Message:1 \
	  --no-location --sort-output --project="Social Outcomes Marketplace" \
	  -o marketplace/translations/messages.pot .
	$(BIN)/pybabel update -i marketplace/translations/messages.pot -d marketplace/translations \
	  --ignore-obsolete --no-fuzzy-matching --width 100
	$(BIN)/pybabel compile -d marketplace/translations --statistics

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .import_linter_cache *.egg-info
