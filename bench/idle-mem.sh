#!/usr/bin/env bash
# bench/idle-mem.sh [ROUNDS] [PROGRAM-FOLDER...]
#
# Figure 6's idle half, alone: the idle provbus-consumer of each PROGRAM-
# FOLDER (default bin) in turn, ROUNDS times (default 3), then amqp-consume
# on the same broker each round. Each daemon is a fresh node (its own
# federation in the run's vhost, one seed event in its history), measured
# 2 s after its startup run ended, like bench/s-ingest.sh; amqp-consume
# idle after one probe message, like bench/s-latency.sh. Prints, for each
# program, the median (min-max) of RssAnon, VmRSS and RssFile (kB, from
# /proc/PID/status), and the load. Uses the broker of $PB_BROKER_DIR, else
# starts (and stops) a private one. Loopback only.
#
# IDLE_MEM_VALUE=1 first publishes a value of the key the node requires:
# its startup run then has it (and its run report a SHA-256 of it).
# IDLE_MEM_KEEP=1 keeps the last round's daemons running (their pids on
# stdout) for valgrind or /proc/PID/smaps; they are stopped otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 69
ROOT=$PWD
ROUNDS=${1:-3}
shift || :
command -v amqp-consume >/dev/null || { echo "amqp-consume not found (apt-get install amqp-tools)" >&2; exit 69; }
NAME=idle-mem ALONE_TOOL=pbtest-notifywait
# shellcheck source=bench/alone.sh
. "$ROOT/bench/alone.sh" "$@"
if [ -n "${IDLE_MEM_KEEP:-}" ]; then trap - EXIT; else trap cleanup_all EXIT; fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)

parts() { awk '/^RssAnon:/ { a = $2 } /^VmRSS:/ { v = $2 } /^RssFile:/ { f = $2 } END { print a, v, f }' "/proc/$1/status"; }
declare -A A V F
for r in $(seq "$ROUNDS"); do
	for i in "${!PROGS[@]}"; do
		BIN=$(alone_bin "${PROGS[$i]}")
		FED=idle-r$r-p$i
		W=$OUT/work/$FED; mkdir -p "$W"
		bench_topology || { echo "schema apply failed: $(cat "$W/schema.log")" >&2; exit 1; }
		[ -z "${IDLE_MEM_VALUE:-}" ] ||
			"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count 1 --keys IDLE_KEY >>"$W/schema.log" 2>&1
		node_config "$W/n.json" "n$r-$i" IDLE_KEY '"provision": ["'"$TOOLS"'/pbtest-stamp", "'"$W"'/stamps"]'
		start_daemon n "$W/n.json" || exit 1
		wait_runs_idle "$W/n.json" 30 || echo "round $r, ${PROGS[$i]}: the startup run did not end" >&2
		nap 2
		read -r a v f < <(parts "$DAEMON_PID")
		A[$i]+=" $a" V[$i]+=" $v" F[$i]+=" $f"
		echo "round $r ${PROGS[$i]} pid $DAEMON_PID: RssAnon $a VmRSS $v RssFile $f" >&2
		if [ -n "${IDLE_MEM_KEEP:-}" ] && [ "$r" = "$ROUNDS" ]; then echo "keep ${PROGS[$i]} $DAEMON_PID $W/n.json"; else stop_pid "$DAEMON_PID"; fi
	done
	FED=idle-r$r-amqp
	W=$OUT/work/$FED; mkdir -p "$W"
	bench_topology || exit 1
	start_amqp_consume amqpc r1.provides.AMQ_KEY "$TOOLS/pbtest-stamp" "$W/stamps" --stdin
	for _ in $(seq 50); do
		amqp-publish --url "$URL" --exchange "provbus.$FED" --routing-key r1.provides.AMQ_KEY \
			--body '{"key":"AMQ_KEY","value":"v0"}' 2>/dev/null
		wait_lines "$W/stamps" 1 0.2 && break
	done
	wait_lines "$W/stamps" 1 5 " end "; nap 2
	read -r a v f < <(parts "$AMQC_PID")
	A[x]+=" $a" V[x]+=" $v" F[x]+=" $f"
	echo "round $r amqp-consume pid $AMQC_PID: RssAnon $a VmRSS $v RssFile $f" >&2
	if [ -n "${IDLE_MEM_KEEP:-}" ] && [ "$r" = "$ROUNDS" ]; then echo "keep amqp-consume $AMQC_PID"; else stop_pid "$AMQC_PID"; fi
done
fmt() { read -r m lo hi < <(stats "$@"); printf '%s (%s–%s)' "$m" "$lo" "$hi"; }
echo "load at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds"
echo "| program | RssAnon kB | VmRSS kB | RssFile kB |"
echo "|---|---|---|---|"
for i in "${!PROGS[@]}"; do
	# shellcheck disable=SC2086
	echo "| provbus-consumer (${PROGS[$i]}) | $(fmt ${A[$i]}) | $(fmt ${V[$i]}) | $(fmt ${F[$i]}) |"
done
# shellcheck disable=SC2086
echo "| amqp-consume | $(fmt ${A[x]}) | $(fmt ${V[x]}) | $(fmt ${F[x]}) |"
