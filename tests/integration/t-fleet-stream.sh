#!/usr/bin/env bash
# provbus-fleet over RabbitMQ's stream protocol (docs/man/provbus-fleet.1,
# STREAM PROTOCOL), against a real broker with the rabbitmq_stream plugin
# (tests/run.sh's broker has it: PB_BROKER_STREAM_PORT): as the
# provbus-observer user of provbus-schema export (read on the two streams
# only), the answers of nodes --json, providers --json and converged are
# byte for byte those of --stream-port 0 (AMQP 0-9-1) over the same
# streams; a report whose user_id is not its node is ignored and counted
# on this path too; with the stream port closed the same answers come over
# AMQP 0-9-1, and one line on stderr says so; a user without read on the
# streams is refused (77); the cache resumes through the stream protocol
# from its offset (the message there checked by its SHA-256), and a
# stream deleted and declared again is read again whole.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup fleetstream
F=pbs
PBF_PRESENCE_S=3600	# the fleet stream stays still between two calls compared
. "$PB_ROOT/tests/data/fleet/lib-fleet.sh"

if [ -z "${PB_BROKER_STREAM_PORT:-}" ]; then
	pb_skip_all "the test broker has no rabbitmq_stream listener (pb-broker start --plugins rabbitmq_stream)"
fi
SP=$PB_BROKER_STREAM_PORT

pb_topology "$F" us-east-1 eu-west-1
pb_apply >/dev/null; ok $? "topology applied (history and fleet streams)"
pbf_users "$T/defs.json" prov:us-east-1 n0:us-east-1 c1:us-east-1 c2:us-east-1
ok $? "node users imported"
# the real provbus-observer: as provbus-schema export makes it (users are
# broker-wide: its password stays the one the other t-fleet* scripts,
# running meanwhile, log in with)
pb_observer_creds "$T/creds" &&
provbus-schema export --credentials "$T/creds" "$T/topology.json" >"$T/export.json" &&
	pb_ctl import_definitions "$T/export.json" >/dev/null
ok $? "provbus-schema export's provbus-observer imported"
OBS_URL="amqp://provbus-observer@127.0.0.1:$PORT/$(urlenc "$VHOST")"
ofleet() { provbus-fleet --url "$OBS_URL" --password-file "$T/creds/provbus-observer" --federation "$F" \
	--stream-port "$SP" "$@"; }

# the history: 3000 events of n0 (several chunks), then a provider and two
# consumers that report
pbtest-pubflood publish "$(pbf_url n0)" --federation "$F" --region us-east-1 --count 3000 \
	--keys API_URL,DB_URL,CACHE_URL --nodes 1 --node-prefix n --user-id n0 >"$T/flood.log" 2>&1
ok $? "3000 events of n0"
pbf_prov
provbus-publish -c "$T/prov.json" provides >/dev/null; ok $? "prov provides API_URL"
for n in c1 c2; do
	pbf_node "$n" us-east-1
	pb_bg "$n" provbus-consumer -c "$T/$n.json" run
done
# both: converged alone exits 0 as soon as every consumer seen so far
# ran, which c1 alone can satisfy before c2's first presence is out
conv() { ofleet --no-cache converged API_URL 2>/dev/null | grep -q '^converged: 2 of 2 '; }
pbf_wait 60 conv; ok $? "c1 and c2 converged (read over the stream protocol)"

# a presence for c1 published by guest (no user_id): ignored, counted
body='{"v":1,"id":"7e1b2c3d-0000-4000-8000-0000000000f1","kind":"presence","federation":"'$F'","region":"us-east-1","node":"c1","ts":"2030-01-01T00:00:00.000Z","state":"stopped","paused":true,"keys":[],"regions":["us-east-1"],"ttl_s":600}'
pbtest-amqp "$URL" publish "provbus.$F" us-east-1.presence.c1 --body "$body" --confirm >/dev/null 2>&1
ok $? "a presence for c1 published by another user reaches the fleet stream"

# --- the same answers over both protocols
verbs=("nodes --json" "providers --json" "converged" "converged --json" "converged API_URL DB_URL")
bad=0
for v in "${verbs[@]}"; do
	# shellcheck disable=SC2086
	s=$(ofleet --no-cache -v $v 2>"$T/s.err"); src=$?
	# shellcheck disable=SC2086
	a=$(ofleet --no-cache --stream-port 0 $v 2>"$T/a.err"); arc=$?
	if [ "$s" != "$a" ] || [ "$src" != "$arc" ] || [ -z "$s" ]; then
		bad=1; diag "$v: differs (exit $src vs $arc)"
		diff <(echo "$a") <(echo "$s") | head -5 | sed 's/^/# /'
	fi
	grep -q "over the stream protocol" "$T/s.err" || { bad=1; diag "$v: not read over the stream protocol: $(head -3 "$T/s.err")"; }
	if grep -q "stream protocol" "$T/a.err"; then bad=1; diag "$v --stream-port 0: $(cat "$T/a.err")"; fi
done
ok $bad "nodes --json, providers --json, converged (text, --json, keys): the same bytes and exit over the stream protocol and AMQP 0-9-1"
like "$(grep -h 'messages read from the window start' "$T/s.err" | head -1)" "history: 300[0-9] messages" "the whole history was read (3000 events and more)"

ofleet --no-cache nodes >"$T/nodes.out" 2>"$T/nodes.err"
like "$(grep '^c1 ' "$T/nodes.out")" "c1 +us-east-1 +alive" "the forged presence is ignored: c1 is still alive"
like "$(cat "$T/nodes.err")" "ignored 1 events and reports whose user_id is not their node" "and counted"

# --- the stream port closed: AMQP 0-9-1, and one line says so
closed=$SP
while (exec 3<>"/dev/tcp/127.0.0.1/$closed") 2>/dev/null; do closed=$((closed + 1)); done
fb=$(provbus-fleet --url "$OBS_URL" --password-file "$T/creds/provbus-observer" --federation "$F" \
	--no-cache --stream-port "$closed" nodes --json 2>"$T/fb.err")
is "$fb" "$(ofleet --no-cache --stream-port 0 nodes --json 2>/dev/null)" "stream port closed: the same nodes --json, over AMQP 0-9-1"
like "$(cat "$T/fb.err")" "stream protocol on 127\.0\.0\.1:$closed: .*refused.*: reading over AMQP 0-9-1" "and one line on stderr says so"
is "$(grep -c 'AMQP 0-9-1' "$T/fb.err")" 1 "once"

# --- no read permission: refused on this path too
pb_ctl add_user noread pw-noread >/dev/null 2>&1
pb_ctl set_permissions -p "$VHOST" noread '^$' '^$' '^$' >/dev/null
provbus-fleet --url "amqp://noread:pw-noread@127.0.0.1:$PORT/$(urlenc "$VHOST")" --federation "$F" \
	--stream-port "$SP" --no-cache nodes >/dev/null 2>"$T/noread.err"
is $? 77 "a user without read on the streams: exit 77"
like "$(cat "$T/noread.err")" "provbus\.$F\.(history|fleet): access refused: the broker user needs read" "names the stream and the permission"

# --- the cache, through the stream protocol
ofleet providers --json >/dev/null 2>&1	# fills the cache
pbtest-pubflood publish "$(pbf_url n0)" --federation "$F" --region us-east-1 --count 500 \
	--keys API_URL,DB_URL --nodes 1 --node-prefix n --user-id n0 --seq-base 100000 >>"$T/flood.log" 2>&1
warm=$(ofleet -v providers --json 2>"$T/warm.err")
cold=$(ofleet --no-cache --stream-port 0 providers --json 2>/dev/null)
is "$warm" "$cold" "from the cache + 500 new events: the same providers --json as a read of the whole window"
like "$(cat "$T/warm.err")" "history: 500 new messages read after the cached offset" "only the new events were read"
grep -q "over the stream protocol" "$T/warm.err"; ok $? "over the stream protocol"
# the stream deleted and declared again, shorter: the cached offset is past its end
pb_ctl delete_queue -p "$VHOST" "provbus.$F.history" >/dev/null
pb_apply >/dev/null
pbtest-pubflood publish "$(pbf_url n0)" --federation "$F" --region us-east-1 --count 20 \
	--keys API_URL --nodes 1 --node-prefix n --user-id n0 >>"$T/flood.log" 2>&1
warm=$(ofleet -v providers --json 2>"$T/warm2.err")
cold=$(ofleet --no-cache --stream-port 0 providers --json 2>/dev/null)
is "$warm" "$cold" "history declared again: the same providers --json as a read of the whole window"
like "$(cat "$T/warm2.err")" "beyond its end.*the cache is not used" "the cache was not used (offset beyond the new stream's end)"
cli_usage64 provbus-fleet "--stream-port 99999: want a port" "a bad --stream-port" --stream-port 99999 nodes
pb_done
