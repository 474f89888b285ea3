#!/usr/bin/env bash
# Scenario 9: the short form of make partition (tests/fleet/run.sh): a
# fleet of hosts in network namespaces, three brokers clustered over a
# private bridge with the sample configuration, 2 publishers, 3
# consumers; one broker cut off from the other two (pause_minority), then
# healed. 0 lost, 0 audited twice, every consumer converged, none exited.
# Skipped (ok # SKIP) without root or network namespaces.
# shellcheck disable=SC1091
set -uo pipefail
cd "$PB_ROOT" || exit 1
echo "1..1"	# one check (tests/tap-summary wants the plan)
probe=pbf-probe-$$
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$probe" 2>/dev/null; then
	echo "ok 1 # SKIP network namespaces need root (ip netns add)"
	exit 0
fi
ip netns del "$probe"
res=$(mktemp "${TMPDIR:-/tmp}/pbf-res.XXXXXX")
FL_SHORT=1 FL_RESULTS=$res PB_BIN=$PB_BIN FL_OUT=${PB_TEST_TMP:+$PB_TEST_TMP/fleet} tests/fleet/run.sh minority
rc=$?
row=$(awk '$1 == "minority"' "$res")
rm -f "$res"
if [ $rc -eq 0 ]; then echo "ok 1 - minority partition: nothing lost ($row)"; else echo "not ok 1 - minority partition (exit $rc): $row"; fi
read -r _ sent conf spool _ aud lost dbl dups conv manual _ <<<"$row"
resline="# RESULT scenario=s9-partition sent=${sent:-?} confirmed=${conf:-?} spooled=${spool:-?} audited=${aud:-?} lost=${lost:-?} double=${dbl:-?} duplicated_detected=${dups:-?} converge_s=${conv:-?} manual_heal=${manual:-?}"
echo "$resline"
[ -z "${RL_RESULTS:-}" ] || echo "${resline#\# RESULT }" >>"$RL_RESULTS"
exit $rc
