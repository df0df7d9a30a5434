# stockfeed: `make run` starts the server, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: setup run test lint format check-python bench bench-resume clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stockfeed needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'

$(STAMP): backend/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e 'backend[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/stockfeed serve $(ARGS)

lint: setup
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests
	cd backend && ../$(BIN)/mypy --strict src/stockfeed
	$(BIN)/ruff check bench && $(BIN)/ruff format --check bench

format: setup
	cd backend && ../$(BIN)/ruff format src tests && ../$(BIN)/ruff check --fix src tests

test: setup lint
	cd backend && ../$(BIN)/pytest -q

# The fan-out benchmark against peer servers (not part of `make test`; needs Redis on
# 127.0.0.1:6379 and npm). `make bench ARGS="--quick"`, `make bench ARGS="--find-max"`.
bench: setup
	bash bench/setup.sh && $(BIN)/python -m bench.run $(ARGS)

# Resume after a 10 s outage: replayed vs missed updates, on the same and another process.
bench-resume: setup
	bash bench/setup.sh && $(BIN)/python -m bench.resume $(ARGS)

clean:
	rm -rf $(VENV)
