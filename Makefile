# FlexAdmin: `make run` serves the demo, `make test` runs the whole suite.
# Needs only Python 3.11+ and make: everything else goes into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: help install run dev test lint fmt check clean

help:
	@echo "make run    - install, migrate, seed the demo, serve http://$(HOST):$(PORT)"
	@echo "             under gunicorn (with REDIS_URL set, also a Celery worker and beat: see Procfile)"
	@echo "make dev    - the same demo on Django's development server, reloading on code changes"
	@echo "make test   - run the whole test suite (SQLite, tasks in-process)"
	@echo "make lint   - ruff, and import-linter (the layers in pyproject.toml)"

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "FlexAdmin needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

# The demo runs like production would (DEBUG off: friendly error pages, collected static
# files); DEBUG=1 make run gives Django's debug pages instead.
run: export DEBUG ?= 0
run: export SECRET_KEY ?= $(shell test -s .local-secret-key || $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > .local-secret-key; cat .local-secret-key)
run: export FLEX_SITE_URL ?= http://$(HOST):$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Serving $(FLEX_SITE_URL)/  (Ctrl+C stops)"
	@# With REDIS_URL set, a Celery worker and beat run beside the web server (Procfile);
	@# without it, tasks run in-process and the web server is all there is.
	@if [ -n "$$REDIS_URL" ]; then \
		echo "REDIS_URL is set: starting web, a Celery worker and beat (Procfile)"; \
		HOST=$(HOST) WEB_PORT=$(PORT) exec $(BIN)/honcho start -f Procfile; \
	else \
		echo "No REDIS_URL: the scheduled jobs (expiry, reminders, alerts) run once now; see docs/operations.md"; \
		$(BIN)/python manage.py run_jobs -v0; \
		exec $(BIN)/gunicorn flexadmin.wsgi --bind $(HOST):$(PORT); \
	fi

# Development: Django's server, reloading on every code change, with Django's debug pages.
dev: export DEBUG ?= 1
dev: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles test-output .pytest_cache .ruff_cache .hypothesis .schemathesis .import_linter_cache celerybeat-schedule*
