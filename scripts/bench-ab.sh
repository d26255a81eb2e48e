#!/usr/bin/env bash
# A/B of server builds under one fan-out, interleaved so that machine noise
# falls on every side alike: each ROUND starts each server in turn on a
# fresh port, runs `hubbub bench fanout` against it and stops it.
#   scripts/bench-ab.sh [-s SUBS] [-r RATE] [-n ROUNDS] [-o DIR] SPEC...
# SPEC is `hubbub=PATH` (a hubbub binary: `serve`), `raw=PATH` (that
# binary's `bench raw-server`) or `raw2=PATH` (the same, 2 threads); a
# label may follow after a colon: `hubbub=/tmp/old:before`.
# BENCH (default target/release/hubbub) is the client for every run.
# Prints one median line per run and a summary of the medians per label.
set -euo pipefail
cd "$(dirname "$0")/.."
S=1000 R=50 N=3 OUT=${TMPDIR:-/tmp}/hubbub-ab-$(date -u +%Y%m%dT%H%M%S) PORT=${PORT:-18400}
while getopts "s:r:n:o:" o; do case $o in s) S=$OPTARG;; r) R=$OPTARG;; n) N=$OPTARG;; o) OUT=$OPTARG;; *) exit 2;; esac; done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-s SUBS] [-r RATE] [-n ROUNDS] [-o DIR] SPEC..." >&2; exit 2; }
BENCH=${BENCH:-target/release/hubbub}
mkdir -p "$OUT"
for round in $(seq 1 "$N"); do
  for spec in "$@"; do
    kind=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; label=${rest#*:}
    [ "$label" = "$rest" ] && label="$kind-$(basename "$bin")"
    case $kind in
      hubbub) "$bin" serve --listen 127.0.0.1:$PORT --set server.max_connections=30000 >/dev/null 2>&1 & ;;
      raw) "$bin" bench raw-server --listen 127.0.0.1:$PORT >/dev/null 2>&1 & ;;
      raw2) "$bin" bench raw-server --listen 127.0.0.1:$PORT --threads 2 >/dev/null 2>&1 & ;;
      *) echo "unknown kind $kind" >&2; exit 2;;
    esac
    sp=$!
    sleep 1
    "$BENCH" bench fanout --url ws://127.0.0.1:$PORT/ws --api-url http://127.0.0.1:$PORT \
      -s "$S" -r "$R" --duration 10 --repetitions 3 --warmup 2 --out "$OUT/$label-$round.json" 2>&1 \
      | tail -1 | sed "s|^ *|$label round $round: |"
    kill -INT $sp; wait $sp 2>/dev/null || true
    PORT=$((PORT + 1))
  done
done
python3 - "$OUT" <<'PY'
import json, sys, glob, os, statistics as st
by = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    label = os.path.basename(f).rsplit("-", 1)[0]
    ws = [w for w in json.load(open(f))["windows"]]
    by.setdefault(label, []).extend(ws)
print("label: windows, median p50 / p99 ms (min..max), median CPU us/delivery (min..max)")
for label, ws in by.items():
    p50 = [w["latency"]["p50_ms"] for w in ws]; p99 = [w["latency"]["p99_ms"] for w in ws]
    cpu = [w["server_cpu_us_per_delivery"] for w in ws if w.get("server_cpu_us_per_delivery")]
    print(f"{label}: {len(ws)}, {st.median(p50):.2f} / {st.median(p99):.2f} ({min(p99):.2f}..{max(p99):.2f}),"
          f" {st.median(cpu):.2f} ({min(cpu):.2f}..{max(cpu):.2f})" if cpu else f"{label}: no cpu figures")
PY
