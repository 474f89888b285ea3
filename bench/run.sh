#!/usr/bin/env bash
# bench/run.sh — make bench: provbus against the tools people would
# otherwise use (RabbitMQ's amqp-tools, Serf, etcd), on this machine.
#
#   bench/run.sh                 the full run (about 20 minutes on 2 cores);
#                                rewrites docs/BENCHMARKS.md and docs/bench.svg
#   BENCH_QUICK=1 bench/run.sh   the same code with small sizes (make
#                                bench-quick, and make check through
#                                tests/integration/t-bench-quick.sh); writes
#                                only its output folder
#
# Knobs (environment): BENCH_OUT (output folder; default bench/out/full or
# bench/out/quick), BENCH_ONLY ("latency burst": run only these sections),
# PB_BROKER_DIR (use this running pb-broker instead of starting one),
# BENCH_VHOST (use this existing vhost of it, where guest may do anything),
# BENCH_PROGRAMS (the folder of the provbus-* programs to measure; default
# PB_BIN when set, as under tests/run.sh, else bin; make passes PROGDIR),
# BENCH_BUDGET_S (the sections' time budget; 1200 s full, 110 quick),
# BENCH_DOCS (0: do not touch docs/ even after a full run).
#
# Output: BENCH_OUT/results.tsv (one figure per line: id, median, min,
# max, unit, samples, note), BENCH_OUT/table.md, BENCH_OUT/bench.svg,
# BENCH_OUT/bench.log, BENCH_OUT/work/SECTION/ (logs, stamps, configs).
# Exit 0 when every section ran; 1 when one failed (its figures are NA);
# 69 when a program or the broker is missing.
set -uo pipefail
# how this run was asked for (the knobs given), for BENCHMARKS.md
BENCH_COMMAND="$(env | grep -E '^(BENCH_(QUICK|ONLY|BUDGET_S|OUT|VHOST|PROGRAMS)|PB_BROKER_DIR|BUILD)=' | sort | tr '\n' ' ')bench/run.sh${MAKELEVEL:+ (from make)}"
export BENCH_COMMAND
cd "$(dirname "$0")/.." || exit 69
BENCH_ROOT=$PWD
BUILD=${BUILD:-build}
export BENCH_ROOT BUILD LC_ALL=C.UTF-8
export BENCH_QUICK=${BENCH_QUICK:-}
[ "$BENCH_QUICK" = 0 ] && BENCH_QUICK=
mode=$([ -n "$BENCH_QUICK" ] && echo quick || echo full)
export BENCH_OUT=${BENCH_OUT:-$BENCH_ROOT/bench/out/$mode}
budget=${BENCH_BUDGET_S:-$([ -n "$BENCH_QUICK" ] && echo 110 || echo 1200)}
started=$(date +%s)
export BENCH_STARTED=$started BENCH_DEADLINE=$((started + budget))
BENCH_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
export BENCH_LOAD_START

# the order matters: ingest (figure 1, the costliest) goes first and runs
# its rounds whatever the load, keeping REST_S for the others; its memory
# part stops at its share (figure 6 allows the largest count that fits)
# (catchup gives figure 9 too, the fleet view over its stream: the fleet
# section measures the same alone, BENCH_ONLY=fleet, filling its own)
ALL_SECTIONS="ingest drain startup publish replay latency burst fanout recovery catchup"
# a quick run (make check) leaves out recovery, which starts and restarts
# a broker of its own (a minute and more on a busy machine); BENCH_ONLY
# can still name it
QUICK_SKIP="recovery"
if [ -z "${BENCH_ONLY:-}" ] && [ -n "$BENCH_QUICK" ]; then
	for x in $QUICK_SKIP; do ALL_SECTIONS=${ALL_SECTIONS/ $x / }; done
fi
sections=${BENCH_ONLY:-$ALL_SECTIONS}
# each section's share of the time left when it starts (weights): a
# section's sample loops stop at its deadline, so a slow or busy machine
# gets fewer samples (each figure says how many) rather than a run over
# budget; time a section leaves over goes to the ones after it
declare -A WEIGHT=([ingest]=45 [drain]=8 [startup]=2 [publish]=2 [replay]=3 [latency]=28 [burst]=22 [fanout]=10 [recovery]=8 [fleet]=12 [catchup]=27)
export BENCH_REST_S=$([ -n "$BENCH_QUICK" ] && echo 40 || echo 600)

die() { echo "bench: $1" >&2; exit "${2:-1}"; }

PROGS=${BENCH_PROGRAMS:-${PB_BIN:-bin}}
for p in provbus-consumer provbus-publish provbus-audit provbus-schema provbus-fleet; do
	[ -x "$PROGS/$p" ] || die "$PROGS/$p missing: run make first (make bench builds it)" 69
done
# the programs of a sanitizer build (make SANITIZE=... links them into
# build-san/bin): a full run of them would measure ASan
if ldd "$PROGS/provbus-consumer" 2>/dev/null | grep -q 'libasan\|libubsan\|libtsan'; then
	[ -n "$BENCH_QUICK" ] || die "$PROGS/ holds sanitizer builds (make SANITIZE=...): run make bench without SANITIZE, or point BENCH_PROGRAMS at plain ones" 69
	echo "bench: note: $PROGS/ holds sanitizer builds (fine for the quick run, which asserts no speed)" >&2
fi
TOOLS_USED="pbtest-amqp pbtest-ingest pbtest-pubflood pbtest-peersend pbtest-notifywait pbtest-stamp pbtest-auditgen"
for t in $TOOLS_USED; do
	[ -x "$BUILD/tools/$t" ] || die "$BUILD/tools/$t missing: run make tests-build first" 69
done

# the output folder is replaced: only when it is one of ours (or empty)
if [ -d "$BENCH_OUT" ] && [ -n "$(ls -A "$BENCH_OUT")" ] && [ ! -f "$BENCH_OUT/results.tsv" ]; then
	die "$BENCH_OUT is not empty and holds no results.tsv: not a bench output folder, not replacing it" 64
fi
rm -rf "$BENCH_OUT"
mkdir -p "$BENCH_OUT/work"
: >"$BENCH_OUT/results.tsv"
log() { printf '%s [run] %s\n' "$(date +%T)" "$*" | tee -a "$BENCH_OUT/bench.log" >&2; }

# the programs measured are a copy taken now: a rebuild in the tree during
# the run (the link step leaves a file half written) must not break it
snapshot() { # snapshot SRC DST: copies, and checks the copy runs (its usage)
	local i rc
	for i in $(seq 30); do
		if cp -p "$1" "$2" 2>/dev/null; then
			timeout 5 "$2" </dev/null >/dev/null 2>&1; rc=$?
			[ $rc -ge 126 ] || return 0	# 126/127: not executable; above: killed
		fi
		sleep 1
	done
	die "$1: cannot take a working copy (is it being rebuilt?)" 69
}
mkdir -p "$BENCH_OUT/bin" "$BENCH_OUT/tools"
for p in provbus-consumer provbus-publish provbus-audit provbus-schema provbus-fleet; do snapshot "$PROGS/$p" "$BENCH_OUT/bin/$p"; done
for t in $TOOLS_USED; do snapshot "$BUILD/tools/$t" "$BENCH_OUT/tools/$t"; done
export BENCH_BIN=$BENCH_OUT/bin BENCH_TOOLS=$BENCH_OUT/tools

own_broker="" own_vhost="" etcd_pid=""
cleanup() {
	if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; fi
	if [ -n "$own_vhost" ] && [ -z "$own_broker" ]; then ctl delete_vhost "$own_vhost" >/dev/null 2>&1 || true; fi
	if [ -n "$own_broker" ]; then tests/broker/pb-broker stop "$own_broker" >/dev/null 2>&1 || true; rm -rf "$own_broker"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${PB_BROKER_DIR:-}" ] && [ -f "$PB_BROKER_DIR/broker.env" ]; then
	log "broker: the running one in $PB_BROKER_DIR"
else
	own_broker=$(mktemp -d "${TMPDIR:-/tmp}/provbus-bench-broker.XXXXXX")
	log "starting a private RabbitMQ in $own_broker"
	# rabbitmq_stream: provbus-fleet's fast path (bench/s-fleet.sh)
	tests/broker/pb-broker start "$own_broker" --plugins rabbitmq_stream >/dev/null || die "could not start the broker" 69
	export PB_BROKER_DIR=$own_broker
fi

# one vhost for the run (each section has its own federation in it), made
# here unless the caller gives one (BENCH_VHOST, guest allowed everything)
ctl() { tests/broker/pb-broker ctl "$PB_BROKER_DIR" "$@"; }
if [ -z "${BENCH_VHOST:-}" ] && [ -n "$own_broker" ]; then
	export BENCH_VHOST=/	# our own broker: its default vhost is ours
elif [ -z "${BENCH_VHOST:-}" ]; then
	own_vhost=/bench-$$
	ctl add_vhost "$own_vhost" >/dev/null && ctl set_permissions -p "$own_vhost" guest '.*' '.*' '.*' >/dev/null ||
		die "could not make vhost $own_vhost on the broker" 69
	export BENCH_VHOST=$own_vhost
fi

log "mode $mode, budget ${budget} s, sections: $sections"
# one etcd member for the whole run (three sections use it)
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
	. "$BENCH_ROOT/tests/broker/ports.sh"
	cp=$(pb_pick_port); pp=$(pb_pick_port "$cp")
	mkdir -p "$BENCH_OUT/work/etcd"
	etcd --name bench --data-dir "$BENCH_OUT/work/etcd/data" \
		--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "bench=http://127.0.0.1:$pp" --log-level error >"$BENCH_OUT/work/etcd/etcd.log" 2>&1 &
	etcd_pid=$!
	for i in $(seq 100); do	# until healthy, at most about 2 minutes, not after etcd died
		ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$cp" --dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1 && break
		kill -0 "$etcd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$etcd_pid" 2>/dev/null &&
	   ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$cp" --dial-timeout 1s --command-timeout 3s endpoint health >/dev/null 2>&1; then
		export BENCH_ETCD_EP=127.0.0.1:$cp BENCH_ETCD_PID=$etcd_pid
	else
		log "etcd did not start (see $BENCH_OUT/work/etcd/etcd.log): its figures will be NA"
	fi
fi

failed=()
for s in $sections; do
	[ -f "bench/s-$s.sh" ] || die "bench/s-$s.sh: no such section (sections: $ALL_SECTIONS)" 64
	t0=$(date +%s)
	rest=0 seen=0
	for x in $sections; do [ "$x" = "$s" ] && seen=1; [ $seen = 0 ] || rest=$(( rest + ${WEIGHT[$x]:-10} )); done
	export SECTION_DEADLINE=$(( t0 + (BENCH_DEADLINE - t0) * ${WEIGHT[$s]:-10} / rest ))
	log "section $s ($(( SECTION_DEADLINE - t0 )) s of the $(( BENCH_DEADLINE - t0 )) s left; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	# a section never runs past the whole run's deadline (plus its cleanup)
	left=$(( BENCH_DEADLINE - t0 + 10 )); [ $left -gt 30 ] || left=30
	SECTION=$s timeout -k 15 "$left" bash "bench/s-$s.sh"
	rc=$?
	if [ $rc -ne 0 ]; then
		failed+=("$s")
		log "section $s FAILED (exit $rc); see $BENCH_OUT/work/$s/"
	fi
	log "section $s took $(( $(date +%s) - t0 )) s"
done

total=$(( $(date +%s) - started ))
log "all sections: ${total} s"
export BENCH_TOTAL_S=$total BENCH_FAILED="${failed[*]:-}"
bench/report.sh "$BENCH_OUT" || failed+=(report)

# docs/ keeps the last complete full run: a run with a failed section
# leaves it alone (its tables are in BENCH_OUT)
docs=${BENCH_DOCS:-1}
if [ "$mode" = full ] && [ "$docs" = 1 ] && [ -z "${BENCH_ONLY:-}" ]; then
	if [ ${#failed[@]} -eq 0 ]; then
		cp "$BENCH_OUT/bench.svg" docs/bench.svg
		cp "$BENCH_OUT/BENCHMARKS.md" docs/BENCHMARKS.md
		log "wrote docs/BENCHMARKS.md and docs/bench.svg"
	else
		log "docs/BENCHMARKS.md not rewritten: a section failed"
	fi
fi
log "results: $BENCH_OUT/table.md"
[ ${#failed[@]} -eq 0 ] || { log "failed sections: ${failed[*]}"; exit 1; }
exit 0
