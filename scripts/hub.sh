# Sourced by the scripts that test a running hub (test-all, conformance.sh,
# schemathesis.sh): where cargo put the debug binary, and how to start a
# hub on a free port and learn its address.

# The debug `hubbub` binary, wherever cargo puts it (CARGO_TARGET_DIR too).
hub_bin() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$dir/debug/hubbub"
}

# start_hub NAME BIN LOG ARGS...: runs `BIN serve --listen 127.0.0.1:0 ARGS`
# in the background with its output in LOG, stops it when the script exits,
# and sets `hub_addr` (host:port) once it listens; exits 1 if it never does.
start_hub() {
  local name=$1 bin=$2 log=$3
  shift 3
  "$bin" serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  hub_pid=$!
  trap 'kill $hub_pid 2>/dev/null || true; wait $hub_pid 2>/dev/null || true' EXIT
  hub_addr=""
  for _ in $(seq 1 100); do
    hub_addr=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$log" | head -n1 | awk '{print $3}' || true)
    [ -n "$hub_addr" ] && return 0
    sleep 0.1
  done
  echo "$name: hub did not start"
  cat "$log"
  exit 1
}
