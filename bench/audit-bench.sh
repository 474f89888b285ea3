#!/usr/bin/env bash
# bench/audit-bench.sh [EVENTS] — provbus-audit over a large audit log.
#
# Makes a synthetic log of EVENTS events (default 1,000,000) over 8 hours
# with build/tools/pbtest-auditgen (20 keys, 60 nodes, deploy bursts,
# duplicates, stale, foreign and invalid messages, a failing run every
# 11, a lock wait every 13, five manual runs; the runs decided by
# lib/debounce.c as the daemon drives it), then times each command (output
# to a file) and prints the median of 3 runs, min and max, in seconds.
# No broker needed. The log is written to $AUDIT_BENCH_DIR (default a temp
# dir, removed at the end; set AUDIT_BENCH_KEEP=1 to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-1000000}
REPS=3
A=$ROOT/bin/provbus-audit
G=$ROOT/${BUILD:-build}/tools/pbtest-auditgen
export LC_ALL=C
[ -x "$A" ] && [ -x "$G" ] || { echo "audit-bench: build first: make bin/provbus-audit tests-build" >&2; exit 69; }

D=${AUDIT_BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pb-audit-bench.XXXXXX")}
mkdir -p "$D"
DB=$D/audit.db
[ -n "${AUDIT_BENCH_KEEP:-}" ] || trap 'rm -rf "$D"' EXIT

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

t=$(now_ns)
"$G" -o "$DB" -n "$N" --hours 8 --keys 20 --nodes 60 --fail-every 11 --defer-every 13 --manual 5 \
	--seed 42 >"$D/gen.log"
gen_s=$(secs $(( $(now_ns) - t )))
runs=$(sqlite3 "$DB" "select count(*) from runs")
big=$(sqlite3 "$DB" "select run_id from run_events group by run_id order by count(*) desc limit 1")
big_n=$(sqlite3 "$DB" "select count(*) from run_events where run_id = $big")
mid=$(sqlite3 "$DB" "select strftime('%Y-%m-%dT%H:%M:%SZ', (min(received_at) + max(received_at)) / 2000, 'unixepoch') from events")
echo "log: $(cat "$D/gen.log") in ${gen_s} s, $(du -m "$DB" | cut -f1) MB; $runs runs; run $big covers $big_n events"
echo "machine: $(nproc) cpu, $(awk '/MemTotal/ { printf "%d MB", $2 / 1024 }' /proc/meminfo), $(uname -r)"
echo

bench() { # NAME ARGS...
	local name=$1 i t out=() med
	shift
	for i in $(seq $REPS); do
		t=$(now_ns)
		"$A" -d "$DB" "$@" >"$D/out" 2>&1 || { echo "audit-bench: $name failed: $(tail -n 3 "$D/out")" >&2; exit 1; }
		out+=("$(( $(now_ns) - t ))")
	done
	med=$(printf '%s\n' "${out[@]}" | sort -n | sed -n "$(( (REPS + 1) / 2 ))p")
	printf '%-44s %8s %8s %8s  %s\n' "$name" "$(secs "$med")" \
		"$(secs "$(printf '%s\n' "${out[@]}" | sort -n | head -n1)")" \
		"$(secs "$(printf '%s\n' "${out[@]}" | sort -n | tail -n1)")" \
		"$(grep -m1 -E 'matches|differs|instead' "$D/out" || { [ -s "$D/out" ] && echo "$(wc -l <"$D/out") lines"; } || echo -)"
}

printf '%-44s %8s %8s %8s  %s\n' "command ($N events)" median min max "output"
bench "runs" runs
bench "runs --json" runs --json
bench "explain $big ($big_n events)" explain "$big"
bench "explain $big --json" explain "$big" --json
bench "replay" replay
bench "replay --quiet-ms 10000 (what-if)" replay --quiet-ms 10000
bench "events --since MID --until MID+5m" events --since "$mid" --until "$(date -u -d "$mid + 5 min" +%Y-%m-%dT%H:%M:%SZ)"
bench "events --key KEY_03 --verdict stale" events --key KEY_03 --verdict stale
bench "timeline --html" timeline --html "$D/timeline.html"
echo
echo "timeline page: $(stat -c %s "$D/timeline.html") bytes"
