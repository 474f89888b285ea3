#!/usr/bin/env bash
# bench/lost-queue.sh [N] [PROGRAM-FOLDER...]
#
# A node loses its queue (an operator deleted it, or the broker lost it)
# and catches up from the history stream. The stream holds N events of one
# provider that the node had judged live before the loss: each is a copy
# of a row of its audit log, and must be judged a copy without being
# applied again. For each PROGRAM-FOLDER (default bin) in turn:
#   1. a fresh node requires the key; N events of one provider are
#      published and judged live; the daemon stops;
#   2. its queue is deleted and the offset it last reached in the stream
#      forgotten (so the catch-up reads those N again);
#   3. the daemon is started again: the figure is the time from its exec
#      to its "catch-up done" line (or "not done" at CAP_S, default 120),
#      with the daemon's CPU time;
#   4. as a yardstick, a second fresh node requiring the same key catches
#      up from the same stream: the N events are new to it.
# The copies' catch-up / the new node's catch-up is about 1 when a copy
# costs what a new event costs. The copy lookup walked every row of the
# provider's (node, service) until 04e82cb: N copies cost N walks of N
# rows. Uses the broker of $PB_BROKER_DIR, else starts (and stops) a
# private one. Loopback only.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 69
ROOT=$PWD
N=${1:-20000}
shift || :
CAP_S=${CAP_S:-120}
NAME=lost-queue ALONE_TOOL=pbtest-pubflood
# shellcheck source=bench/alone.sh
. "$ROOT/bench/alone.sh" "$@"
trap 'cleanup_all; rm -rf "$OUT"' EXIT
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# catchup NAME CFG: starts the daemon, waits for "catch-up done" (CAP_S at
# most); CU_MS (exec to the line, or NA), CU_CPU_MS, CU_LINE; stops it
catchup() {
	local name=$1 cfg=$2 t0 pid
	t0=$(now_us)
	"$BIN/provbus-consumer" -c "$cfg" run >>"$W/$name.log" 2>&1 &
	pid=$!
	_bench_pids+=("$pid")
	CU_MS=NA
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q 'catch-up done' "$W/$name.log" 2>/dev/null; then CU_MS=$(since_ms "$t0"); break; fi
		[ "$(since_ms "$t0")" -lt $((CAP_S * 1000)) ] || break
		nap 0.05
	done
	CU_CPU_MS=$(ticks_ms "$(cpu_ticks "$pid")")
	CU_LINE=$(grep -o 'catch-up done.*' "$W/$name.log" 2>/dev/null | tail -n 1)
	stop_pid "$pid"
}

rows() { sqlite3 -cmd '.timeout 5000' "$1/state/audit.db" "$2"; }

declare -a RES
for i in "${!PROGS[@]}"; do
	BIN=$(alone_bin "${PROGS[$i]}")
	FED=lq-p$i
	W=$OUT/work/$FED; mkdir -p "$W"
	bench_topology || { echo "schema apply failed: $(cat "$W/schema.log")" >&2; exit 1; }
	node_config "$W/a.json" a LQ_KEY '"provision": ["/bin/true"]'
	start_daemon a "$W/a.json" || exit 1
	wait_runs_idle "$W/a.json" 30 || echo "${PROGS[$i]}: the startup run did not end" >&2
	"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$N" --keys LQ_KEY \
		--nodes 1 --node-prefix lq >>"$W/fill.log" 2>&1 || { echo "filling failed: $(tail -n 2 "$W/fill.log")" >&2; exit 1; }
	t=0
	until [ "$(rows "$W/a" "SELECT count(*) FROM events WHERE node = 'lq0'")" -ge "$N" ]; do
		t=$((t + 1)); [ $t -lt 1200 ] || { echo "${PROGS[$i]}: the $N events were not judged in 120 s" >&2; exit 1; }
		nap 0.1
	done
	stop_pid "$DAEMON_PID"
	$CTL delete_queue -p "$VHOST" "provbus.$FED.node.a" >/dev/null || { echo "cannot delete the queue" >&2; exit 1; }
	rows "$W/a" "DELETE FROM offsets" >/dev/null
	catchup a2 "$W/a.json"
	copy_ms=$CU_MS copy_cpu=$CU_CPU_MS copy_line=$CU_LINE
	dup=$(rows "$W/a" "SELECT count(*) FROM events WHERE node = 'lq0' AND source = 'history'")
	node_config "$W/b.json" b LQ_KEY '"provision": ["/bin/true"]'
	catchup b "$W/b.json"
	echo "${PROGS[$i]}: copies: ${copy_ms} ms (CPU ${copy_cpu} ms; ${copy_line:-not done in $CAP_S s}; history rows applied again: $dup); new node: ${CU_MS} ms (CPU ${CU_CPU_MS} ms; ${CU_LINE:-not done})" >&2
	RES+=("| ${PROGS[$i]} | ${copy_ms} | ${copy_cpu} | ${CU_MS} | ${CU_CPU_MS} | $(ratio "$copy_ms" "$CU_MS") |")
done
echo "load at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg); N = $N events of one provider"
echo "| program | catch-up of N copies, ms | its CPU ms | a new node's catch-up of the same N, ms | its CPU ms | copies / new |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${RES[@]}"
