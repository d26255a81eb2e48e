#!/usr/bin/env bash
# The JavaScript client's checks: dev dependencies from the lock file, the
# browser build (must match the committed dist/ that the hub embeds), type
# declarations, and the tests (client, React hooks, the shared conformance
# scenarios) against a real hub: $HUBBUB_BIN, else target/debug/hubbub
# built here.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)

npm ci --no-audit --no-fund --loglevel=error

if [ -z "${HUBBUB_BIN:-}" ]; then
  (cd "$root" && cargo build -q -p hubbub --bin hubbub)
  export HUBBUB_BIN="$root/target/debug/hubbub"
fi

node build.mjs
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
  ! git -C "$root" diff --quiet -- clients/js/dist; then
  echo "clients/js/dist differs from the committed build: run 'npm run build' in clients/js and commit it" >&2
  exit 1
fi
gz=$(gzip -9 -c dist/hubbub.min.js | wc -c)
echo "browser build: $(wc -c < dist/hubbub.min.js) bytes minified, $gz bytes gzip -9"
if [ "$gz" -gt 6144 ]; then
  echo "the browser build is over 6 KB gzipped" >&2
  exit 1
fi

npx tsc -p tsconfig.json
node --test --test-concurrency=1 --test-timeout=60000 test/*.test.js
