#!/usr/bin/env bash
# The dashboard's browser tests: playwright-core (from the lock file)
# driving Debian's Chromium ($CHROMIUM, else /usr/bin/chromium; never a
# downloaded browser) against real hubs started from $HUBBUB_BIN, else
# target/debug/hubbub built here. The tests save the screenshots shown in
# docs/dashboard.md. DASHBOARD_ASSETS=<dir> serves the page from disk
# instead of the binary, for working on it without rebuilding.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../../.. && pwd)

npm ci --no-audit --no-fund --loglevel=error

if [ -z "${HUBBUB_BIN:-}" ]; then
  (cd "$root" && cargo build -q -p hubbub --bin hubbub)
  export HUBBUB_BIN="$root/target/debug/hubbub"
fi

node --test --test-concurrency=1 --test-timeout=120000 dashboard.test.mjs graph.test.mjs
