#!/usr/bin/env bash
# Where the two cores go during a load run: perf samples of the whole
# machine over one window, split into the server, the bench (parent and
# worker processes) and everything else.
#   scripts/cpu-split.sh SERVER_PID BENCH_PID [SECONDS]
# Start it while `hubbub bench fanout` is in a measured window. The ratio
# bench/server times the server's CPU per delivery (printed by the bench)
# is what receiving costs the same two cores per delivery.
# Why perf and not /proc/PID/stat: on this VM the kernel charges CPU time
# by tick sampling, and a client that runs in short bursts between ticks
# shows as ~0 there; perf samples do not have that blind spot (idle CPUs
# are under-sampled, so only the ratios between busy processes count).
set -euo pipefail
SRV="${1:?usage: cpu-split.sh SERVER_PID BENCH_PID [SECONDS]}"
BENCH="${2:?usage: cpu-split.sh SERVER_PID BENCH_PID [SECONDS]}"
WIN="${3:-5}"
DATA=$(mktemp /tmp/cpu-split.XXXXXX)
trap 'rm -f "$DATA"' EXIT
BENCH_PIDS="$BENCH $(pgrep -P "$BENCH" | tr '\n' ' ')"
perf record -a -q -o "$DATA" -- sleep "$WIN" >/dev/null 2>&1
perf script -i "$DATA" -F pid 2>/dev/null | python3 -c '
import sys, collections
srv, bench = int(sys.argv[1]), {int(p) for p in sys.argv[2].split()}
n = collections.Counter(int(l) for l in sys.stdin if l.strip())
s, b = n[srv], sum(n[p] for p in bench)
other = sum(v for k, v in n.items() if k not in bench and k not in (srv, 0))
print(f"samples: server {s}, bench {b}, other {other}; bench/server {b / s if s else 0:.2f}")
' "$SRV" "$BENCH_PIDS"
