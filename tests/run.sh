#!/usr/bin/env bash
# tests/run.sh unit|integration|all [NAME-PATTERN...]  (a name matching any)
#
# Runs the Check suites (BUILD/tests/test_*) and the integration scripts
# (tests/integration/t-*.sh) against ONE private broker started here (or
# the one named by PB_BROKER_DIR when it is already running), then stops
# it by PID. Prints a closing line "N passed, N failed, N skipped". Each
# script must declare its plan (TAP "1..N": pb_done or pb_plan, see
# tests/integration/lib.sh): one without a plan, or whose number of checks
# differs from it, fails (tests/tap-summary); so does a run where no check
# ran at all (a pattern that matches nothing).
#   PB_REQUIRE_NO_SKIP=1    every skipped check is a failure (.ci/run: a
#                           CI machine has what every check needs)
# PB_VALGRIND=1 runs the unit suites under valgrind memcheck.
#
#   BUILD (default build)   the build whose unit suites and tools run
#   PB_BIN (default bin)    the folder of the provbus-* programs (make
#                           passes PROGDIR: build-san/bin for SANITIZE=...)
#   PB_SLOW                 the factor for the tests' time windows (wait_for
#                           timeouts, upper bounds on elapsed time, the
#                           per-script timeout); default 1, or 3 when the
#                           programs are sanitizer builds (2-4x slower)
#   PB_JOBS (default 4)     integration scripts run at a time
#   PB_TEST_TIMEOUT (default 300)  seconds per script (x PB_SLOW)
# Sanitizer reports (ASan, LSan, UBSan) of every program, suite and tool
# run here go to files under the run's log folder, whichever process made
# them (a daemon whose output a test throws away too): each one is a
# failure, printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
what=${1:-all}
patterns=("${@:2}")
pattern=${patterns[*]}
# wanted NAME: no pattern, or NAME contains one of them (globs allowed)
wanted() {
	local p
	[ ${#patterns[@]} -eq 0 ] && return 0
	for p in "${patterns[@]}"; do [[ $1 == *$p* ]] && return 0; done
	return 1
}
PB_BIN=${PB_BIN:-$ROOT/bin}
[[ $PB_BIN == /* ]] || PB_BIN=$ROOT/$PB_BIN
export PB_ROOT=$ROOT PB_BIN PB_TOOLS=$ROOT/$BUILD/tools
export LC_ALL=C.UTF-8
if [ -z "${PB_SLOW:-}" ]; then
	PB_SLOW=1
	if ldd "$PB_BIN/provbus-consumer" 2>/dev/null | grep -q 'libasan\|libubsan\|libtsan'; then PB_SLOW=3; fi
fi
[[ $PB_SLOW =~ ^[1-9][0-9]*$ ]] || { echo "tests/run.sh: PB_SLOW=$PB_SLOW: want a whole number, 1 or more" >&2; exit 64; }
export PB_SLOW

passed=0 failed=0 skipped=0 failures=()
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/provbus-check.XXXXXX")
own_broker=""
# log_path: reports go to SANDIR/asan.PID (ubsan.PID) instead of stderr
SANDIR=$RUNDIR/sanitizer
mkdir -p "$SANDIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SANDIR/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SANDIR/ubsan:print_stacktrace=1"
# ASan holds freed blocks back (its quarantine, 256 MB a process) to catch
# a use after free. It fills over tens of thousands of events, which shows
# as RSS growth that is ASan's, not provbus's: the scripts that assert a
# daemon's memory stays flat over a burst run with a 1 MB quarantine (full
# after the first burst; a use after free within the last 1 MB of frees is
# still caught); every other script keeps the default.
SMALL_QUARANTINE="t-consumer-burst t-reliability-short"

cleanup() {
	if [ -n "$own_broker" ]; then "$ROOT/tests/broker/pb-broker" stop "$own_broker" || true; fi
	if [ $failed -eq 0 ]; then rm -rf "$RUNDIR"; else echo "logs kept in $RUNDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_unit() {
	local t name out rc checks fails errs
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		wanted "$name" || continue
		out="$RUNDIR/$name.log"
		if [ -n "${PB_VALGRIND:-}" ]; then
			CK_FORK=no valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
				--error-exitcode=99 "$t" >"$out" 2>&1
		else
			"$t" >"$out" 2>&1
		fi
		rc=$?
		# Check's summary: "100%: Checks: 12, Failures: 0, Errors: 0"
		read -r checks fails errs < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$out" | tail -n1)
		checks=${checks:-0} fails=${fails:-0} errs=${errs:-0}
		[ "$checks" -gt 0 ] || [ $rc -ne 0 ] || { rc=1; echo "# $name: no checks ran" >>"$out"; }
		passed=$((passed + checks - fails - errs))
		failed=$((failed + fails + errs))
		if [ $rc -ne 0 ] && [ $((fails + errs)) -eq 0 ]; then failed=$((failed + 1)); fi
		if [ $rc -ne 0 ] || [ $((fails + errs)) -ne 0 ]; then
			failures+=("$name")
			echo "FAIL $name (rc=$rc)"; grep -v '^ok\|Checks' "$out" | tail -n 30
		else
			echo "ok   $name: $checks checks"
		fi
	done
}

start_broker() {
	if [ -n "${PB_BROKER_DIR:-}" ] && [ -f "$PB_BROKER_DIR/broker.env" ]; then
		return 0
	fi
	own_broker="$RUNDIR/broker"
	echo "starting a private RabbitMQ in $own_broker ..."
	if ! "$ROOT/tests/broker/pb-broker" start "$own_broker" --plugins rabbitmq_stream >/dev/null; then
		echo "FAIL could not start the test broker"; failed=$((failed + 1)); own_broker=""; return 1
	fi
	export PB_BROKER_DIR=$own_broker
	echo "broker up: $(grep PB_BROKER_URL= "$own_broker/broker.env" | cut -d"'" -f2 | sed 's/guest:guest@/guest@/')"
}

# One integration script, its verdict written to RUNDIR/NAME.result as
# "passed failed skipped rc seconds plan-problem" (tests/tap-summary).
run_one() {
	local t=$1 name out rc start
	name=$(basename "$t" .sh)
	out="$RUNDIR/$name.log"
	start=$(date +%s)
	local asan=$ASAN_OPTIONS
	[[ " $SMALL_QUARANTINE " != *" $name "* ]] || asan="$asan:quarantine_size_mb=1"
	# a script may ask for more time than the default: a line "# pb-timeout: SECONDS"
	local limit; limit=$(sed -n 's/^# pb-timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -n 1)
	ASAN_OPTIONS=$asan PB_TEST_TMP="$RUNDIR/$name" timeout -k 10 "$(( ${limit:-${PB_TEST_TIMEOUT:-300}} * PB_SLOW ))" bash "$t" >"$out" 2>&1 </dev/null
	rc=$?
	local pass fail skip problem
	read -r pass fail skip problem < <("$ROOT/tests/tap-summary" "$out")
	echo "$pass $fail $skip $rc $(( $(date +%s) - start )) $problem" >"$RUNDIR/$name.result"
}

report_one() {
	local name=$1 ok nok skip rc secs problem why=""
	read -r ok nok skip rc secs problem <"$RUNDIR/$name.result"
	passed=$((passed + ok)); failed=$((failed + nok)); skipped=$((skipped + skip))
	# a script that failed with no "not ok" line (it stopped, or its plan
	# is wrong), or skipped where no skip is allowed: one failure more
	[ "$rc" -eq 0 ] || why="rc=$rc"
	[ "$problem" = - ] || why="${why:+$why, }$problem"
	if [ "$skip" -gt 0 ] && [ -n "${PB_REQUIRE_NO_SKIP:-}" ]; then
		why="${why:+$why, }$skip skipped with PB_REQUIRE_NO_SKIP=1"
		failed=$((failed + skip)); skipped=$((skipped - skip))
	fi
	if [ -n "$why" ] && [ "$nok" -eq 0 ]; then failed=$((failed + 1)); fi
	if [ -n "$why" ] || [ "$nok" -ne 0 ]; then
		failures+=("$name")
		echo "FAIL $name (${why:+$why, }$ok ok, $nok not ok, $skip skipped, ${secs}s)"
		grep -v '^ok ' "$RUNDIR/$name.log" | tail -n 40 | sed 's/^/    /'
	else
		if [ "$skip" -eq 0 ]; then echo "ok   $name: $ok checks, ${secs}s"
		else echo "ok   $name: $ok checks, $skip skipped, ${secs}s"; fi
		[ "$skip" -eq 0 ] || grep -i '^ok .*# *SKIP\|^1\.\.0' "$RUNDIR/$name.log" | sed 's/^/    /'
	fi
}

# Scripts run PB_JOBS at a time (default 4: most of a script's time is
# spent waiting on brokers, daemons and debounce timers, not on the CPU;
# every script has its own vhost, temp dir and, where it kills or blocks a
# broker, its own broker). The longest ones start first so the run ends
# soonest. The quick bench runs alone, last: its sections have time
# budgets, and three other scripts beside it can starve its peers.
LONG="t-deb t-demo t-fleet t-reliability-short t-consumer-reconnect t-security-tls t-consumer-runs"
# t-publish-outage sets a memory alarm on the shared broker (broker-wide:
# every publisher of every vhost is blocked meanwhile), so it runs alone
# too, before the bench.
SERIAL="t-publish-outage t-consumer-alarm t-fleet-alarm t-bench-quick"
run_integration() {
	local t name jobs=${PB_JOBS:-4} running=() order=() l
	start_broker || return
	for l in $LONG; do [ -f "tests/integration/$l.sh" ] && order+=("tests/integration/$l.sh"); done
	for t in tests/integration/t-*.sh; do
		[[ " $LONG $SERIAL " == *" $(basename "$t" .sh) "* ]] || order+=("$t")
	done
	for t in "${order[@]}"; do
		name=$(basename "$t" .sh)
		wanted "$name" || continue
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n 2>/dev/null || true; done
		run_one "$t" &
		running+=("$name")
	done
	wait
	for name in "${running[@]}"; do report_one "$name"; done
	for name in $SERIAL; do
		[ -f "tests/integration/$name.sh" ] || continue
		wanted "$name" || continue
		run_one "tests/integration/$name.sh"; report_one "$name"
	done
}

# every sanitizer report written during the run is one failure
report_sanitizers() {
	local f
	for f in "$SANDIR"/*; do
		[ -f "$f" ] || continue
		failed=$((failed + 1)); failures+=("$(basename "$f")")
		echo "FAIL sanitizer report $f:"
		head -n 40 "$f" | sed 's/^/    /'
	done
}

[ "$PB_SLOW" -eq 1 ] || echo "PB_SLOW=$PB_SLOW: time windows of the tests x$PB_SLOW (programs in $PB_BIN)"
case $what in
unit) run_unit ;;
integration) run_integration ;;
all) run_unit; run_integration ;;
*) echo "usage: tests/run.sh unit|integration|all [PATTERN]" >&2; exit 64 ;;
esac
report_sanitizers

if [ $((passed + failed + skipped)) -eq 0 ]; then
	echo "FAIL no check ran${pattern:+ (nothing matches '$pattern')}"
	failed=1
fi
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
