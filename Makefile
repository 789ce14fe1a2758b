# Two commands for a fresh machine with Python 3.11+:
#   make run   - set everything up and serve the site with demo data (web + Celery worker + beat)
#   make test  - lint and run the test suite
#   make test-quick - the test suite without its slow tests (no lint), for the edit-test loop
# SQLite and a server-less broker by default; PostgreSQL / Redis when DATABASE_URL /
# CELERY_BROKER_URL are set.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test test-quick lint format migrate seed clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

migrate: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo

run: seed
	mkdir -p var
	@echo "Serving on http://127.0.0.1:$(PORT)/  (demo logins in README.md; Ctrl+C stops everything)"
	@echo "E-mails are written to var/mail/, one file per message (EMAIL_BACKEND overrides)."
	DEBUG=$${DEBUG:-1} PORT=$(PORT) EMAIL_BACKEND=$${EMAIL_BACKEND:-django.core.mail.backends.filebased.EmailBackend} \
		SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)} $(BIN)/honcho start -f Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

test: lint
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python -m pytest $(PYTEST_ARGS)

# The edit-test loop: everything but the slow tests (schemathesis, browsers, worker processes,
# parallel HTTP); `make test` still runs them all.
test-quick: install
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var db.sqlite3 db.sqlite3-wal db.sqlite3-shm
