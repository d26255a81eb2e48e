#!/usr/bin/env bash
# Tests of the Python client: a venv with pinned test dependencies, mypy --strict,
# then pytest (its own tests and the shared conformance scenarios) against a real
# hub: $HUBBUB_BIN, or the debug binary built with cargo from this repository.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
if [ -z "${HUBBUB_BIN:-}" ]; then
  (cd ../.. && cargo build -q -p hubbub --bin hubbub)
  export HUBBUB_BIN="$(cd ../.. && pwd)/target/debug/hubbub"
fi
.venv/bin/mypy --strict hubbub tests
.venv/bin/python -m pytest -q "$@"
