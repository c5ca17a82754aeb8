# Two commands for a fresh Debian machine with Python 3.11:
#   make run    install, create demo data, serve on http://127.0.0.1:8080 (SQLite under ./data)
#   make test   install, start PostgreSQL/Redis/Chromium if needed, run lint and every test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint unit e2e services i18n clean

$(BIN)/python:
	@# Debian's python3 lacks venv until python3-venv is installed.
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || apt-get install -y -q python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/caunoi demo
	$(BIN)/caunoi serve

services:
	scripts/services.sh

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# Unit and integration tests (SQLite, PostgreSQL, Redis) run in this namespace; the browser and
# WebRTC tests run in a private network namespace of their own (scripts/netns-run.sh).
unit: install-test
	$(BIN)/pytest tests/unit tests/integration

e2e: install-test
	scripts/netns-run.sh $(BIN)/pytest tests/e2e tests/media

test: install-test services lint unit e2e

i18n: install-test
	$(BIN)/pybabel extract -F web/babel.cfg -k _ -k gettext -k ngettext:1,2 --no-location --sort-output \
		--project "Cầu Nối" -o web/locale/messages.pot web clinics classrooms server
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale --ignore-obsolete --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
