#!/usr/bin/env bash
# provbus-publish and the broker's topic permissions: a node user allowed
# only ^us-east-1\.(provides|retire)\. on provbus.F, configured in region
# eu-west-1, gets 403: exit 77 naming the exchange and the routing key, and
# nothing spooled; events it may publish (spooled earlier, in its own
# region) still go through in the same run. The password comes from a
# password_file (mode 0600), never from argv or the URL.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubperm

F=ppf NODE=pp-01
USER_NAME=pbpub$$	# users are broker-wide: unique per run
cleanup_perm() {
	pb_ctl delete_user "$USER_NAME" >/dev/null 2>&1
	_pb_cleanup
}
trap cleanup_perm EXIT

pb_topology "$F" us-east-1 eu-west-1
pb_apply >/dev/null; ok $? "topology applied"
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null

# the user, as provbus-schema export describes node users: write on the
# exchange, topic permission on its region only (rabbitmqctl is the
# broker's own CLI; the test may give it the password)
PASS=pw-$$-$RANDOM
pb_ctl add_user "$USER_NAME" "$PASS" >/dev/null; ok $? "user $USER_NAME created"
pb_ctl set_permissions -p "$VHOST" "$USER_NAME" '^$' "^provbus\\.$F\$" '^$' >/dev/null
pb_ctl set_topic_permissions -p "$VHOST" "$USER_NAME" "provbus.$F" '^us-east-1\.(provides|retire)\.' '^$' >/dev/null
ok $? "topic permissions: ^us-east-1\\.(provides|retire)\\. only"
printf '%s\n' "$PASS" >"$T/password"
chmod 600 "$T/password"
NODE_URL="amqp://$USER_NAME@127.0.0.1:$PORT/$(urlenc "$VHOST")"

config() { # config FILE REGION BROKER-URL
	pb_node_config "$1" "$NODE" "$F" "$2"
	sed -i "s#\"urls\": \[\"[^\"]*\"\]#\"urls\": [\"$3\"], \"password_file\": \"$T/password\"#" "$1"
}
config "$T/eu.json" eu-west-1 "$NODE_URL"
config "$T/us.json" us-east-1 "$NODE_URL"
config "$T/us-down.json" us-east-1 "amqp://$USER_NAME@127.0.0.1:1/x"
SD=$T/$NODE/services.d DB=$T/$NODE/state/outbox.db
cat >"$SD/api.json" <<'EOT'
{"id": "api", "environment": {"PORT": 1100},
 "provides": {"API_URL": "http://{HOST}:{PORT}", "API_HOST": "{HOST}", "API_PORT": "{PORT}"}}
EOT

# --- its own region: allowed
provbus-publish -c "$T/us.json" provides 2>"$T/err"; rc=$?
is $rc 0 "us-east-1 node with this user: 0"
is "$(A get cap --count 3 --timeout-ms 2000 | wc -l)" 3 "3 events delivered"

# --- another region: 403
provbus-publish -c "$T/eu.json" provides 2>"$T/err"; rc=$?
is $rc 77 "eu-west-1 node with a us-east-1 user: 77"
like "$(cat "$T/err")" "exchange provbus\\.$F" "the message names the exchange"
like "$(cat "$T/err")" "routing key eu-west-1\\.provides\\.API_[A-Z]+" "the message names the routing key"
like "$(cat "$T/err")" "not spooled" "the message says nothing was spooled"
is "$(sqlite3 "$DB" 'SELECT count(*) FROM outbox')" 0 "the outbox is empty: nothing spooled"
is "$(A count cap)" 0 "nothing delivered"
grep -q -- "$PASS" "$T/err"; is $? 1 "the password appears in no message"

# --- allowed events spooled earlier still go, refused ones are dropped
provbus-publish -c "$T/us-down.json" provides 2>/dev/null; is $? 75 "broker away: 3 allowed events spooled"
sqlite3 "$DB" 'SELECT id FROM outbox ORDER BY id' >"$T/spooled"
provbus-publish -c "$T/eu.json" provides 2>"$T/err"; rc=$?
is $rc 77 "then a refused run: 77"
# (the 403 closes the channel before the confirms of the events published
# just before it arrive: those are sent again on a new channel, so they
# may come twice; consumers drop the second copy by id)
A get cap --count 10 --timeout-ms 2000 >"$T/got.jsonl"
is "$(jq -r .properties.message_id "$T/got.jsonl" | sort -u)" "$(cat "$T/spooled")" \
	"the spooled us-east-1 events were delivered in the same run"
is "$(jq -r .routing_key "$T/got.jsonl" | grep -vc '^us-east-1\.')" 0 "no eu-west-1 event was delivered"
is "$(sqlite3 "$DB" 'SELECT count(*) FROM outbox')" 0 "and nothing is left in the outbox"

# --- retire in the wrong region: refused too
provbus-publish -c "$T/eu.json" retire api 2>"$T/err"; rc=$?
is $rc 77 "retire refused: 77"
like "$(cat "$T/err")" "routing key eu-west-1\\.retire\\." "the message names the retire routing key"

pb_done
