#!/usr/bin/env bash
# Install what the benchmark needs: Python packages into .venv, the Node peer's packages.
# Idempotent and quick when nothing changed (a stamp file remembers what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "bench/setup.sh: $VENV is missing: run \`make setup\` first" >&2
  exit 1
fi
if [[ ! -x "$VENV/bin/stockfeed" ]]; then
  echo "bench/setup.sh: stockfeed is not installed in $VENV: run \`make setup\` first" >&2
  exit 1
fi

stamp="$VENV/.bench-stamp"
if [[ ! -f "$stamp" ]] || ! cmp -s bench/requirements.txt "$stamp"; then
  echo "bench/setup.sh: installing bench/requirements.txt into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
  cp bench/requirements.txt "$stamp"
fi

node_dir=bench/peers/node_ws
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bench/setup.sh: node/npm not found: the node_ws peer will be skipped" >&2
  exit 0
fi
node_stamp="$node_dir/node_modules/.bench-stamp"
if [[ ! -f "$node_stamp" ]] || ! cmp -s "$node_dir/package-lock.json" "$node_stamp"; then
  echo "bench/setup.sh: npm ci in $node_dir"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$node_dir/package-lock.json" "$node_stamp"
fi
