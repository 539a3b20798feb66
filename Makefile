# notify_site — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup test lint fmt bench migration clean-venv

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

test: $(BIN)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(BIN)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print ratios against a baseline measured in the same run (see bench/README.md).
BENCHMARKS ?= accept deliver
bench: $(BIN)/.dev-installed
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	for name in $(BENCHMARKS); do $(BIN)/python -m bench.$$name || exit 1; done

# Generate a migration after changing the models: make migration MSG="add x"
migration: $(BIN)/.runtime-installed
	$(FLASK) db migrate -m "$(MSG)"

clean-venv:
	rm -rf $(VENV)
