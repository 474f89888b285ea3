#!/usr/bin/env bash
# make demo, non-interactive: its own broker, three daemons, the cycle,
# and the checks it asserts (one run per burst, both API URLs, lb-01's
# upstream, the retire run, nothing left running).
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
DEMO_DIR="$T/demo" DEMO_CHECK=1 BUILD=${BUILD:-build} "$PB_ROOT/deploy/demo/run-demo.sh" >"$T/demo.out" 2>&1
rc=$?
sed 's/^/# /' "$T/demo.out"
ok $rc "make demo's checks pass"
for c in "made exactly one run for both announcements" "holds both API URLs" "upstream lists www-01" \
	"burst of 200 gave one www-01 run" "retire gave one www-01 run" "no process left behind" \
	"every consumer ran with today's value"; do
	grep -q "check.* $c\|check $c" "$T/demo.out"; ok $? "demo: $c"
done
test -s "$T/demo/timeline.html"; ok $? "demo wrote a timeline"
pb_done
