#!/usr/bin/env bash
# t-runner: the runner's count is honest (tests/tap-summary, the plan
# helpers of lib.sh, tests/run.sh's closing line): a script that stops
# early, makes another number of checks than it planned, or declares no
# plan is caught; skips are counted apart, never as passes; a run where
# no check ran fails. No broker needed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
SUM=$PB_ROOT/tests/tap-summary

summary() { printf '%b' "$1" >"$T/tap"; "$SUM" "$T/tap"; }
is "$(summary 'ok 1 - a\nok 2 - b\n1..2\n')" "2 0 0 -" "tap-summary: two passes and a plan at the end"
is "$(summary '1..2\nok 1 - a\nnot ok 2 - b\n')" "1 1 0 -" "tap-summary: a plan first, a failure counted"
like "$(summary 'ok 1 - a\nok 2 - b\n')" "^2 0 0 no plan" "tap-summary: no plan is a problem"
like "$(summary '1..3\nok 1 - a\nok 2 - b\n')" "^2 0 0 plan 1..3 but 2 checks" "tap-summary: fewer checks than planned"
like "$(summary 'ok 1 - a\n1..1\nok 2 - b\n1..2\n')" "more than one plan" "tap-summary: two plans"
is "$(summary 'ok 1 - a\nok 2 # SKIP no strace\nok 3 - # skip no ruby\n1..3\n')" "1 0 2 -" \
	"tap-summary: skips counted apart, not as passes"
is "$(summary '1..0 # SKIP not root\n')" "0 0 1 -" "tap-summary: a script skipped whole is one skip"
like "$(summary '1..0\n')" "no checks ran" "tap-summary: a plan of nothing, not skipped, is a problem"
like "$(summary '# just talk\n')" "no plan" "tap-summary: an empty script is a problem"

# the helpers of lib.sh, in child scripts
child() { # child NAME BODY: runs BODY after sourcing lib.sh; its TAP in $T/NAME.tap
	printf '. "$PB_ROOT/tests/integration/lib.sh"\n%s\n' "$2" >"$T/$1.sh"
	bash "$T/$1.sh" >"$T/$1.tap" 2>&1
}
child ended 'ok 0 a; ok 0 b; pb_done'
is "$?:$("$SUM" "$T/ended.tap")" "0:2 0 0 -" "pb_done prints the plan of the checks made"
child early 'ok 0 a; exit 0; ok 0 b; pb_done'
like "$("$SUM" "$T/early.tap")" "no plan" "a script that exits before pb_done has no plan: caught"
child planned 'pb_plan 2; ok 0 a; ok 0 b; pb_done'
is "$?:$("$SUM" "$T/planned.tap")" "0:2 0 0 -" "pb_plan N, N checks made: honest"
child short 'pb_plan 3; ok 0 a; ok 0 b; pb_done'
rc=$?
ok "$([ $rc -ne 0 ]; echo $?)" "pb_plan 3 with 2 checks made: pb_done fails (exit $rc)"
like "$("$SUM" "$T/short.tap")" "plan 1..3 but 2 checks" "... and tap-summary says so"
child skip 'ok 0 a; pb_skip 2 "no strace here"; pb_done'
is "$("$SUM" "$T/skip.tap")" "1 0 2 -" "pb_skip: two skips, one pass, plan of three"
like "$(grep -c '^ok [23] # SKIP no strace here$' "$T/skip.tap")" "^2$" "pb_skip: TAP skip lines with the reason"
child skipall 'pb_skip_all "not root"; ok 0 never; pb_done'
is "$?:$("$SUM" "$T/skipall.tap")" "0:0 0 1 -" "pb_skip_all: exit 0, one skip, nothing else runs"

# tests/run.sh: a pattern that matches nothing is a failure, and the
# closing line has the three counts
out=$(TMPDIR=$T BUILD=${BUILD:-build} "$PB_ROOT/tests/run.sh" unit no-such-suite-xyz 2>&1); rc=$?
ok "$([ $rc -ne 0 ]; echo $?)" "tests/run.sh: no check ran: exit $rc"
is "$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' <<<"$out")" "0 passed, 1 failed, 0 skipped" \
	"tests/run.sh: the closing line, alone on its line: N passed, N failed, N skipped"
pb_done
