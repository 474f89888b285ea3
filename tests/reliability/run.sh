#!/usr/bin/env bash
# tests/reliability/run.sh [PATTERN...]   (make reliability)
#
# Runs the reliability scenarios tests/reliability/s*.sh (all, or those
# whose name contains a PATTERN) one after the other, against one private
# broker started here (or the one of PB_BROKER_DIR); scenarios that must
# kill or reconfigure a broker start their own. Each scenario prints
# TAP-style lines and one "# RESULT ..." line with its figures (events
# sent, audited, lost, duplicated-and-detected, recovery time); the table
# of all RESULT lines is printed at the end and written to
# $RL_OUT/results.txt.
#
#   BUILD (default build)      which build's tools to use
#   PB_BIN (default bin)       the folder of the provbus-* programs (make
#                              passes PROGDIR: build-san/bin for SANITIZE=...)
#   PB_SLOW                    the factor for the scenarios' time windows
#                              (default 1, or 3 for sanitizer builds)
#   RL_SCALE=short             the small counts of `make check`
#   RL_TIMEOUT (default 1200)  seconds per scenario (x PB_SLOW)
#   RL_OUT (default a temp dir) where logs and results go; kept on failure
#   RL_VALGRIND=1              run provbus-consumer under valgrind memcheck
#                              in the scenarios that support it (s2, s6)
#   PB_REQUIRE_NO_SKIP=1       a skipped check fails its scenario
# Each scenario must declare its plan (pb_done or pb_plan; tests/tap-summary
# checks it, as tests/run.sh does). Exit 0 when every scenario passed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
PB_BIN=${PB_BIN:-$ROOT/bin}
[[ $PB_BIN == /* ]] || PB_BIN=$ROOT/$PB_BIN
export PB_ROOT=$ROOT PB_BIN PB_TOOLS=$ROOT/$BUILD/tools
export LC_ALL=C.UTF-8
if [ -z "${PB_SLOW:-}" ]; then
	PB_SLOW=1
	if ldd "$PB_BIN/provbus-consumer" 2>/dev/null | grep -q 'libasan\|libubsan\|libtsan'; then PB_SLOW=3; fi
fi
[[ $PB_SLOW =~ ^[1-9][0-9]*$ ]] || { echo "reliability: PB_SLOW=$PB_SLOW: want a whole number, 1 or more" >&2; exit 64; }
export PB_SLOW
OUT=${RL_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/provbus-reliability.XXXXXX")}
mkdir -p "$OUT"
export RL_RESULTS=$OUT/results.txt
: >"$RL_RESULTS"
# sanitizer builds: reports (ASan, LSan, UBSan) go to files under
# OUT/sanitizer, each one a failure; the scenarios that measure a daemon's
# RSS (s6, s7) run with a 1 MB ASan quarantine (see tests/run.sh)
SANDIR=$OUT/sanitizer
mkdir -p "$SANDIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SANDIR/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SANDIR/ubsan:print_stacktrace=1"
own_broker=""
failed=() passed=()

cleanup() {
	if [ -n "$own_broker" ]; then "$ROOT/tests/broker/pb-broker" stop "$own_broker" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in provbus-consumer provbus-publish provbus-schema provbus-audit; do
	[ -x "$PB_BIN/$p" ] || echo "reliability: warning: $PB_BIN/$p missing (make): the scenarios using it will fail" >&2
done
[ -x "$PB_TOOLS/pbtest-amqp" ] || { echo "reliability: $PB_TOOLS/pbtest-amqp missing: make tests-build" >&2; exit 1; }

if [ -z "${PB_BROKER_DIR:-}" ] || [ ! -f "$PB_BROKER_DIR/broker.env" ]; then
	own_broker=$OUT/broker
	echo "starting a private RabbitMQ in $own_broker ..."
	"$ROOT/tests/broker/pb-broker" start "$own_broker" >/dev/null || { echo "could not start the broker"; exit 1; }
	export PB_BROKER_DIR=$own_broker
fi

scripts=()
for s in tests/reliability/s*.sh; do
	name=$(basename "$s" .sh)
	if [ $# -gt 0 ]; then
		hit=""
		for p in "$@"; do [[ $name == *$p* ]] && hit=1; done
		[ -n "$hit" ] || continue
	fi
	scripts+=("$s")
done
[ ${#scripts[@]} -gt 0 ] || { echo "reliability: no scenario matches: $*" >&2; exit 64; }

for s in "${scripts[@]}"; do
	name=$(basename "$s" .sh)
	log=$OUT/$name.log
	start=$(date +%s)
	echo "== $name"
	rm -rf "${OUT:?}/$name"
	asan=$ASAN_OPTIONS
	case $name in s6-* | s7-*) asan="$asan:quarantine_size_mb=1" ;; esac
	ASAN_OPTIONS=$asan PB_TEST_TMP="$OUT/$name" timeout -k 10 "$(( ${RL_TIMEOUT:-1200} * PB_SLOW ))" bash "$s" >"$log" 2>&1
	rc=$?
	read -r okc nok skip problem < <(tests/tap-summary "$log")
	why=""
	[ "$problem" = - ] || why=", $problem"
	[ "$skip" -eq 0 ] || [ -z "${PB_REQUIRE_NO_SKIP:-}" ] || why="$why, $skip skipped with PB_REQUIRE_NO_SKIP=1"
	grep '^# RESULT' "$log" | sed 's/^# RESULT /   /'
	if [ $rc -ne 0 ] || [ "$nok" -ne 0 ] || [ -n "$why" ]; then
		failed+=("$name")
		echo "FAIL $name (rc=$rc$why, $okc ok, $nok not ok, $skip skipped, $(( $(date +%s) - start ))s), log: $log"
		grep -E '^not ok|^#   ' "$log" | head -n 30 | sed 's/^/    /'
	else
		passed+=("$name")
		echo "ok   $name: $okc checks$([ "$skip" -eq 0 ] || echo ", $skip skipped"), $(( $(date +%s) - start ))s"
	fi
done

for f in "$SANDIR"/*; do
	[ -f "$f" ] || continue
	failed+=("$(basename "$f")")
	echo "FAIL sanitizer report $f:"
	head -n 40 "$f" | sed 's/^/    /'
done

echo
echo "results (also in $RL_RESULTS):"
column -t <"$RL_RESULTS" 2>/dev/null || cat "$RL_RESULTS"
echo "${#passed[@]} scenario(s) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
echo "logs: $OUT"
[ ${#failed[@]} -eq 0 ]
