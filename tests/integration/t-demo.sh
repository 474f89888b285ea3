#!/usr/bin/env bash
# make demo, non-interactive: its own broker, three daemons, the cycle,
# and the checks it asserts (one run per burst, both API URLs, lb-01's
# upstream, the retire run, nothing left running), and act two's real
# nginx load balancer following adds, a retire and an expired lease.
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
DEMO_DIR="$T/demo" DEMO_CHECK=1 BUILD=${BUILD:-build} "$PB_ROOT/deploy/demo/run-demo.sh" >"$T/demo.out" 2>&1
rc=$?
sed 's/^/# /' "$T/demo.out"
ok $rc "make demo's checks pass (it exits 0)"
# the exit status says no check failed; this says the checks were made
# (a check dropped or skipped would still exit 0)
missing=""
for c in "made exactly one run for both announcements" "holds both API URLs" "upstream lists www-01" \
	"burst of 200 gave one www-01 run" "retire gave one www-01 run" "no process left behind" \
	"every consumer ran with today's value"; do
	grep -q "check.* $c" "$T/demo.out" || missing="$missing, $c"
done
is "${missing#, }" "" "the demo made each of its seven checks"
# act two: the load balancer's checks, each named, were made
missing=""
for c in "with no public API node, nginx answers 503" "requests through nginx reach exactly: api-11 api-12 api-13" \
	"requests through nginx reach exactly: api-11 api-13" "requests through nginx reach exactly: api-11" \
	"api-13 left through its lease"; do
	grep -q "check.* $c\$\|check.* $c " "$T/demo.out" || missing="$missing, $c"
done
is "${missing#, }" "" "the demo made each of act two's five load-balancer checks"
is "$(grep -c "check.* the private api-int is never in the load balancer" "$T/demo.out")" 3 \
	"demo, act two: the private api-int never in the load balancer, after each of the three changes"
test -s "$T/demo/timeline.html"; ok $? "demo wrote a timeline"
test -s "$T/demo/timeline-lb.html"; ok $? "demo wrote the load balancer's timeline"
pb_done
