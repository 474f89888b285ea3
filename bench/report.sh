#!/usr/bin/env bash
# bench/report.sh OUT — turns OUT/results.tsv into OUT/table.md (the tables,
# each target marked met or missed), OUT/bench.svg (bench/svg.awk) and
# OUT/BENCHMARKS.md (bench/BENCHMARKS.md.in with the tables, the machine
# and the command filled in). Run by bench/run.sh; safe to run again by
# hand on a finished OUT.
set -uo pipefail
OUT=${1:?usage: bench/report.sh OUT}
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
[ -f "$OUT/results.tsv" ] || { echo "report: $OUT/results.tsv missing" >&2; exit 1; }

declare -A MED MIN MAX UNIT NS NOTE
while IFS=$'\t' read -r id med mn mx unit n note; do
	MED[$id]=$med MIN[$id]=$mn MAX[$id]=$mx UNIT[$id]=$unit NS[$id]=$n NOTE[$id]=$note
done <"$OUT/results.tsv"

m() { echo "${MED[$1]:-NA}"; }
# cell ID: "median (min–max)" or "median" when they are equal or n <= 1
cell() {
	local id=$1
	[ -n "${MED[$id]:-}" ] && [ "${MED[$id]}" != NA ] || { echo "n/a"; return; }
	if [ "${NS[$id]}" -le 1 ] || { [ "${MIN[$id]}" = "${MED[$id]}" ] && [ "${MAX[$id]}" = "${MED[$id]}" ]; }; then
		echo "${MED[$id]}"
	else
		echo "${MED[$id]} (${MIN[$id]}–${MAX[$id]})"
	fi
}
# cmp A OP B: numeric comparison, false when either is NA
cmp() { awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
	if (a == "NA" || b == "NA" || a == "" || b == "") exit 2
	if (op == "<=") exit !(a + 0 <= b + 0); if (op == ">=") exit !(a + 0 >= b + 0)
	if (op == "<") exit !(a + 0 < b + 0); if (op == "==") exit !(a + 0 == b + 0); exit 2 }'; }
# verdict A OP B: "met" / "**missed**" / "not measured"
verdict() { cmp "$@"; case $? in 0) echo "met" ;; 1) echo "**missed**" ;; *) echo "not measured" ;; esac; }
mul() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || a == "") print "NA"; else printf "%g\n", a * b }'; }
minof() { printf '%s\n' "$@" | grep -v '^NA$' | sort -g | head -n 1; }
samples() { echo "${NS[$1]:-0}"; }

ingN=$(sed -n 's/.*drains \([0-9]*\) events.*/\1/p' <<<"${NOTE[ingest.provbus]:-}")
flN=$(sed -n 's/.*flush of \([0-9]*\) spooled.*/\1/p' <<<"${NOTE[flush.provbus]:-}")
sizes=$(cut -f1 "$OUT/results.tsv" | sed -n 's/^burst\.\([0-9]*\)\..*/\1/p' | sort -un | tr '\n' ' ')

{
echo "Each figure: the median of its samples, (min–max) when they differ; n is the number of samples."
echo
echo "### 1. Ingest: a pre-filled queue of ${ingN:-?} events, same broker"
echo
echo "| consumer | events/s | n |"
echo "|---|---|---|"
echo "| provbus-consumer (every event judged and audited, committed before its ack) | $(cell ingest.provbus) | $(samples ingest.provbus) |"
echo "| minimal rabbitmq-c consumer (tests/tools/pbtest-ingest.c: basic.ack each) | $(cell ingest.baseline) | $(samples ingest.baseline) |"
echo "| ratio, per round (target >= 0.7: $(verdict "$(m ingest.ratio)" '>=' 0.7)) | $(cell ingest.ratio) | $(samples ingest.ratio) |"
echo
echo "provbus-consumer CPU while draining: $(cell ingest.provbus.cpu) µs per event."
echo
echo "### 2. Publish"
echo
echo "One announcement of a 10-key manifest, wall time of the whole:"
echo
echo "| sender | ms | n |"
echo "|---|---|---|"
echo "| one \`provbus-publish provides\` (publisher confirms, waits for all) | $(cell publish.provides.provbus) | $(samples publish.provides.provbus) |"
echo "| ten \`amqp-publish\` (no confirms) | $(cell publish.provides.amqp-publish) | $(samples publish.provides.amqp-publish) |"
echo "| ten \`etcdctl put\` | $(cell publish.provides.etcdctl) | $(samples publish.provides.etcdctl) |"
echo
fastest_peer=$(minof "$(m publish.provides.amqp-publish)" "$(m publish.provides.etcdctl)")
echo "Target, faster than both: $(verdict "$(m publish.provides.provbus)" '<' "${fastest_peer:-NA}")."
echo
echo "Draining a spool of ${flN:-?} events:"
echo
echo "| sender | events/s | n |"
echo "|---|---|---|"
echo "| \`provbus-publish flush\` (outbox.db, confirms, window 1000) | $(cell flush.provbus) | $(samples flush.provbus) |"
echo "| minimal rabbitmq-c publisher (tests/tools/pbtest-pubflood.c, confirm window 1000) | $(cell flush.baseline) | $(samples flush.baseline) |"
echo "| ratio, per round (target >= 0.8: $(verdict "$(m flush.ratio)" '>=' 0.8)) | $(cell flush.ratio) | $(samples flush.ratio) |"
echo
echo "### 3. Burst collapse: N events for one key in about a second (10,000 in 2 s), provision = sleep 200 ms"
echo
printf '| system |'; for n in $sizes; do printf ' runs, %s events | last run ends after the last event (ms), %s |' "$n" "$n"; done; echo
printf '|---|'; for n in $sizes; do printf -- '---|---|'; done; echo
for s in provbus serf-coalesce serf etcd amqp; do
	case $s in
	provbus) label="provbus (quiet_ms 500)" ;;
	serf-coalesce) label="Serf, coalescing (serf event -coalesce=true)" ;;
	serf) label="Serf, no coalescing" ;;
	etcd) label="etcdctl watch KEY -- CMD" ;;
	amqp) label="amqp-consume CMD" ;;
	esac
	printf '| %s |' "$label"
	for n in $sizes; do
		r=$(cell "burst.$n.$s.runs") e=$(cell "burst.$n.$s.last_end")
		[ "${NS[burst.$n.$s.runs]:-1}" != 0 ] || { r="≈$r*"; e="≈$e*"; }
		printf ' %s | %s |' "$r" "$e"
	done
	echo
done
echo
echo "\\* extrapolated from the measured size (one run per event, one run after another): see the notes in results.tsv."
echo "Reference measured before provbus, for 200 events: amqp-consume 200 runs ending 40 s after the last event,"
echo "etcdctl watch 200 runs (37 s), Serf without coalescing 200 runs (40 s), Serf with coalescing 1 run."
echo
for n in $sizes; do
	r=$(m "burst.$n.provbus.runs") e=$(m "burst.$n.provbus.last_end") emax=${MAX[burst.$n.provbus.last_end]:-NA}
	echo "Target at $n events, provbus exactly 1 run: $(verdict "${MAX[burst.$n.provbus.runs]:-NA}" '==' 1)$( [ "${MIN[burst.$n.provbus.runs]:-NA}" = 1 ] || echo " (min ${MIN[burst.$n.provbus.runs]:-NA})");" \
		"ending within quiet + run = 700 ms of the last event: $(verdict "$emax" '<=' 700) (worst $emax ms)."
done
echo
echo "### 4. Latency: idle system, one event, from the start of the sending command to the provision process running"
echo
echo "| system | p50 ms | p99 ms | samples | reference p50 |"
echo "|---|---|---|---|---|"
row() { echo "| $2 | $(m "latency.$1.p50") | $(m "latency.$1.p99") | $(samples "latency.$1.p50") | $3 |"; }
row provbus-q0 "provbus, quiet_ms 0 (provbus-publish provides, confirmed)" ""
row provbus-q200 "provbus, quiet_ms 200" ""
row amqp "amqp-publish -> amqp-consume" "about 10 ms"
row etcd "etcdctl put -> etcdctl watch" "about 20 ms"
row serf "serf event, no coalescing" "about 10 ms"
row serf-coalesce "serf event, coalescing" "about 1,010 ms"
row provbus-q0-bus "provbus's bus share, quiet_ms 0: end of provbus-publish (all confirmed) -> run" ""
row provbus-q200-bus "provbus's bus share, quiet_ms 200" ""
echo
echo "provbus quiet_ms 0 and amqp-publish -> amqp-consume are sampled in turn (one of each, then again);"
echo "their ratio per pair, provbus / amqp: $(cell latency.q0-amqp.ratio) (n = $(samples latency.q0-amqp.ratio))."
echo
best=$(minof "$(m latency.amqp.p50)" "$(m latency.etcd.p50)" "$(m latency.serf.p50)")
quarter=$(mul "$(m latency.serf-coalesce.p50)" 0.25)
echo "Targets: quiet 0 at or below amqp-publish -> amqp-consume in the same run (pair ratio <= 1): $(verdict "$(m latency.q0-amqp.ratio)" '<=' 1);" \
	"at or below the best peer's p50 (${best:-n/a} ms): $(verdict "$(m latency.provbus-q0.p50)" '<=' "${best:-NA}");" \
	"quiet 200 at most a quarter of Serf with coalescing ($quarter ms): $(verdict "$(m latency.provbus-q200.p50)" '<=' "$quarter")."
echo
echo "### 5. Fan-out: $(sed -n 's/.*all \([0-9]*\) provision.*/\1/p' <<<"${NOTE[fanout.all_started.p50]:-}") daemons require one key, one event"
echo
echo "| figure | value | rounds |"
echo "|---|---|---|"
echo "| until all provision runs started, p50 (ms) | $(m fanout.all_started.p50) | $(samples fanout.all_started.p50) |"
echo "| until all provision runs started, max (ms) | $(m fanout.all_started.max) | $(samples fanout.all_started.max) |"
echo "| broker CPU per round (ms) | $(m fanout.cpu.broker) | $(samples fanout.cpu.broker) |"
echo "| the daemons' CPU per round, together (ms) | $(m fanout.cpu.daemons) | $(samples fanout.cpu.daemons) |"
echo
echo "### 6. Memory (VmRSS, kB)"
echo
echo "| process | idle | after events | |"
echo "|---|---|---|---|"
echo "| provbus-consumer | $(m memory.provbus.idle) | $(m memory.provbus.after) | $(sed 's/; checkpoints.*//' <<<"${NOTE[memory.provbus.after]:-}") |"
echo "| amqp-consume | $(m memory.amqp-consume.idle) | $(m memory.amqp-consume.after) | ${NOTE[memory.amqp-consume.after]:-} |"
echo "| Serf agent | $(m memory.serf.idle) | $(m memory.serf.after) | ${NOTE[memory.serf.after]:-} |"
echo "| etcd + etcdctl watch | $(m memory.etcd.idle) | $(m memory.etcd.after) | ${NOTE[memory.etcd.after]:-} |"
echo
if [ -f "$OUT/memory-checkpoints.tsv" ]; then
	echo "provbus-consumer VmRSS along the way (events: kB): $(awk -F'\t' '{ printf "%s%s: %s", (NR > 1 ? ", " : ""), $1, $2 }' "$OUT/memory-checkpoints.tsv")."
	echo
fi
echo "Idle, in parts (kB): provbus-consumer anonymous $(m memory.provbus.idle.anon), file-backed $(m memory.provbus.idle.file);" \
	"amqp-consume anonymous $(m memory.amqp-consume.idle.anon), file-backed $(m memory.amqp-consume.idle.file)."
echo
amqp_idle=$(m memory.amqp-consume.idle)
echo "Targets: idle anonymous memory at or below amqp-consume's: $(verdict "$(m memory.provbus.idle.anon)" '<=' "$(m memory.amqp-consume.idle.anon)");" \
	"idle VmRSS at or below amqp-consume's: $(verdict "$(m memory.provbus.idle)" '<=' "$amqp_idle");" \
	"after the events at most twice that ($(mul "$amqp_idle" 2) kB): $(verdict "$(m memory.provbus.after)" '<=' "$(mul "$amqp_idle" 2)")."
echo
echo "### 7. Audit log: $(sed -n 's/.* over \([0-9]*\) events.*/\1/p' <<<"${NOTE[replay.replay]:-}") events"
echo
echo "| command | seconds | n |"
echo "|---|---|---|"
echo "| \`provbus-audit replay\` | $(cell replay.replay) | $(samples replay.replay) |"
echo "| \`provbus-audit runs\` | $(cell replay.runs) | $(samples replay.runs) |"
echo
echo "### 8. Start-up: exec to READY=1 (connected, bound, caught up), warm broker"
echo
echo "| case | ms | n |"
echo "|---|---|---|"
echo "| restart, queue in place | $(cell startup.restart) | $(samples startup.restart) |"
echo "| new node: queue declared, history read ($(sed -n 's/.*catch-up of \([0-9]*\) history.*/\1/p' <<<"${NOTE[startup.new]:-}") events) | $(cell startup.new) | $(samples startup.new) |"
echo
echo "### 9. The fleet view: \`provbus-fleet\` over a history of $(sed -n 's/.* history of \([0-9]*\) events.*/\1/p' <<<"${NOTE[fleet.nodes]:-}") events"
echo
echo "| command | ms | n |"
echo "|---|---|---|"
echo "| \`provbus-fleet nodes\`, cold (both streams read from the window start) | $(cell fleet.nodes) | $(samples fleet.nodes) |"
echo "| \`provbus-fleet converged KEY\`, cold | $(cell fleet.converged) | $(samples fleet.converged) |"
echo "| \`provbus-fleet nodes\`, cold, over AMQP 0-9-1 (\`--stream-port 0\`) | $(cell fleet.nodes_amqp) | $(samples fleet.nodes_amqp) |"
echo "| \`provbus-fleet nodes\` from its cache (1,000 new events) | $(cell fleet.nodes_warm) | $(samples fleet.nodes_warm) |"
echo "| \`provbus-fleet converged KEY\` from its cache (1,000 new events) | $(cell fleet.converged_warm) | $(samples fleet.converged_warm) |"
echo "| the minimal reader of the history stream (pbtest-ingest --stream-first) | $(cell fleet.baseline) | $(samples fleet.baseline) |"
echo
echo "### 10. Catch-up of a new node: $(sed -n 's/.*catch-up of \([0-9]*\) history.*/\1/p' <<<"${NOTE[catchup.provbus]:-}") history events, 3 of 60 keys required"
echo
echo "| reader | ms | n |"
echo "|---|---|---|"
echo "| provbus-consumer, exec to catch-up done | $(cell catchup.provbus) | $(samples catchup.provbus) |"
echo "| pbtest-ingest --stream-first (rabbitmq-c, one basic.ack each), same messages | $(cell catchup.baseline) | $(samples catchup.baseline) |"
echo "| ratio, per round (target <= 2: $(verdict "$(m catchup.ratio)" '<=' 2)) | $(cell catchup.ratio) | $(samples catchup.ratio) |"
echo
echo "### 11. Recovery after a broker restart (kill -9, down for a while, started again)"
echo
echo "| figure | ms | n |"
echo "|---|---|---|"
echo "| each daemon: broker accepting connections -> its new connection authenticated (the broker's log) | $(cell recovery.login) | $(samples recovery.login) |"
echo "| the last daemon of a round (target <= 2000: $(verdict "${MAX[recovery.login.max]:-NA}" '<=' 2000)) | $(cell recovery.login.max) | $(samples recovery.login.max) |"
echo "| each daemon: broker accepting connections -> consuming again (queue declared, bound: its log line) | $(cell recovery.reconnect) | $(samples recovery.reconnect) |"
echo "| the last daemon of a round | $(cell recovery.reconnect.max) | $(samples recovery.reconnect.max) |"
echo "| broker accepting connections -> a backlog spooled while it was away judged by every daemon | $(cell recovery.backlog) | $(samples recovery.backlog) |"
if [ -n "${NOTE[recovery.reconnect]:-}" ]; then
	echo
	echo "${NOTE[recovery.reconnect]}; backlog: ${NOTE[recovery.backlog]:-}."
fi
echo
echo "### 12. Ingest from process start: $(sed -n 's/.*to \([0-9]*\) queued events.*/\1/p' <<<"${NOTE[drain.k1.provbus]:-}" | grep . || echo N) queued events of one key, exec of the daemon to all judged"
echo
echo "| providers of the key | provbus-consumer ms | baseline ms (pbtest-ingest, exec to exit) | throughput ratio provbus / baseline | n |"
echo "|---|---|---|---|---|"
echo "| one per event | $(cell drain.k40000.provbus) | $(cell drain.k40000.baseline) | $(cell drain.k40000.ratio) | $(samples drain.k40000.ratio) |"
echo "| one | $(cell drain.k1.provbus) | $(cell drain.k1.baseline) | $(cell drain.k1.ratio) | $(samples drain.k1.ratio) |"
echo
echo "provbus's time with one provider per event / with one provider: $(cell drain.k.ratio) (about 1: the cost per event does not grow with the providers)."
echo "Target, ratio >= 0.8 with one provider per event: $(verdict "$(m drain.k40000.ratio)" '>=' 0.8)."
} >"$OUT/table.md"

# ---- the chart
awk -F'\t' -v sizes="$sizes" -f bench/svg.awk "$OUT/results.tsv" >"$OUT/bench.svg" || { echo "report: svg failed" >&2; exit 1; }

# ---- BENCHMARKS.md
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
{
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); provbus $(cat VERSION 2>/dev/null), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
	echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, kernel $(uname -r)"
	echo "- load average at the start and the end of the run: ${BENCH_LOAD_START:-?} / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shares its CPUs)"
	echo "- RabbitMQ $(ver rabbitmq-server) (Erlang $(ver erlang-base)), one private node on loopback (tests/broker/pb-broker), data on $(df -P "${PB_BROKER_DIR:-/tmp}" 2>/dev/null | awk 'NR == 2 { print $1 }')"
	echo "- rabbitmq-c $(ver librabbitmq4), sqlite $(ver libsqlite3-0), amqp-tools $(ver amqp-tools), Serf $(serf version 2>/dev/null | head -n 1 | awk '{ print $NF }'), etcd $(etcd --version 2>/dev/null | head -n 1 | awk '{ print $3 }')"
	echo "- command: \`${BENCH_COMMAND:-bench/run.sh}\`; the run took ${BENCH_TOTAL_S:-?} s, broker start included${BENCH_FAILED:+; sections that failed: $BENCH_FAILED}"
} >"$OUT/machine.md"
awk -v table="$OUT/table.md" -v machine="$OUT/machine.md" '
	/^@TABLE@$/ { while ((getline l < table) > 0) print l; next }
	/^@MACHINE@$/ { while ((getline l < machine) > 0) print l; next }
	{ print }' bench/BENCHMARKS.md.in >"$OUT/BENCHMARKS.md"
