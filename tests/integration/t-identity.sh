#!/usr/bin/env bash
# t-identity: broker identity of docs/protocol.md, against a real broker.
#   - `provbus-schema export` wants --credentials DIR or --no-users (64);
#   - --credentials makes one password file per user (0600, never
#     overwritten) and the export is the same, byte for byte, every time;
#   - imported with rabbitmqctl import_definitions, a node publishes with
#     its password file; imported again, and after a node was added to
#     the topology, the old nodes still log in;
#   - the publisher's user_id is its login; a user_id that is not the
#     connection's user is refused by the broker;
#   - a consumer with verify_sender (the default) dead-letters, as
#     invalid with "sender U is not node N", an event whose body names
#     another node, and never applies it; the same for a message a node
#     put into provbus.dlx and an operator shovelled back to a node queue;
#   - a node cannot report as another node (topic permission);
#   - provbus-observer reads the streams and nothing else;
#   - a wrong password, a missing password file or a directory: exit 78,
#     the events spooled.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup identity
P=idp-$$ Q=idq-$$ CN=idc-$$ N=idn-$$ F=idf
V=$(urlenc "$VHOST")
CR=$T/creds
for u in "$P" "$Q" "$CN" "$N"; do rl_forget_user "$u"; done
pb_observer_creds "$CR"	# the broker-wide observer keeps its password (lib.sh)
topo() { # topo NODE...: $T/topology.json with those nodes (all in r1)
	local nodes="" n
	for n in "$@"; do nodes="$nodes${nodes:+, }{\"name\": \"$n\", \"federation\": \"$F\", \"region\": \"r1\"}"; done
	cat >"$T/topology.json" <<EOT
{"vhost": "$VHOST", "history_max_age": "7D", "fleet_max_age": "1D",
 "federations": {"$F": {"regions": ["r1", "r2"]}},
 "nodes": [$nodes]}
EOT
}
import() { # import FILE: rabbitmqctl import_definitions, waits for user $1's topic permission
	pb_ctl import_definitions "$1" >"$T/import.log" 2>&1 || return 1
	wait_for 30 bash -c "'$PB_BROKER' ctl '$PB_BROKER_DIR' list_topic_permissions -p '$VHOST' 2>/dev/null | grep -q '^$2\b'"
}
topo "$P" "$Q" "$CN"

# --- export: the options
cli_usage64 provbus-schema "export needs --credentials DIR .* or --no-users" \
	"plain export" export "$T/topology.json"
provbus-schema export --no-users "$T/topology.json" >"$T/nousers.json"
ok $? "export --no-users"
is "$(jq -c '[(.users | length), (.permissions | length), (.topic_permissions | length)]' "$T/nousers.json")" \
	"[0,0,0]" "--no-users: no users, no permissions"
provbus-schema export --credentials "$CR" "$T/topology.json" >"$T/defs1.json"
ok $? "export --credentials $CR"
is "$(stat -c %a "$CR/$P")" 600 "a node's password file is mode 0600"
is "$(head -n1 "$CR/$P" | base64 -d 2>/dev/null | wc -c)" 32 "it holds 32 random bytes in base64"
is "$(cat "$CR/provbus-observer")" "$PB_OBSERVER_PW" "provbus-observer's password file is kept as it was"
PWP=$(cat "$CR/$P")
provbus-schema export --credentials "$CR" "$T/topology.json" >"$T/defs2.json"
cmp -s "$T/defs1.json" "$T/defs2.json"; ok $? "a second export is byte for byte the same"
is "$(cat "$CR/$P")" "$PWP" "the password file is never overwritten"
is "$(jq -r --arg u "$P" '.users[] | select(.name == $u) | .hashing_algorithm' "$T/defs1.json")" \
	rabbit_password_hashing_sha256 "the hash is rabbit_password_hashing_sha256"
h=$(jq -r --arg u "$P" '.users[] | select(.name == $u) | .password_hash' "$T/defs1.json" | base64 -d | od -An -tx1 | tr -d ' \n')
# shellcheck disable=SC2059
want=$( { printf "$(printf '%s' "${h:0:8}" | sed 's/../\\x&/g')"; printf '%s' "$PWP"; } | sha256sum | cut -c1-64)
is "${h:8}" "$want" "the hash is SHA-256(salt ++ password) behind a 4-byte salt"
is "$(jq -r --arg u "$P" '.topic_permissions[] | select(.user == $u) | .write' "$T/defs1.json")" \
	"^r1\\.((provides|retire)\\.[A-Z_][A-Z0-9_]{0,127}|(presence|run)\\.$P)\$" \
	"topic permission: its own region's events and its own node's reports"
is "$(jq -c '[.policies[] | [.name, .definition["max-age"]]]' "$T/defs1.json")" \
	'[["provbus-history","7D"],["provbus-fleet","1D"]]' "the retention policies are in the export"

# --- import, apply, publish with the password file
import "$T/defs1.json" "$CN"; ok $? "rabbitmqctl import_definitions accepts it"
rl_apply
pbtest-amqp "$URL" queue id-check --durable --bind "provbus.$F:#" >/dev/null
node() { # node NAME [PASSWORD-FILE]: a publisher config $T/NAME.json logging in as NAME
	rl_publisher "$1" r1 "ID_KEY" "[\"amqp://$1@127.0.0.1:$PORT/$V\"]"
	sed -i "s|\"federation\": \"fed\"|\"federation\": \"$F\"|; s|\"heartbeat_s\"|\"password_file\": \"${2:-$CR/$1}\", \"heartbeat_s\"|" "$T/$1.json"
}
node "$P"
provbus-publish -c "$T/$P.json" provides >"$T/p1.log" 2>&1
is $? 0 "the node publishes with its password file"
msg=$(pbtest-amqp "$URL" get id-check --count 1)
is "$(jq -r .properties.user_id <<<"$msg")" "$P" "the event's user_id is the node's login"

import "$T/defs1.json" "$CN"; ok $? "the same export imported again"
rl_set_gen "$P" 1
provbus-publish -c "$T/$P.json" provides >"$T/p2.log" 2>&1
is $? 0 "... the node still logs in"

topo "$P" "$Q" "$CN" "$N"
provbus-schema export --credentials "$CR" "$T/topology.json" >"$T/defs3.json"
ok $? "a node added to the topology: export again"
is "$(cat "$CR/$P")" "$PWP" "... the old nodes' password files are untouched"
import "$T/defs3.json" "$N"; ok $? "... imported"
rl_set_gen "$P" 2
provbus-publish -c "$T/$P.json" provides >"$T/p3.log" 2>&1
is $? 0 "... the old node still publishes"
node "$N"
provbus-publish -c "$T/$N.json" provides >"$T/n1.log" 2>&1
is $? 0 "... and the new one too"
pbtest-amqp "$URL" purge id-check >/dev/null

# --- a node cannot speak for another
pwurl() { jq -rn --arg s "$(cat "$CR/$1")" '$s|@uri'; } # a password file's password, for a URL
RAWQ="amqp://$Q:$(pwurl "$Q")@127.0.0.1:$PORT/$V"
ev_as() { rl_event "$(cat /proc/sys/kernel/random/uuid)" provides "$F" r1 "$1" svc ID_KEY "$2" "$3"; }
pbtest-amqp "$RAWQ" publish "provbus.$F" r1.provides.ID_KEY --body "$(ev_as "$P" http://forged 1)" \
	--user-id "$P" --confirm >/dev/null 2>"$T/forge-uid.err"
rc=$?
[ $rc -ne 0 ]; ok $? "a user_id that is not the connection's user is refused by the broker (exit $rc)"
like "$(cat "$T/forge-uid.err")" "user_id|PRECONDITION" "... the broker says why"
is "$(pbtest-amqp "$URL" count id-check)" 0 "... nothing delivered"
pbtest-amqp "$RAWQ" publish "provbus.$F" "r1.presence.$P" --body '{}' --confirm >/dev/null 2>&1
is $? 77 "a node reporting as another node: 403"
pbtest-amqp "$RAWQ" publish "provbus.$F" "r2.provides.ID_KEY" --body '{}' --confirm >/dev/null 2>&1
is $? 77 "a node announcing for another region: 403"

# --- the consumer, verify_sender on (the default), with its own user
RL_FED=$F RL_VERIFY_SENDER=true rl_consumer "$CN" r1 "ID_KEY" "" "[\"amqp://$CN@127.0.0.1:$PORT/$V\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$CR/$CN\", \"heartbeat_s\"|" "$T/$CN.json"
sed -i '/"verify_sender"/d' "$T/$CN.json"
DB=$T/$CN/state/audit.db
pb_bg consumer provbus-consumer -c "$T/$CN.json" -f run
CPID=$BG_PID
wait_for 30 rl_connected "$T/$CN.json"; ok $? "the consumer logs in with its own user"
rl_set_gen "$P" 3
provbus-publish -c "$T/$P.json" provides >"$T/p4.log" 2>&1
rows_ge() { [ "$(rl_count_rows "$DB" "$1")" -ge "$2" ]; }
dead_ge() { [ "$(pbtest-amqp "$URL" count provbus.dead)" -ge "$1" ]; }
state_value() { jq -r --arg n "$P" '.providers[] | select(.key == "ID_KEY" and .node == $n) | .value' "$T/$CN/state/state.json" 2>/dev/null; }
wait_for 20 rows_ge "verdict='applied' AND value='http://$P/ID_KEY/3'" 1
is "$(rl_count_rows "$DB" "verdict='applied' AND value='http://$P/ID_KEY/3'")" 1 "a node's own event is applied"
# Q announces with its own login, in P's name
pbtest-amqp "$RAWQ" publish "provbus.$F" r1.provides.ID_KEY --body "$(ev_as "$P" http://forged-by-q 1000000)" \
	--user-id "$Q" --content-type application/json --confirm >/dev/null
ok $? "node Q publishes an event naming node P, with its own user_id (the broker cannot tell)"
wait_for 20 rows_ge "verdict='invalid'" 1
is "$(rl_sql "$DB" "SELECT detail FROM events WHERE verdict='invalid'")" "sender $Q is not node $P" \
	"the consumer: invalid, sender $Q is not node $P"
is "$(rl_count_rows "$DB" "value='http://forged-by-q' AND verdict <> 'invalid'")" 0 "... never applied"
state_is() { [ "$(state_value)" = "$1" ]; }
wait_for 10 state_is "http://$P/ID_KEY/3"
is "$(state_value)" "http://$P/ID_KEY/3" "... the value is still P's own"
wait_for 10 dead_ge 1
is "$(pbtest-amqp "$URL" count provbus.dead)" 1 "... and it was dead-lettered to provbus.dead"
pbtest-amqp "$URL" purge provbus.dead >/dev/null
# an operator moves dead letters back to provbus.F with their routing key,
# as a shovel does: with a user tagged impersonator, so that each message
# keeps its user_id (RabbitMQ refuses a foreign user_id from anyone else)
OP=idop-$$ OPPW=op-$RANDOM$RANDOM
rl_forget_user "$OP"
pb_ctl add_user "$OP" "$OPPW" >/dev/null && pb_ctl set_user_tags "$OP" impersonator >/dev/null &&
	pb_ctl set_permissions -p "$VHOST" "$OP" '^$' '^provbus\.' '^provbus\.dead$' >/dev/null
ok $? "an operator user tagged impersonator, for shovelling"
RAWOP="amqp://$OP:$OPPW@127.0.0.1:$PORT/$V"
shovel_one() { # moves one message from provbus.dead back to provbus.F, user_id kept
	local m uid
	m=$(pbtest-amqp "$RAWOP" get provbus.dead --count 1) || return 1
	uid=$(jq -r '.properties.user_id // empty' <<<"$m")
	pbtest-amqp "$RAWOP" publish "provbus.$F" "$(jq -r .routing_key <<<"$m")" --body "$(jq -r .body <<<"$m")" \
		--content-type application/json ${uid:+--user-id "$uid"} --confirm >/dev/null
}
# sent by Q straight into provbus.dlx (a fanout: no topic permission
# applies), once without user_id, once with its own
pbtest-amqp "$RAWQ" publish provbus.dlx r1.provides.ID_KEY --body "$(ev_as "$P" http://via-dlx 2000000)" \
	--content-type application/json --confirm >/dev/null
ok $? "node Q can put a message into provbus.dlx (it needs write there for its queue)"
pbtest-amqp "$RAWQ" publish provbus.dlx r1.provides.ID_KEY --body "$(ev_as "$P" http://via-dlx-2 2000001)" \
	--content-type application/json --user-id "$Q" --confirm >/dev/null
wait_for 10 dead_ge 2
shovel_one && shovel_one
ok $? "the dead letters shovelled back to provbus.$F"
wait_for 20 rows_ge "verdict='invalid'" 3
is "$(rl_sql "$DB" "SELECT detail FROM events WHERE verdict='invalid' AND value='http://via-dlx'")" \
	"sender (none) is not node $P" "... invalid: sender (none) is not node $P"
is "$(rl_sql "$DB" "SELECT detail FROM events WHERE verdict='invalid' AND value='http://via-dlx-2'")" \
	"sender $Q is not node $P" "... invalid: sender $Q is not node $P"
is "$(rl_count_rows "$DB" "value LIKE 'http://via-dlx%' AND verdict <> 'invalid'")" 0 "... never applied"
is "$(state_value)" "http://$P/ID_KEY/3" "... the value is still P's own"
pb_stop_pid "$CPID"

# --- provbus-observer: the streams, nothing else
RAWO="amqp://provbus-observer:$(pwurl provbus-observer)@127.0.0.1:$PORT/$V"
pbtest-amqp "$RAWO" stream "provbus.$F.history" --offset first --count 1 --timeout-ms 5000 >"$T/obs.out" 2>&1
is $? 0 "provbus-observer reads the history stream"
pbtest-amqp "$RAWO" stream "provbus.$F.fleet" --offset first --count 0 --timeout-ms 1000 >/dev/null 2>&1
rc=$?; [ $rc -ne 77 ]; ok $? "provbus-observer may read the fleet stream (exit $rc, not 77)"
pbtest-amqp "$RAWO" get "provbus.$F.node.$CN" --count 1 --timeout-ms 1000 >/dev/null 2>&1
is $? 77 "provbus-observer cannot read a node queue"
pbtest-amqp "$RAWO" publish "provbus.$F" r1.provides.ID_KEY --body '{}' --confirm >/dev/null 2>&1
is $? 77 "provbus-observer cannot publish"

# --- login setups that cannot work: 78, spooled
node "$P" "$T/wrong-pw"; echo "not-the-password" >"$T/wrong-pw"; chmod 600 "$T/wrong-pw"
provbus-publish -c "$T/$P.json" provides >"$T/wrong.log" 2>&1
is $? 78 "a wrong password: exit 78"
like "$(cat "$T/wrong.log")" "refused: 403 ACCESS_REFUSED.*check that broker.password_file" "... naming what to fix"
like "$(cat "$T/wrong.log")" "spooled to" "... the events spooled"
grep -q "not-the-password" "$T/wrong.log"; is $? 1 "... the password is not shown"
node "$P" "$T/no-such-file"
provbus-publish -c "$T/$P.json" provides >"$T/missing.log" 2>&1
is $? 78 "a missing password file: exit 78"
like "$(cat "$T/missing.log")" "password file $T/no-such-file" "... naming it"
node "$P" "$T"
provbus-publish -c "$T/$P.json" provides >"$T/dir.log" 2>&1
is $? 78 "a password file that is a directory: exit 78"
like "$(cat "$T/dir.log")" "is a directory" "... saying so"
node "$P"
provbus-publish -c "$T/$P.json" flush >"$T/flush.log" 2>&1
is $? 0 "with the right password file, the spooled events are sent"
pb_done
