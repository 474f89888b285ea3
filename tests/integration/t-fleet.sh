#!/usr/bin/env bash
# provbus-fleet and the consumer's reports (docs/protocol.md), against a real
# broker: one providing node and 21 consumer daemons, each with a broker
# user of its own (topic permissions as the export gives them), and
# provbus-fleet as provbus-observer (read on the two streams only).
# After a provides, converged --wait exits 0 once every consumer ran; a
# paused consumer and one whose provision fails are named with "paused"
# and "last run failed"; providers equals each consumer's state.json; a
# consumer killed with -9 becomes stale when its lease runs out and one
# stopped cleanly shows stopped; a node cannot report as another (topic
# permission) and a report whose user_id is not its node is ignored and
# counted; a report the broker refuses is audited once, not retried.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup fleet
F=pbf
. "$PB_ROOT/tests/data/fleet/lib-fleet.sh"

pb_topology "$F" us-east-1 eu-west-1
pb_apply >/dev/null; ok $? "topology applied (history and fleet streams)"

N=21
nodes=()
for i in $(seq -w 1 $N); do nodes+=("c$i"); done
specs=(prov:us-east-1 mute:us-east-1:'^us-east-1\\.(provides|retire)\\.[A-Z_]+$')
for n in "${nodes[@]}"; do specs+=("$n:us-east-1"); done
pbf_users "$T/defs.json" "${specs[@]}"; ok $? "$((N + 2)) broker users and provbus-observer imported"

# the consumers: c20 accepts every region, c21 only public providers;
# c19 has a static value for DB_URL, which no one provides
for n in "${nodes[@]}"; do
	case $n in
	c19) pbf_node "$n" us-east-1 '"static": {"DB_URL": "mysql://db-1/app"}' '{"API_URL": "{API_URL}", "DB_URL": "{DB_URL}"}' ;;
	c20) pbf_node "$n" us-east-1 '"regions": ["*"]' ;;
	c21) pbf_node "$n" us-east-1 '"public_only": true' ;;
	c18) PBF_PRESENCE_S=5 pbf_node "$n" us-east-1 ;;	# "not connected" below
	*) pbf_node "$n" us-east-1 ;;
	esac
done
pbf_node mute us-east-1	# its topic permissions leave out its reports
declare -A PID
for n in "${nodes[@]}" mute; do
	pb_bg "$n" provbus-consumer -c "$T/$n.json" -v run
	PID[$n]=$BG_PID
done

alive_count() { pbf_fleet nodes --json 2>/dev/null | jq -s '[.[] | select(.state == "alive" and .connected_since != null)] | length'; }
all_alive() { [ "$(alive_count)" = "$N" ]; }
pbf_wait 60 all_alive; ok $? "nodes: all $N consumers alive"
# each consumer's startup run ends at its own time (jitter): wait for c07's
ran_ok() { pbf_fleet nodes --json 2>/dev/null | jq -e --arg n "$1" 'select(.node == $n) | .last_run.status == "ok"' >/dev/null; }
pbf_wait 60 ran_ok c07
out=$(pbf_fleet nodes 2>&1)
like "$out" "NODE +REGION +STATE" "nodes: a header"
like "$out" "c07 +us-east-1 +alive +[0-9.]+ +no +#1 ok" "nodes: a line per node with its state, version, paused, last run"
is "$(pbf_fleet nodes --json | jq -r 'select(.node == "c19") | .keys | join(",")')" "API_URL,DB_URL" "nodes --json: the keys"

# --- the refused report: audited once, not retried, the daemon goes on
refused() { [ "$(sqlite3 "$T/mute/state/audit.db" "SELECT COUNT(*) FROM notes WHERE kind = 'report-refused'")" -ge 1 ]; }
wait_for 20 refused; ok $? "a report refused by the broker (topic permission) is audited as report-refused"
like "$(grep -c 'refused' "$T/mute.log")" "^[1-9]" "and logged"
kill -0 "${PID[mute]}"; ok $? "the daemon goes on"
is "$(pbf_fleet nodes --json | jq -r 'select(.node == "mute") | .node')" "" "no presence of it reaches the fleet stream"

# --- a provides: converged --wait
pbf_prov true
provbus-publish -c "$T/prov.json" provides >/dev/null; ok $? "prov provides API_URL"
t0=$(date +%s%N)
out=$(pbf_fleet converged API_URL --wait 60 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$rc" 0 "converged API_URL --wait 60: exit 0 (in $ms ms)"
like "$out" "converged: $N of $N live consumers" "converged says how many"
like "$(cat "$T/c05/app.env")" "http://10.9.9.9:1100" "and the consumers have the value"

# --- providers = each consumer's state.json
same=0
for n in "${nodes[@]}"; do
	a=$(jq -cS '[.providers[]] | sort_by(.key, .node, .service)' "$T/$n/state/state.json")
	b=$(pbf_fleet providers --node "$n" --json | jq -cSs 'sort_by(.key, .node, .service)')
	[ "$a" = "$b" ] && same=$((same + 1)) || diag "$n: state.json $a, fleet $b"
done
is "$same" "$N" "providers --node N equals N's state.json, for all $N consumers"
like "$(pbf_fleet providers API_URL)" "API_URL +http://10\.9\.9\.9:1100 +us-east-1/prov/api seq=[0-9]+ public" "providers: text"

# --- paused, failing: converged exits 1 naming them
provbus-consumer -c "$T/c05.json" pause >/dev/null; ok $? "c05 paused"
touch "$T/c07.fail"
sed -i 's/1100/1200/' "$T/prov/services.d/api.json"
provbus-publish -c "$T/prov.json" provides >/dev/null; ok $? "prov provides a new API_URL"
two_behind() { pbf_fleet converged API_URL >"$T/conv.out" 2>&1; [ "$(grep -c '^c[0-9]*: ' "$T/conv.out")" = 2 ] && grep -q '^c07: last run failed' "$T/conv.out"; }
pbf_wait 40 two_behind; ok $? "converged lists exactly two consumers"
pbf_fleet converged API_URL >"$T/conv.out" 2>&1; rc=$?
is "$rc" 1 "converged: exit 1"
like "$(cat "$T/conv.out")" "c05: paused" "names the paused one"
like "$(cat "$T/conv.out")" "c07: last run failed" "names the failing one"
like "$(cat "$T/conv.out")" "not converged: 2 of $N" "and counts"
is "$(pbf_fleet converged API_URL --json | jq -sc '[.[] | select(.converged | not) | .node + ":" + .reason]')" '["c05:paused","c07:last run failed"]' "converged --json"
is "$(pbf_fleet nodes --json | jq -r 'select(.node == "c05") | .paused')" true "nodes: c05 paused"
is "$(pbf_fleet nodes --json | jq -r 'select(.node == "c07") | .last_run.status')" failed "nodes: c07's last run failed"
provbus-consumer -c "$T/c05.json" resume >/dev/null
rm "$T/c07.fail"
provbus-consumer -c "$T/c07.json" provision-now >/dev/null
pbf_fleet converged --wait 30 >/dev/null 2>&1; is $? 0 "resumed and fixed: converged (all keys) exits 0"

# --- not connected: a consumer cut off from the broker cannot say so; its
# presence (every 5 s for c18) stops coming. SIGSTOP: its connections stay
# open, it sends nothing; it is alive until its lease (3 x 5 s) ends.
kill -STOP "${PID[c18]}"
sed -i 's/1200/1300/' "$T/prov/services.d/api.json"
provbus-publish -c "$T/prov.json" provides >/dev/null; ok $? "prov provides another API_URL"
c18_nc() { pbf_fleet converged API_URL >"$T/conv.out" 2>&1; grep -q '^c18: not connected' "$T/conv.out"; }
pbf_wait 15 c18_nc; ok $? "no presence for 1.5 of its intervals: c18 not connected"
like "$(pbf_fleet nodes 2>/dev/null | grep '^c18 ')" "c18 +us-east-1 +alive" "while its lease still runs (alive)"
kill -CONT "${PID[c18]}"
pbf_fleet converged --wait 30 >/dev/null 2>&1; is $? 0 "continued: converged again"

# --- stale and stopped
kill -KILL "${PID[c03]}"
pb_stop_pid "${PID[c04]}"
state_of() { pbf_fleet nodes --json 2>/dev/null | jq -r "select(.node == \"$1\") | .state"; }
is "$(state_of c04)" stopped "a consumer stopped cleanly: stopped"
is_stale() { [ "$(state_of c03)" = stale ]; }
pbf_wait 20 is_stale; ok $? "a consumer killed with -9: stale once its lease (3 x 2 s) ran out"
pbf_fleet converged >/dev/null 2>&1; is $? 0 "stale and stopped consumers do not hold converged"

# --- no node reports as another
body='{"v":1,"id":"7e1b2c3d-0000-4000-8000-000000000001","kind":"presence","federation":"'$F'","region":"us-east-1","node":"c01","ts":"2030-01-01T00:00:00.000Z","state":"stopped","paused":true,"keys":[],"regions":["us-east-1"],"ttl_s":600}'
pbtest-amqp "$(pbf_url c02)" publish "provbus.$F" us-east-1.presence.c01 --body "$body" --confirm >/dev/null 2>&1
is $? 77 "c02 publishing as c01: refused by its topic permission (77)"
pbtest-amqp "$URL" publish "provbus.$F" us-east-1.presence.c01 --body "$body" --confirm >/dev/null 2>&1
ok $? "a presence for c01 published by another user (no user_id) reaches the stream"
pbf_fleet nodes >"$T/nodes.out" 2>"$T/nodes.err"
like "$(grep '^c01 ' "$T/nodes.out")" "c01 +us-east-1 +alive" "it is ignored: c01 is still alive"
like "$(cat "$T/nodes.err")" "ignored [1-9][0-9]* events and reports whose user_id is not their node" "and counted"

# --- escaping: a value with control characters
pbtest-amqp "$(pbf_url prov)" publish "provbus.$F" us-east-1.provides.EVIL_KEY --confirm \
	--body '{"v":1,"id":"7e1b2c3d-0000-4000-8000-000000000002","kind":"provides","federation":"'$F'","region":"us-east-1","node":"prov","service":"x","key":"EVIL_KEY","value":"a\u001b[31mred","public":false,"seq":99,"ttl_s":0,"ts":"2026-01-01T00:00:00.000Z"}' \
	--user-id prov >/dev/null 2>&1
pbf_fleet providers EVIL_KEY >"$T/evil.out" 2>&1
if grep -q $'\x1b' "$T/evil.out"; then ok 1 "providers: no raw ESC"; else ok 0 "providers: no raw ESC"; fi

# --- watch: reports and events as they happen
pb_bg watch provbus-fleet --url "$(PBF_OBS_URL)" --federation "$F" watch
WPID=$BG_PID
watch_has() { grep -qE "$1" "$T/watch.log"; }
pbf_wait 20 watch_has ' presence +c[0-9]+ +state=running'; ok $? "watch: presence reports as they arrive"
provbus-consumer -c "$T/c06.json" provision-now >/dev/null
pbf_wait 20 watch_has ' run +c06 +run=[0-9]+ reason=manual status=ok'; ok $? "watch: c06's manual run"
sed -i 's/1200/1300/' "$T/prov/services.d/api.json"
provbus-publish -c "$T/prov.json" provides >/dev/null 2>&1
pbf_wait 20 watch_has ' provides +prov +API_URL=http://10\.9\.9\.9:1300 service=api'; ok $? "watch: the announcement"
pb_stop_pid "$WPID"

# --- usage
cli_usage64 provbus-fleet "a verb is needed" "no verb"
cli_usage64 provbus-fleet "unknown verb 'bogus'" "an unknown verb" bogus
cli_usage64 provbus-fleet "--wait goes with converged only" "--wait with nodes" nodes --wait 3
provbus-fleet --url "$URL" --federation nope nodes >/dev/null 2>"$T/nope.err"
is $? 78 "a federation without streams: exit 78"
like "$(cat "$T/nope.err")" "stream provbus\.nope\.fleet not found" "names the stream (nodes reads only the fleet stream)"
provbus-fleet --url "$URL" --federation nope providers >/dev/null 2>"$T/nope.err"
is $? 78 "providers: exit 78 too"
like "$(cat "$T/nope.err")" "stream provbus\.nope\.history not found" "naming the history stream"
pbf_fleet --version >/dev/null; ok $? "--version"
# a password given in --url (tests, a lab broker) is blanked from argv at
# once, as provbus-schema does: a listener that never answers the AMQP
# handshake keeps the program running while its command line is read
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(20)' >"$T/silent.port" &
silent=$!; _pb_pids+=("$silent")
wait_for 10 test -s "$T/silent.port"
provbus-fleet --url "amqp://guest:s3cret-$$@127.0.0.1:$(cat "$T/silent.port")/" --federation "$F" nodes >/dev/null 2>&1 &
fp=$!
wait_for 5 grep -q 'xxxx' "/proc/$fp/cmdline"
like "$(tr '\0' ' ' <"/proc/$fp/cmdline" 2>/dev/null)" "--url amqp://guest:x+@127" "a password in --url is blanked from the process's command line"
kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null; pb_stop_pid "$silent"
pb_done
