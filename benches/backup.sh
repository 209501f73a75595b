#!/bin/sh
# Backup and restore of a store with SEALS seals (default 100,000, 8 KiB picture each):
# wall time and peak memory of each side, then system/info latency at 32 connections without
# and with backups running (issue 11). Needs a release build:
#   cargo build --release --locked --example loadgen --bin hutong
#   sh benches/backup.sh
set -eu
SEALS=${SEALS:-100000}
B=${B:-target/release}
PORT=${PORT:-18643}
W=$(mktemp -d /tmp/hutong-backup-bench.XXXXXX)
D=$W/data
export HUTONG_API__RATE_LIMIT_PER_SEC=1000000 HUTONG_API__RATE_LIMIT_BURST=1000000 HUTONG_BACKUP__SCHEDULE=
"$B/hutong" --data-dir "$D" init > "$W/init.log" 2>&1
start_server() {
    "$B/hutong" --data-dir "$D" serve --listen 127.0.0.1:$PORT > "$W/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do grep -q "listening" "$W/serve.log" && return; sleep 0.1; done
    echo "server did not start" >&2; cat "$W/serve.log" >&2; exit 1
}
start_server
LOAD="$B/examples/loadgen --data-dir $D --url https://localhost:$PORT"
$LOAD --scenario sm4-gcm
$LOAD --scenario seal-query --seals "$SEALS" --requests 64 --concurrency 8 2>&1 | grep -E "filed $SEALS|seal-query:"
echo "store on disk: $(du -sh "$D/db" | cut -f1)"
# Restart, so the server's peak memory below is the backup's, not the filing's.
kill -TERM $PID; wait $PID || true
start_server
rss() { awk '/VmHWM/ {print $2 " kB"}' /proc/$PID/status; }
echo "server peak RSS before backup: $(rss)"
/usr/bin/time -f "backup: %e s wall, CLI peak RSS %M kB" "$B/hutong" --data-dir "$D" backup --out "$W/b.hbk" 2>&1 | tail -2
echo "server peak RSS after backup: $(rss); file $(du -h "$W/b.hbk" | cut -f1)"
/usr/bin/time -f "verify: %e s wall, peak RSS %M kB" "$B/hutong" --data-dir "$D" backup --verify "$W/b.hbk" 2>&1 | grep -E "verify:|内容已解密"
# The key store as the runbook copies it: the KEK and the tenants' keys.
mkdir -p "$W/r" && tar -C "$D" -cf - keys/kek.key $(cd "$D" && ls -d keys/tenants 2>/dev/null) | tar -C "$W/r" -xpf -
/usr/bin/time -f "restore: %e s wall, peak RSS %M kB" "$B/hutong" --data-dir "$W/r" restore "$W/b.hbk" 2>&1 | tail -2
echo "--- system/info, 32 connections, no backup running"
$LOAD --scenario system-info --requests 20000 --concurrency 32 2>&1 | grep -E "p99|req/s|SM2 budget"
echo "--- system/info, 32 connections, backups running back to back"
( while [ ! -f "$W/stop" ]; do rm -f "$W/loop.hbk"; "$B/hutong" --data-dir "$D" backup --out "$W/loop.hbk" > /dev/null 2>&1 || true; echo x >> "$W/backups"; done ) &
LOOP=$!
$LOAD --scenario system-info --requests 20000 --concurrency 32 2>&1 | grep -E "p99|req/s|SM2 budget"
touch "$W/stop"; wait $LOOP || true
echo "backups completed during that run: $(wc -l < "$W/backups")"
kill -TERM $PID; wait $PID || true
rm -rf "$W"
