# notify_site — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
# The port reaches `flask setup` and `flask serve`: the relay's origins and the OAuth redirect
# URI follow it unless set (notify_site/config.py port_defaults).
export PORT
AXE := .axe/node_modules/axe-core/axe.min.js

.PHONY: run setup test lint scan fmt bench migration clean-venv translations

# The virtualenv is rebuilt whenever a requirements file changes.
$(BIN)/.runtime-installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.runtime-installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.runtime-installed
	$(FLASK) setup

run: setup
	$(FLASK) serve --host $(HOST) --port $(PORT)

# The suite runs in TEST_PROCESSES processes (pytest-xdist; "auto": one per core, 0: none).
# Most of a test's time is spent waiting on a browser, a server or a subprocess, so two
# processes on two cores take well under the time of one.
TEST_PROCESSES ?= auto

test: $(BIN)/.dev-installed $(AXE)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

# axe-core, the accessibility engine the browser tests inject into every page (issue 23):
# npm's package in a folder of its own, not a dependency of the site (nothing is served from
# it). tests/browser/test_accessibility_browser.py reads it from here (or NOTIFY_SITE_AXE).
$(AXE):
	npm install --no-save --no-audit --no-fund --silent --prefix .axe axe-core@4
	test -f $@

# The whole suite again with every test on a fresh PostgreSQL schema, plus the slow scale and
# restart tests of tests/postgres/ (see tests/conftest.py). Needs a PostgreSQL server.
# The slow tests run after the rest, alone: one stops and starts the PostgreSQL server every
# other test uses, and the scale test wants both cores to itself.
# The schemathesis fuzz test runs here once, on its own (`make scan` and `make test` run it on
# SQLite): PostgreSQL refuses what SQLite lets through (NUL in a string, a number past a
# column's range), and only this run found the 500s those gave (2026-12-06).
.PHONY: test-postgres
test-postgres: $(BIN)/.dev-installed $(AXE)
	NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1 \
	NOTIFY_SITE_TEST_DATABASE_URL=$${NOTIFY_SITE_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) -m "not slow" \
	  --ignore=tests/unit/test_schemathesis.py $(PYTEST_ARGS)
	NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1 \
	NOTIFY_SITE_TEST_DATABASE_URL=$${NOTIFY_SITE_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_schemathesis.py $(PYTEST_ARGS)
	NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1 \
	NOTIFY_SITE_TEST_DATABASE_URL=$${NOTIFY_SITE_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(BIN)/python -m pytest -m slow --ignore=tests/unit/test_schemathesis.py $(PYTEST_ARGS)

# The delivery figures of docs/reliability.md (kill -9 of workers and of the web process,
# PostgreSQL restarts, upstream chaos, a 401, 1,000 failures at once, 400s, one Idempotency-Key),
# proved on a throwaway PostgreSQL cluster of its own against a fault-injecting Notify server;
# prints a table and fails if a figure misses (README "Proving the reliability figures"). It
# never touches the machine's PostgreSQL server. CHAOS_* variables scale it (chaos/__main__.py).
.PHONY: chaos
chaos: $(BIN)/.dev-installed
	$(BIN)/python -m chaos

# ruff, then the import contracts of pyproject.toml (import-linter): the site and the relay
# apart, the site's layers, the Notify client without Flask or models.
lint: $(BIN)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Security scanners (reliability.md "Scanners and fuzzers"); CI runs this after `make lint`.
# bandit: medium and high findings fail (config in pyproject.toml). pip-audit: any known
# vulnerability fails; .ci/pip_audit.py says loudly when the service cannot be reached.
# schemathesis: generated requests against /api/v1/openapi.json, in-process, with a real key.
# The relay's LINE webhook fuzzed from LINE's webhook.yml: 25 bodies per event and message
# type and 375 mixed ones (`make test` runs 3 and 45).
LINE_FUZZ_EXAMPLES ?= 25
scan: $(BIN)/.dev-installed
	$(BIN)/bandit -c pyproject.toml -r notify_site --severity-level medium
	$(BIN)/python .ci/pip_audit.py requirements.txt
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_schemathesis.py
	NOTIFY_SITE_LINE_FUZZ_EXAMPLES=$(LINE_FUZZ_EXAMPLES) $(BIN)/python -m pytest -q \
		-p no:cacheprovider tests/integration/relay_line/test_line_webhook_fuzz.py

fmt: $(BIN)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print ratios against a baseline measured in the same run (see bench/README.md).
BENCHMARKS ?= accept deliver schedule
bench: $(BIN)/.dev-installed
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	for name in $(BENCHMARKS); do $(BIN)/python -m bench.$$name || exit 1; done

# Generate a migration after changing the models: make migration MSG="add x"
migration: $(BIN)/.runtime-installed
	$(FLASK) db migrate -m "$(MSG)"

clean-venv:
	rm -rf $(VENV)

# Languages (README "Languages"): extract every marked string, merge it into each catalogue
# under notify_site/translations/, and compile the .mo files, which are committed (so a fresh
# clone, `make run`, `make test` and `gunicorn wsgi:app` need no build step). Translate the new
# or fuzzy entries of the .po files, then run this again to compile them.
LOCALES ?= ja zh_Hant_TW th
TRANSLATIONS := notify_site/translations
translations: $(BIN)/.runtime-installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ --sort-output --omit-header \
		--project notify_site -o $(TRANSLATIONS)/messages.pot .
	for locale in $(LOCALES); do \
		if [ -f $(TRANSLATIONS)/$$locale/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l $$locale \
				--ignore-obsolete || exit 1; \
		else \
			$(BIN)/pybabel init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l $$locale || exit 1; \
		fi; \
	done
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics
