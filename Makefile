# stockfeed: `make run` starts the server, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# Some machines set PYTHONDONTWRITEBYTECODE; then every test run compiles the package and
# re-rewrites every test module's asserts again (seconds per pytest worker). An empty value
# lets Python cache bytecode in __pycache__ (ignored by git) as it does by default.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup run test test-fast test-hours lint format check-python bench bench-store bench-resume bench-redis-scale chaos clean client client-check frontend frontend-check dist

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stockfeed needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'

$(STAMP): backend/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e 'backend[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The TypeScript client (clients/js, the package @stockfeed/client) comes first: the
# dashboard depends on it (`file:../clients/js`) for all its feed logic. Same rules: `npm ci`
# when its lockfile changed, `tsc` into clients/js/dist when a source changed.
JS := clients/js
JS_STAMP := $(JS)/node_modules/.ci-stamp
JS_SRC := $(shell find $(JS)/src -type f 2>/dev/null) $(JS)/package.json $(JS)/tsconfig.json $(JS)/tsconfig.build.json

$(JS_STAMP): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $(JS_STAMP)

$(JS)/dist/index.js: $(JS_STAMP) $(JS_SRC)
	cd $(JS) && npm run build

client: $(JS)/dist/index.js

# The package's tsc, eslint and vitest (against real `stockfeed serve` processes: restart,
# resume, gap, auth refusal; the React hooks in jsdom).
client-check: setup client
	cd $(JS) && npm run typecheck && npm run lint && npm test

# The dashboard (frontend/, served at /): `npm ci` only when the lockfile changed (stamp),
# a build only when a frontend source (or the client package) changed (dist/index.html is
# the target).
FE := frontend
FE_STAMP := $(FE)/node_modules/.ci-stamp
FE_SRC := $(shell find $(FE)/src -type f 2>/dev/null) $(FE)/index.html $(FE)/vite.config.ts $(FE)/tsconfig.json $(FE)/package.json

$(FE_STAMP): $(FE)/package-lock.json
	cd $(FE) && npm ci --no-audit --no-fund
	touch $(FE_STAMP)

$(FE)/dist/index.html: $(FE_STAMP) $(FE_SRC) $(JS)/dist/index.js
	cd $(FE) && npm run build

frontend: $(FE)/dist/index.html

# The client package's checks, then the dashboard's: tsc, eslint, vitest, then the browser
# tests against a real server (frontend/e2e: the dashboard, and the README's example app
# built from the packed client tarball).
frontend-check: setup client-check frontend
	cd $(FE) && npm run typecheck && npm run lint && npm test && npm run e2e

# The server as a package: a wheel and an sdist in dist/, with the built dashboard inside
# (frontend/dist copied to stockfeed/static/, which git ignores). Then, anywhere:
# `pip install dist/stockfeed-*.whl && stockfeed serve` (no Node, no checkout).
DIST := dist
PKG_STATIC := backend/src/stockfeed/static

dist: setup frontend
	rm -rf $(PKG_STATIC) $(DIST) backend/build
	mkdir -p $(PKG_STATIC) && cp -R $(FE)/dist/. $(PKG_STATIC)/
	$(BIN)/python -m build --no-isolation --outdir $(DIST) backend
	rm -rf backend/build
	$(BIN)/twine check --strict $(DIST)/*

run: setup frontend
	$(BIN)/stockfeed serve $(ARGS)

lint: setup
	cd backend && ../$(BIN)/ruff check src tests && ../$(BIN)/ruff format --check src tests
	cd backend && ../$(BIN)/mypy --strict src/stockfeed
	$(BIN)/ruff check bench chaos && $(BIN)/ruff format --check bench chaos

format: setup
	cd backend && ../$(BIN)/ruff format src tests && ../$(BIN)/ruff check --fix src tests

# dist first: tests/test_dist.py installs that wheel into a new virtualenv and drives it.
test: setup lint frontend-check dist
	cd backend && ../$(BIN)/pytest -q -n 3 --durations=15

# The fast lane: only the tests that start no process (no `stockfeed serve`, Redis or
# PostgreSQL; those are marked `process`): the hub, admission, the protocol, and the
# endpoints in-process. Modules marked `process` as a whole are not even imported
# (tests/conftest.py), nor is schemathesis's plugin (only those modules use it). Six
# workers on two cores: many of these tests wait on timers, not the CPU. `make test`
# still runs everything.
test-fast: setup
	cd backend && ../$(BIN)/pytest -q -n 6 -m "not process" -p no:schemathesis

# The fast lane again at the hours nobody is awake for, under Debian's libfaketime (the
# clock starts at each moment and runs on): after midnight UTC but before midnight in New
# York (UTC and exchange days differ), New York's pre-market, a Saturday, a holiday, the
# day after Thanksgiving (a half day, post-market), the Sunday clocks go forward and the
# Monday after. Tests that start processes are left out: redis-server does not run under
# libfaketime (its allocator recurses into the clock). Not part of `make test` (~40 s an
# hour); run it when a change touches days, sessions or ranges.
FAKETIME_LIB := /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
HOURS ?= 2026-12-08T00:30:00 2026-12-08T09:15:00 2026-12-12T15:00:00 2026-12-25T15:00:00 \
	2026-11-27T18:30:00 2026-03-08T07:30:00 2026-03-09T13:45:00
test-hours: setup
	@test -e $(FAKETIME_LIB) || { echo "test-hours needs Debian's faketime (apt-get install faketime)"; exit 1; }
	@cd backend && for at in $(HOURS); do \
		echo "== $$at UTC"; \
		LD_PRELOAD=$(FAKETIME_LIB) FAKETIME="@$${at/T/ }" TZ=UTC \
			../$(BIN)/pytest -q -n 6 -m "not process" -p no:schemathesis -p no:cacheprovider || exit 1; \
	done

# The fan-out benchmark against peer servers (not part of `make test`; needs Redis on
# 127.0.0.1:6379 and npm). `make bench ARGS="--quick"`, `make bench ARGS="--find-max"`.
bench: setup
	bash bench/setup.sh && $(BIN)/python -m bench.run $(ARGS)

# The market-data store (docs/store.md): writes/s, bytes per bar and tick, /api/history for a
# year of 1m bars from SQLite and PostgreSQL (its own server), a 30-day sizing check.
bench-store: setup
	$(BIN)/python -m bench.store $(ARGS)

# Resume after a 10 s outage: replayed vs missed updates, on the same and another process.
bench-resume: setup
	bash bench/setup.sh && $(BIN)/python -m bench.resume $(ARGS)

# One Redis vs a 3-shard Redis Cluster under the same publish load (docs/scaling.md).
bench-redis-scale: setup
	$(BIN)/python -m bench.redis_scale $(ARGS)

# Fault injection (not part of `make test`; needs redis-server, starts its own): a Redis
# outage under load, the updater SIGKILLed, a reconnect storm, a leak check, and hostile
# clients (floods, slowloris, churn, many connections from one IP; ~3 min of the total).
# `make chaos ARGS="--quick"` shorter, `ARGS="--only hostile"` for one scenario.
chaos: setup
	$(BIN)/python -m chaos.run $(ARGS)

clean:
	rm -rf $(VENV) $(FE)/node_modules $(FE)/dist $(JS)/node_modules $(JS)/dist $(DIST) $(PKG_STATIC) backend/build
