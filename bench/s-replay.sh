#!/usr/bin/env bash
# Figure 7 — `provbus-audit replay` and `provbus-audit runs` over an audit
# log of N events (1,000,000), made by build/tools/pbtest-auditgen with the
# parameters of bench/audit-bench.sh (8 hours of a consumer's log: 20 keys,
# 60 nodes, deploy bursts, duplicates, stale, foreign and invalid events,
# failing and deferred runs, the runs decided by lib/debounce.c). Wall
# time of each command, its output to a file. (bench/audit-bench.sh times
# every provbus-audit command; this is the two of the issue, in the table.)
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=$(sz 10000 1000000)
REPS=$(sz 1 3)
db=$W/audit.db

GEN_ARGS="-n $N --hours 8 --keys 20 --nodes 60 --fail-every 11 --defer-every 13 --manual 5 --seed 42"
# the log is made once per generator build and kept in bench/out/cache (a
# 1,000,000-event log takes ~20 s to write); a copy is what gets timed
# (the quick run's small log is made each time, in its own folder)
cache=$BENCH_ROOT/bench/out/cache
[ -z "$BENCH_QUICK" ] || cache=$W/cache
key=$( { cat "$TOOLS/pbtest-auditgen"; echo "$GEN_ARGS"; } | cksum | cut -d' ' -f1)
cached=$cache/audit-$N-$key.db
t=$(now_us)
if [ ! -f "$cached" ]; then
	mkdir -p "$cache"
	rm -f "$cache/audit-$N-"*.db	# older generators' logs
	# shellcheck disable=SC2086
	"$TOOLS/pbtest-auditgen" -o "$cached.tmp" $GEN_ARGS >"$W/gen.log" 2>&1 &&
		sqlite3 "$cached.tmp" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null 2>&1 && mv "$cached.tmp" "$cached" ||
		{ bench_log "pbtest-auditgen failed: $(tail -n 3 "$W/gen.log")"; rm -f "$cached.tmp"*; exit 1; }
	rm -f "$cached.tmp-wal" "$cached.tmp-shm"
	bench_log "$(cat "$W/gen.log") in $(since_ms "$t") ms ($(du -m "$cached" | cut -f1) MB), kept in $cache"
fi
cp "$cached" "$db" && chmod 600 "$db"

rp=() rn=() rc=0
"$BIN/provbus-audit" -d "$db" runs >/dev/null 2>&1	# the page cache warm, as after the log was written
for i in $(seq "$REPS"); do
	t=$(now_us)
	"$BIN/provbus-audit" -d "$db" replay >"$W/replay.out" 2>&1 || { bench_log "replay failed: $(tail -n 3 "$W/replay.out")"; rc=1; }
	rp+=("$(awk -v u=$(( $(now_us) - t )) 'BEGIN { printf "%.2f", u / 1e6 }')")
	t=$(now_us)
	"$BIN/provbus-audit" -d "$db" runs >"$W/runs.out" 2>&1 || { bench_log "runs failed: $(tail -n 3 "$W/runs.out")"; rc=1; }
	rn+=("$(awk -v u=$(( $(now_us) - t )) 'BEGIN { printf "%.2f", u / 1e6 }')")
done
bench_log "replay says: $(grep -m1 -i 'match\|instead' "$W/replay.out")"
put_stats replay.replay s "provbus-audit replay over $N events" "${rp[@]}"
put_stats replay.runs s "provbus-audit runs over $N events ($(($(wc -l <"$W/runs.out") - 1)) runs)" "${rn[@]}"
rm -f "$db" "$db-wal" "$db-shm"
[ -z "$BENCH_QUICK" ] || rm -rf "$cache"
exit $rc
