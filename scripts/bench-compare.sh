#!/usr/bin/env bash
# Runs hubbub, the raw baseline and every installed peer in turn on this box
# under the same `hubbub bench` scenarios, and writes a markdown table with
# ratios to bench/results/YYYY-MM-DD.md (JSON reports next to it).
#
#   scripts/bench-compare.sh [SERVER...]
#     SERVER: hubbub raw raw-writev node-ws python-websockets (default: all
#     of them whose peer is installed; see bench/peers/install.sh)
#   env: DURATION (s, default 20) REPS (default 3) WARMUP (default 3)
#        SCENARIOS (default "fanout-1k fanout-10k fanout-1k-max http-publish")
#   fanout-1k: 1,000 subscribers x 50 publishes/s of 100 B; fanout-10k:
#   10,000 x 1/s; fanout-1k-max: 1,000 subscribers, publishes as fast as 4
#   HTTP publishers get answers; http-publish: 32 publishers, no subscribers.
#
# Needs `cargo build --release -p hubbub -p hubbub-bench` first. Ports 9100+ on loopback.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
HUBBUB="${BENCH_HUBBUB_BIN:-$ROOT/target/release/hubbub}"
CACHE="${BENCH_PEERS_DIR:-$HOME/.cache/hubbub-peers}"
DURATION="${DURATION:-20}"; REPS="${REPS:-3}"; WARMUP="${WARMUP:-3}"
SCENARIOS="${SCENARIOS:-fanout-1k fanout-10k fanout-1k-max http-publish}"
DAY="$(date -u +%Y-%m-%d)"
OUTDIR="bench/results/$DAY"; mkdir -p "$OUTDIR"
MD="bench/results/$DAY.md"
[ -x "$HUBBUB" ] || { echo "build first: cargo build --release -p hubbub -p hubbub-bench" >&2; exit 2; }
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true

servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  servers=(hubbub raw raw-writev)
  [ -d "$CACHE/node/node_modules/ws" ] && servers+=(node-ws)
  [ -x "$CACHE/python/bin/python" ] && servers+=(python-websockets)
  [ -d "$CACHE/node/node_modules/socket.io" ] && servers+=(socketio)
  [ -x "$CACHE/sockudo/bin/sockudo" ] && servers+=(sockudo)
fi

# scenario name -> bench arguments
args_for() {
  case "$1" in
    fanout-1k) echo "fanout -s 1000 -r 50 -p 100";;
    fanout-10k) echo "fanout -s 10000 -r 1 -p 100";;
    fanout-1k-max) echo "fanout -s 1000 -r 0 -p 100";;
    http-publish) echo "http-publish --publishers 32";;
  esac
}

port=9100
for srv in "${servers[@]}"; do
  port=$((port + 10))
  api="http://127.0.0.1:$port"
  url="ws://127.0.0.1:$port/ws"
  extra=""
  start=("bench/peers/start.sh" "$srv" "$port")
  case "$srv" in
    socketio) url="ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket"; extra="--protocol socketio";;
    sockudo) url="ws://127.0.0.1:$port/app/bench-key?protocol=7&client=hubbub-bench&version=1"; extra="--protocol pusher";;
    python-websockets) api="http://127.0.0.1:$((port + 1))";;
    raw-writev) start=(env RAW_ARGS="--writev-batch 16" bench/peers/start.sh raw "$port");;
  esac
  for sc in $SCENARIOS; do
    # The raw baseline does not count publications without subscribers.
    "${start[@]}" >"$OUTDIR/$srv-$sc.server.log" 2>&1 &
    spid=$!
    for _ in $(seq 100); do
      (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1
    done
    cmd="$HUBBUB bench $(args_for "$sc") --url $url $extra --api-url $api -d $DURATION --repetitions $REPS --warmup $WARMUP --out $OUTDIR/$srv-$sc.json"
    echo "$cmd" > "$OUTDIR/$srv-$sc.cmd"
    echo "== $srv $sc: $cmd" >&2
    $cmd >"$OUTDIR/$srv-$sc.txt" 2>"$OUTDIR/$srv-$sc.err"
    cat "$OUTDIR/$srv-$sc.txt" >&2
    kill -INT "$spid" 2>/dev/null; sleep 1; kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    sleep 1
  done
done

{
  echo "# hubbub bench comparison, $DAY"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(free -g | awk '/Mem:/{print $2}') GiB RAM; bench client and server share the box"
  echo "- hubbub: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty tree)'), release build"
  echo "- node $(node --version 2>/dev/null), $( [ -d "$CACHE/node/node_modules/ws" ] && (cd "$CACHE/node" && node -e 'console.log("ws "+require("ws/package.json").version)'))"
  echo "- python $("$CACHE/python/bin/python" --version 2>&1 | cut -d' ' -f2), websockets $("$CACHE/python/bin/python" -c 'import websockets; print(websockets.__version__)' 2>/dev/null)"
  echo "- each cell: median of $REPS windows of ${DURATION} s (after ${WARMUP} s warm-up), spread min..max in the JSON; ratio = server / hubbub"
  echo
  # Every server with results today, not only this invocation's.
  all=(); for s in hubbub raw raw-writev node-ws python-websockets socketio sockudo; do
    ls "$OUTDIR/$s-"*.json >/dev/null 2>&1 && all+=("$s"); done
  python3 - "$OUTDIR" "fanout-1k fanout-10k fanout-1k-max http-publish" "${all[@]}" <<'PY'
import json, os, statistics, sys
outdir, scenarios, servers = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def load(srv, sc):
    p = os.path.join(outdir, f"{srv}-{sc}.json")
    try:
        return json.load(open(p))
    except Exception:
        return None
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def fmt(v, nd=2):
    return "n/a" if v is None else f"{v:,.{nd}f}"
for sc in scenarios:
    print(f"## {sc}\n")
    rows = {}
    for srv in servers:
        r = load(srv, sc)
        if not r:
            continue
        w = r["windows"]
        rows[srv] = dict(
            pubs=med([x["publishes_per_second"] for x in w]),
            deliv=med([x["deliveries_per_second"] for x in w]),
            missing=sum(x["missing"] for x in w),
            p50=med([x["latency"]["p50_ms"] for x in w]),
            p99=med([x["latency"]["p99_ms"] for x in w]),
            p999=med([x["latency"]["p999_ms"] for x in w]),
            mx=max([x["latency"]["max_ms"] for x in w] or [0]),
            cpu=med([x.get("server_cpu_us_per_delivery") for x in w]),
            req=med([x["publish_request"]["p99_ms"] for x in w]),
            subs=f'{r["subscribed"]}/{r["subscribers"]}',
        )
    base = rows.get("hubbub")
    def ratio(srv, k):
        if not base or base[k] in (None, 0) or rows[srv][k] is None:
            return ""
        return f" ({rows[srv][k] / base[k]:.2f}x)"
    if sc == "http-publish":
        print("| server | publishes/s | request p99 ms | server CPU us/publish |")
        print("|---|---|---|---|")
        for srv, v in rows.items():
            print(f"| {srv} | {fmt(v['pubs'],0)}{ratio(srv,'pubs')} | {fmt(v['req'])}{ratio(srv,'req')} | {fmt(v['cpu'])}{ratio(srv,'cpu')} |")
    else:
        print("| server | subscribed | publishes/s | deliveries/s | missing | p50 ms | p99 ms | p99.9 ms | max ms | server CPU us/delivery |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for srv, v in rows.items():
            print(f"| {srv} | {v['subs']} | {fmt(v['pubs'],0)} | {fmt(v['deliv'],0)} | {v['missing']} | {fmt(v['p50'])}{ratio(srv,'p50')} | {fmt(v['p99'])}{ratio(srv,'p99')} | {fmt(v['p999'])}{ratio(srv,'p999')} | {fmt(v['mx'])} | {fmt(v['cpu'])}{ratio(srv,'cpu')} |")
    print()
PY
  echo "## Commands"
  echo
  echo '```'
  for f in "$OUTDIR"/*.cmd; do echo "# $(basename "$f" .cmd)"; cat "$f"; done | sed "s#$ROOT/##g"
  echo '```'
  echo
  echo "Servers were started with \`bench/peers/start.sh NAME PORT\` (raw-writev: \`RAW_ARGS='--writev-batch 16'\`)."
} > "$MD"
echo "wrote $MD" >&2
