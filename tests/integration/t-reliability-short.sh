#!/usr/bin/env bash
# t-reliability-short: the short form of `make reliability` for `make
# check` — the scenarios that need no broker of their own, with small
# counts (the full figures: tests/reliability/run.sh, docs/RELIABILITY.md):
#   s3 publisher with the broker down: spooled, exit 75, delivered in order
#   s6 malformed flood: dead-lettered and audited as invalid, valid applied
#   s2 kill -9 of a consumer mid-stream and mid-run: 0 lost, interrupted run
#   s8 disk full under the audit log (root only): stops acking, resumes
# Each scenario runs as its own script; its checks are shown as comments
# and it counts as one check here. RL_SHORT_ONLY="s3 s6" picks some.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
base=${PB_TEST_TMP:-$(mktemp -d)}
mkdir -p "$base"

run_scenario() { # run_scenario NAME ENV...
	local name=$1 start rc out; shift
	case " ${RL_SHORT_ONLY:-$name} " in *" ${name%%-*} "* | *" $name "*) ;; *) return 0 ;; esac
	out=$base/$name.out
	rm -rf "${base:?}/$name"
	start=$(date +%s)
	env "$@" PB_TEST_TMP="$base/$name" bash "$PB_ROOT/tests/reliability/$name.sh" >"$out" 2>&1
	rc=$?
	sed 's/^/#   /' "$out" | grep -E '^#   (not ok|# RESULT|#   )' | head -n 40
	# its plan is checked as tests/run.sh checks a script's; a scenario
	# skipped here (s8 when not root) is a skip of this check
	local pass fail skip problem
	read -r pass fail skip problem < <("$PB_ROOT/tests/tap-summary" "$out")
	if [ $rc -eq 0 ] && [ "$fail" -eq 0 ] && [ "$problem" = - ] && [ "$pass" -eq 0 ] && [ "$skip" -gt 0 ]; then
		pb_skip 1 "$name: $(grep -m1 '# *SKIP' "$out" | sed 's/.*# *SKIP *//')"
		return
	fi
	local verdict=0
	[ $rc -eq 0 ] && [ "$fail" -eq 0 ] && [ "$problem" = - ] || verdict=1
	[ "$skip" -eq 0 ] || [ -z "${PB_REQUIRE_NO_SKIP:-}" ] || verdict=1
	if [ "$problem" = - ]; then problem=""; else problem=", $problem"; fi
	ok $verdict "$name ($pass checks$problem, $skip skipped, $(( $(date +%s) - start )) s)"
	[ $verdict -eq 0 ] || sed 's/^/#   /' "$out" | grep '^#   not ok' -A 3 | head -n 30
}

run_scenario s3-publisher-spool RL_RUNS=5 RL_KEYS=3
run_scenario s6-malformed-flood RL_MALFORMED=3000 RL_VALID_EVERY=10
run_scenario s2-consumer-kill RL_EVENTS=3000
run_scenario s8-disk-full RL_EVENTS=3000
pb_done
