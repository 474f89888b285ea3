#!/usr/bin/env bash
# t-security-perms: the broker permissions of `provbus-schema export`
# (docs/protocol.md §2), loaded with `rabbitmqctl import_definitions`, confine each
# node: node A of federation fa, region r1
#   - can announce in r1 (and run its consumer: declare, bind and read its
#     own queue, read the history stream);
#   - cannot announce for region r2 (topic permission): provbus-publish
#     exits 77 naming the exchange and routing key, nothing spooled;
#   - cannot announce in federation fb: exit 77, nothing spooled;
#   - cannot read, bind or delete node B's queue, nor publish to it (403).
# The raw checks use pbtest-amqp (plain rabbitmq-c), so they test the
# broker's rules, not the publisher's own.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup sec-perms
A=sa-$$ B=sb-$$ C=sc-$$
V=$(urlenc "$VHOST")
cat >"$T/topology.json" <<EOT
{"vhost": "$VHOST", "history_max_age": "7D",
 "federations": {"fa": {"regions": ["r1", "r2"]}, "fb": {"regions": ["r1"]}},
 "nodes": [{"name": "$A", "federation": "fa", "region": "r1"},
           {"name": "$B", "federation": "fa", "region": "r1"},
           {"name": "$C", "federation": "fb", "region": "r1"}]}
EOT
rl_forget_user "$A"; rl_forget_user "$B"; rl_forget_user "$C"
pb_observer_creds "$T/creds"	# the broker-wide observer keeps its password (lib.sh)
provbus-schema export --credentials "$T/creds" "$T/topology.json" >"$T/defs.json" 2>"$T/export.err"
ok $? "provbus-schema export --credentials"
jq -e '.users | length == 4' "$T/defs.json" >/dev/null
ok $? "the export holds a user per node and provbus-observer"
pb_ctl import_definitions "$T/defs.json" >"$T/import.log" 2>&1
ok $? "rabbitmqctl import_definitions accepts it"
# the import is asynchronous: wait for the users and their topic permissions
wait_for 30 bash -c "'$PB_BROKER' ctl '$PB_BROKER_DIR' list_topic_permissions -p '$VHOST' 2>/dev/null | grep -q '$C'"
ok $? "users and topic permissions are in place"
rl_apply
cp "$T/creds/$A" "$T/pwA"
# the passwords are base64: percent-encoded in the raw URLs below
PWA=$(jq -rn --arg s "$(cat "$T/creds/$A")" '$s|@uri') PWB=$(jq -rn --arg s "$(cat "$T/creds/$B")" '$s|@uri')
URLA="amqp://$A@127.0.0.1:$PORT/$V"
RAWA="amqp://$A:$PWA@127.0.0.1:$PORT/$V"
RAWB="amqp://$B:$PWB@127.0.0.1:$PORT/$V"
# node A as a publisher: region r1 (its own), with a password file
pubcfg() { # pubcfg NAME REGION
	rl_publisher "$1" "$2" "PERM_KEY" "[\"$URLA\"]"
	sed -i "s|\"node\": \"$1\"|\"node\": \"$A\"|; s|\"heartbeat_s\"|\"password_file\": \"$T/pwA\", \"heartbeat_s\"|" "$T/$1.json"
	sed -i "s|\"federation\": \"fed\"|\"federation\": \"fa\"|" "$T/$1.json"
}
spooled() { provbus-publish -c "$T/$1.json" --dry-run flush 2>/dev/null | grep -c '"id"'; }
pbtest-amqp "$URL" queue rl-check --durable --bind provbus.fa:'#' >/dev/null
pbtest-amqp "$URL" queue rl-check-b --durable --bind provbus.fb:'#' >/dev/null

pubcfg own r1
provbus-publish -c "$T/own.json" provides >"$T/own.log" 2>&1
is "$?" 0 "node A announces in its own region r1: exit 0"
is "$(pbtest-amqp "$URL" count rl-check)" 1 "... delivered"

# --- another region
pubcfg r2 r2
provbus-publish -c "$T/r2.json" provides >"$T/r2.log" 2>&1
is "$?" 77 "node A announcing for region r2: exit 77"
like "$(cat "$T/r2.log")" "provbus\.fa" "... the message names the exchange"
like "$(cat "$T/r2.log")" "r2\.provides\.PERM_KEY" "... and the routing key"
is "$(spooled r2)" 0 "... nothing spooled"
is "$(pbtest-amqp "$URL" count rl-check)" 1 "... nothing delivered"

# --- another federation (the manifest names fb)
pubcfg fedb r1
sed -i 's|{"id": "svc"|{"id": "svc", "federation": "fb"|' "$T/fedb/services.d/svc.json"
provbus-publish -c "$T/fedb.json" provides >"$T/fedb.log" 2>&1
is "$?" 77 "node A announcing in federation fb: exit 77"
like "$(cat "$T/fedb.log")" "provbus\.fb" "... the message names exchange provbus.fb"
is "$(spooled fedb)" 0 "... nothing spooled"
is "$(pbtest-amqp "$URL" count rl-check-b)" 0 "... nothing delivered"

# --- the same at the wire, without provbus-publish's help
body=$(rl_event "$(cat /proc/sys/kernel/random/uuid)" provides fa r2 "$A" svc PERM_KEY x 99)
pbtest-amqp "$RAWA" publish provbus.fa r2.provides.PERM_KEY --body "$body" --confirm >"$T/raw1.log" 2>&1
is "$?" 77 "raw publish by A to provbus.fa with r2.provides.*: 403 (exit 77)"
pbtest-amqp "$RAWA" publish provbus.fb r1.provides.PERM_KEY --body "$body" --confirm >"$T/raw2.log" 2>&1
is "$?" 77 "raw publish by A to provbus.fb: 403"
pbtest-amqp "$RAWA" publish "" "provbus.fa.node.$B" --body "$body" --confirm >"$T/raw3.log" 2>&1
is "$?" 77 "raw publish by A straight into B's queue: 403"

# --- node B's queue
QB=provbus.fa.node.$B
pbtest-amqp "$URL" queue "$QB" --durable --type quorum --dlx provbus.dlx --bind provbus.fa:r1.provides.PERM_KEY >/dev/null
pbtest-amqp "$URL" publish "" "$QB" --body "$body" --persistent --confirm >/dev/null
pbtest-amqp "$RAWA" get "$QB" --count 1 --timeout-ms 2000 >"$T/getb.log" 2>&1
is "$?" 77 "A reading B's queue: 403 (exit 77)"
pbtest-amqp "$RAWA" queue "$QB" --durable --type quorum --dlx provbus.dlx --bind provbus.fa:'#' >"$T/bindb.log" 2>&1
is "$?" 77 "A binding B's queue: 403"
pbtest-amqp "$RAWA" delete-queue "$QB" >"$T/delb.log" 2>&1
is "$?" 77 "A deleting B's queue: 403"
pbtest-amqp "$RAWA" queue "provbus.fa.node.evil-$$" --durable >"$T/evil.log" 2>&1
is "$?" 77 "A declaring a queue that is not its own: 403"
is "$(pbtest-amqp "$URL" count "$QB")" 1 "B's message is still there"
pbtest-amqp "$RAWB" get "$QB" --count 1 --timeout-ms 2000 >"$T/getbb.log" 2>&1
is "$?" 0 "B itself can read its queue"

# --- node A's consumer, with only its own permissions, works
if [ -x "$PB_BIN/provbus-consumer" ]; then
	RL_FED=fa rl_consumer ca r1 "PERM_KEY" "" "[\"$URLA\"]"
	sed -i "s|\"node\": \"ca\"|\"node\": \"$A\"|; s|\"heartbeat_s\"|\"password_file\": \"$T/pwA\", \"heartbeat_s\"|" "$T/ca.json"
	rl_consumer_start ca
	rl_wait_connected ca 30
	ok $? "A's consumer connects, declares and binds its queue with A's permissions"
	[ "$(rl_json_get "$(rl_status "$T/ca.json")" .connected)" = true ] || sed 's/^/#   /' "$T/ca.log" | tail -n 5
	rl_set_gen own 2
	provbus-publish -c "$T/own.json" provides >/dev/null 2>&1
	wait_for 20 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$T/ca/state/audit.db' \"SELECT count(*) FROM events WHERE verdict='applied' AND value LIKE '%/2'\")\" -ge 1 ]"
	ok $? "... and receives A's own announcement"
	rl_consumer_stop ca
	is "$?" 0 "... and stops cleanly"
else
	ok 1 "provbus-consumer not built"
fi
pb_done
