#!/bin/sh
# The gateway's figures of docs/benchmarks.md (issues 10 and 15), each server on a fresh data
# directory: the SM3 ceiling, then ROUNDS alternating pairs of system/info with and without
# the API-call audit entries (same binary, closed loop at 32 and 64 connections), system/info
# at fixed rates of 30–60 % of the SM2 budget on 64 connections (open loop), and seal/query
# with answers of ten seals at 32 connections, closed and open loop. Needs the measurement build:
#   cargo build --release --locked --features bench-unaudited --example loadgen --bin hutong
#   sh benches/api.sh
set -eu
B=${B:-target/release}
PORT=${PORT:-18743}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-30000}
W=$(mktemp -d /tmp/hutong-api-bench.XXXXXX)
export HUTONG_API__RATE_LIMIT_PER_SEC=1000000 HUTONG_API__RATE_LIMIT_BURST=1000000
# 64 connections from one address is the default per-address limit; the client may briefly
# hold one more while a connection is replaced.
export HUTONG_SERVER__MAX_CONNECTIONS_PER_IP=1024
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$W"' EXIT
start_server() { # $1: audited | unaudited
    rm -rf "$W/data"
    if [ "$1" = unaudited ]; then
        UNAUDITED_BENCH=1 "$B/hutong" --data-dir "$W/data" serve --listen 127.0.0.1:"$PORT" > "$W/serve.log" 2>&1 &
    else
        "$B/hutong" --data-dir "$W/data" serve --listen 127.0.0.1:"$PORT" > "$W/serve.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 100); do
        if grep -q "listening" "$W/serve.log"; then
            # Without the measurement feature UNAUDITED_BENCH is ignored: the pair would lie.
            if [ "$1" = unaudited ] && ! grep -q "MEASUREMENT BUILD" "$W/serve.log"; then
                echo "not a bench-unaudited build (see the command above)" >&2; exit 1
            fi
            return
        fi
        sleep 0.1
    done
    echo "server did not start" >&2; cat "$W/serve.log" >&2; exit 1
}
stop_server() { kill -TERM $PID; wait $PID || true; PID=; }
# The load generator exits non-zero on any answer but code 0; the filter must not hide that.
load() {
    "$B/examples/loadgen" --data-dir "$W/data" --url https://localhost:"$PORT" "$@" > "$W/load.log" 2>&1 ||
        { cat "$W/load.log" >&2; exit 1; }
    grep -E "req/s|budget" "$W/load.log"
}
"$B/examples/loadgen" --scenario sm3
for conc in 32 64; do
    for r in $(seq "$ROUNDS"); do
        for mode in audited unaudited; do
            echo "--- system/info $mode, $conc connections, round $r"
            start_server $mode
            load --scenario system-info --requests "$REQUESTS" --concurrency $conc
            stop_server
        done
    done
done
for f in 0.3 0.4 0.5 0.6; do
    echo "--- system/info audited, 64 connections, open loop at $f of the SM2 budget"
    start_server audited
    # The load generator's own CPU (user, system seconds) beside the wall time.
    /usr/bin/time -o "$W/time.log" -f "loadgen CPU: %U s user, %S s system, %e s wall" \
        "$B/examples/loadgen" --data-dir "$W/data" --url https://localhost:"$PORT" \
        --scenario system-info --requests "$REQUESTS" --concurrency 64 --rate-of-budget $f \
        > "$W/load.log" 2>&1 || { cat "$W/load.log" >&2; exit 1; }
    grep -E "req/s|budget" "$W/load.log"; cat "$W/time.log"
    stop_server
done
echo "--- seal/query, ten seals per answer, 32 connections, closed loop then 60 % of its budget"
start_server audited
load --scenario seal-query --seals 1000 --requests 10000 --concurrency 32
load --scenario seal-query --seals 0 --requests 10000 --concurrency 32 --rate-of-budget 0.6
stop_server
