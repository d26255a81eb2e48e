#!/usr/bin/env bash
# RFC 6455 conformance: Autobahn|Testsuite cases 1-10 (kosoku runner) against
# the hub's testing echo endpoint, which uses the same transport and outbound
# frame path as /ws. Usage: scripts/conformance.sh [path-to-hubbub-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/hub.sh
bin=${1:-$(hub_bin)}
out=${CONFORMANCE_OUT:-target/conformance}
rm -rf "$out" && mkdir -p "$out"
log="$out/server.log"
start_hub conformance "$bin" "$log" --testing-echo
addr=$hub_addr
echo "conformance: kosoku against ws://$addr/ (echo endpoint)"
(cd "$out" && kosoku -x '12.*' -x '13.*' -p 2 "ws://$addr/" >kosoku.log 2>&1) || {
  tail -n 30 "$out/kosoku.log"; echo "conformance: FAILED"; exit 1; }
python3 - "$out/reports/clients/index.json" <<'PY'
import json, sys
from collections import Counter
cases = [v for agent in json.load(open(sys.argv[1])).values() for v in agent.values()]
verdicts = Counter((c["behavior"], c["behaviorClose"]) for c in cases)
bad = [c for c in cases if c["behavior"] not in ("OK", "INFORMATIONAL", "NON-STRICT")
       or c["behaviorClose"] not in ("OK", "INFORMATIONAL")]
print("conformance:", len(cases), "cases;", dict(verdicts))
print(f"conformance: {len(cases) - len(bad)} passed, {len(bad)} failed")
sys.exit(1 if bad or not cases else 0)
PY
