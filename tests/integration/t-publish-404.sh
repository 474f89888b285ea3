#!/usr/bin/env bash
# provbus-publish has no passive check of its exchange (docs/protocol.md): an
# exchange deleted after a good run is found by the broker's 404 on the
# publish itself: exit 78 with "exchange provbus.F not found: run
# provbus-schema apply", the event stays spooled; once the topology is
# applied again, flush sends it (exit 0) and it arrives once.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup publish404

F=pnf R=us-east-1 NODE=nf-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/node.json" "$NODE" "$F" "$R"
C=$T/node.json SD=$T/$NODE/services.d ST=$T/$NODE/state
A() { pbtest-amqp "$URL" "$@"; }
cat >"$SD/web.json" <<'EOT'
{"id": "web", "environment": {"PORT": 80}, "provides": {"NF_URL": "http://{HOST}:{PORT}"}}
EOT
A queue nfcap --bind "provbus.$F:#" >/dev/null; ok $? "capture queue bound"

provbus-publish -c "$C" provides >/dev/null 2>"$T/err"; is $? 0 "first run: exit 0"
is "$(A count nfcap)" 1 "its event arrived"

A delete-exchange "provbus.$F" >/dev/null; ok $? "exchange provbus.$F deleted"
A exchange-exists "provbus.$F" >/dev/null 2>&1; isnt_rc=$?
[ "$isnt_rc" -ne 0 ]; ok $? "and gone"
sed -i 's/"PORT": 80/"PORT": 81/' "$SD/web.json"
provbus-publish -c "$C" provides >/dev/null 2>"$T/err"; rc=$?
is "$rc" 78 "publish to the deleted exchange: exit 78"
like "$(cat "$T/err")" "exchange provbus\.$F not found: run provbus-schema apply" \
	"the 404 on publish names the exchange and says what to do"
is "$(sqlite3 "$ST/outbox.db" 'SELECT count(*) FROM outbox')" 1 "the event stays spooled"

pb_apply >/dev/null; ok $? "topology applied again"
A queue nfcap --bind "provbus.$F:#" >/dev/null
provbus-publish -c "$C" flush >/dev/null 2>"$T/err"; is $? 0 "flush: exit 0"
is "$(sqlite3 "$ST/outbox.db" 'SELECT count(*) FROM outbox')" 0 "the outbox is empty"
A get nfcap --count 2 --timeout-ms 2000 >"$T/got"
is "$(grep -c ':81' "$T/got")" 1 "the spooled event arrived once, with the new value"
pb_done
