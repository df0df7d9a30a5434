# stockfeed: `make run` starts the server, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: setup run test lint format check-python bench bench-resume chaos clean frontend frontend-check

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stockfeed needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'

$(STAMP): backend/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e 'backend[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The dashboard (frontend/, served at /): `npm ci` only when the lockfile changed (stamp),
# a build only when a frontend source changed (dist/index.html is the target).
FE := frontend
FE_STAMP := $(FE)/node_modules/.ci-stamp
FE_SRC := $(shell find $(FE)/src -type f 2>/dev/null) $(FE)/index.html $(FE)/vite.config.ts $(FE)/tsconfig.json $(FE)/package.json

$(FE_STAMP): $(FE)/package-lock.json
	cd $(FE) && npm ci --no-audit --no-fund
	touch $(FE_STAMP)

$(FE)/dist/index.html: $(FE_STAMP) $(FE_SRC)
	cd $(FE) && npm run build

frontend: $(FE)/dist/index.html

# tsc, eslint, vitest, then the browser tests against a real server (frontend/e2e/run.mjs).
frontend-check: setup frontend
	cd $(FE) && npm run typecheck && npm run lint && npm test && npm run e2e

run: setup frontend
	$(BIN)/stockfeed serve $(ARGS)

lint: setup
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests
	cd backend && ../$(BIN)/mypy --strict src/stockfeed
	$(BIN)/ruff check bench chaos && $(BIN)/ruff format --check bench chaos

format: setup
	cd backend && ../$(BIN)/ruff format src tests && ../$(BIN)/ruff check --fix src tests

test: setup lint frontend-check
	cd backend && ../$(BIN)/pytest -q

# The fan-out benchmark against peer servers (not part of `make test`; needs Redis on
# 127.0.0.1:6379 and npm). `make bench ARGS="--quick"`, `make bench ARGS="--find-max"`.
bench: setup
	bash bench/setup.sh && $(BIN)/python -m bench.run $(ARGS)

# Resume after a 10 s outage: replayed vs missed updates, on the same and another process.
bench-resume: setup
	bash bench/setup.sh && $(BIN)/python -m bench.resume $(ARGS)

# Fault injection (not part of `make test`; needs redis-server, starts its own): a Redis
# outage under load, the updater SIGKILLed, a reconnect storm, a leak check, and hostile
# clients (floods, slowloris, churn, many connections from one IP; ~3 min of the total).
# `make chaos ARGS="--quick"` shorter, `ARGS="--only hostile"` for one scenario.
chaos: setup
	$(BIN)/python -m chaos.run $(ARGS)

clean:
	rm -rf $(VENV) $(FE)/node_modules $(FE)/dist
