#!/usr/bin/env bash
# OpenAPI conformance: schemathesis (pip install schemathesis==4.32.5)
# generates requests from the hub's own /api/openapi.json and checks every
# answer against it (no server errors, documented statuses, content types
# and schemas; valid input accepted, invalid input refused; the key
# enforced), so the document and the server cannot drift apart.
# Usage: scripts/schemathesis.sh [path-to-hubbub-binary]
# SCHEMATHESIS_EXAMPLES (default 40) bounds the cases per operation; the
# default run takes about a minute. SCHEMATHESIS_SEED (default 1) picks the
# random seed, so a run is reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/hub.sh
bin=${1:-$(hub_bin)}
out=${SCHEMATHESIS_OUT:-target/schemathesis}
examples=${SCHEMATHESIS_EXAMPLES:-40}
seed=${SCHEMATHESIS_SEED:-1}
key=schemathesis-api-key
rm -rf "$out" && mkdir -p "$out"
log="$out/server.log"
start_hub schemathesis "$bin" "$log" --mode development --api-key "$key"
addr=$hub_addr
echo "schemathesis: $(schemathesis --version 2>&1 | head -n1) against http://$addr/api/openapi.json"
status=0
# Run inside $out: schemathesis keeps its example database in the working
# directory (.schemathesis/), which belongs under target/, not in the tree.
config="$PWD/scripts/schemathesis.toml"
(cd "$out" && schemathesis --config-file "$config" run "http://$addr/api/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all --exclude-checks use_after_free,ensure_resource_availability \
  --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 10 \
  --report junit --report-junit-path junit.xml \
  >schemathesis.log 2>&1) || status=$?
tail -n 40 "$out/schemathesis.log"
python3 - "$out/junit.xml" "$status" <<'PY'
import sys
import xml.etree.ElementTree as ET
# One test case per operation ("POST /api/publish"), plus the stateful
# run, which fails the script without being counted as an operation.
failed = passed = other = 0
for c in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = c.get("name") or ""
    bad = c.find("failure") is not None or c.find("error") is not None
    if bad:
        print("schemathesis: FAILED", name)
    if " /" not in name:
        other += bad
    elif bad:
        failed += 1
    else:
        passed += 1
print(f"schemathesis: {passed} passed, {failed} failed")
sys.exit(1 if failed or other or passed == 0 or sys.argv[2] != "0" else 0)
PY
