#!/usr/bin/env bash
# The hub's fan-out while graph-algorithm jobs run, against the same
# fan-out without them (docs/algorithms.md, "Measurements"): a release hub
# on 127.0.0.1:$PORT, `hubbub bench fanout` with $SUBS subscribers at $RATE
# publications/s for $DURATION s, twice: alone, then while a loop keeps one
# job busy at a time ($ALGORITHM on a $NODES-node $GENERATOR graph, capped
# at $CAP events/s, with $EXTRA parameters: by default PageRank held to
# 1,000 iterations, a few seconds of CPU; started over HTTP as soon as the
# last one ended).
#
#   NO_BUILD=1 SUBS=1000 RATE=50 DURATION=20 scripts/bench-jobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8000}
SUBS=${SUBS:-1000}
RATE=${RATE:-50}
DURATION=${DURATION:-20}
ALGORITHM=${ALGORITHM:-pagerank}
GENERATOR=${GENERATOR:-random_geometric}
NODES=${NODES:-100000}
CAP=${CAP:-2000}
EXTRA=${EXTRA:-'{"tolerance": 1e-300, "max_iterations": 1000}'}
OUT=${OUT:-reports/bench-jobs}

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -p hubbub --bins
  cargo build --release -p hubbub-bench --bins
fi
mkdir -p "$OUT"
log="$OUT/hub.log"
target/release/hubbub serve --listen "127.0.0.1:$PORT" ${HUB_ARGS:-} >"$log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null || true; kill ${jobs_loop:-} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  sleep 0.1
done

fanout() {
  target/release/hubbub-bench bench fanout --url "ws://127.0.0.1:$PORT/ws" \
    -s "$SUBS" -r "$RATE" -d "$DURATION" --server-pid "$hub" --out "$1" >"$1.txt" 2>&1 || cat "$1.txt"
  cat "$1.txt"
}

echo "== fan-out alone"
fanout "$OUT/alone.json"

echo "== fan-out while $ALGORITHM jobs on $NODES nodes run back to back"
python3 - "$PORT" "$ALGORITHM" "$GENERATOR" "$NODES" "$CAP" "$((DURATION + 5))" "$OUT/jobs.json" "$EXTRA" <<'PY' &
import json, sys, time, urllib.request
port, algorithm, generator, nodes, cap, seconds, out, extra = sys.argv[1:]
base = f"http://127.0.0.1:{port}/api/algorithms"
params = {"graph": {"generator": generator, "nodes": int(nodes), "seed": 1},
          "source": 0, "target": int(nodes) - 1, "max_events_per_second": int(cap)}
params.update(json.loads(extra))
end = time.time() + float(seconds)
runs = []
while time.time() < end:
    req = urllib.request.Request(base, json.dumps({"algorithm": algorithm, "parameters": params}).encode(),
                                 {"Content-Type": "application/json"})
    job = json.load(urllib.request.urlopen(req))["job_id"]
    while True:
        listed = json.load(urllib.request.urlopen(base))
        mine = next(j for j in listed if j["job_id"] == job)
        if mine["status"] != "running":
            runs.append(mine["statistics"])
            break
        time.sleep(0.01)
json.dump(runs, open(out, "w"))
PY
jobs_loop=$!
sleep 1
fanout "$OUT/with-jobs.json"
wait $jobs_loop || true
python3 -c "import json,sys; r=json.load(open('$OUT/jobs.json')); print(len(r), 'jobs ran; wall ms each:', [s['wall_time_ms'] for s in r][:10])"
