#!/usr/bin/env bash
# provbus-publish against a real broker: the events on the wire (every
# property and field of docs/protocol.md §4, captured from a queue bound to provbus.F
# and from the history stream), seq across runs, template expansion, --ttl,
# --dry-run, retire (from the manifest and from the outbox's record), a key
# dropped from a manifest, service selection, and the failures: unknown
# service id, missing exchange, bad manifests, missing config, usage.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup publish

F=pubf R=us-east-1 NODE=api-03
pb_topology "$F" "$R" eu-west-1
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/node.json" "$NODE" "$F" "$R"
C=$T/node.json SD=$T/$NODE/services.d ST=$T/$NODE/state
A() { pbtest-amqp "$URL" "$@"; }
P() { provbus-publish -c "$C" "$@"; }
# grab N FILE: the next N messages of the capture queue into FILE, then
# "LEFT" (the messages left over) on stdout: confirms came before exit, so
# the queue holds everything already.
grab() { A get cap --count "$1" --timeout-ms 2000 >"$2"; A count cap; }
A queue cap --bind "provbus.$F:#" >/dev/null; ok $? "capture queue bound to provbus.$F with #"
VERSION=$(cat "$PB_ROOT/VERSION")
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

# A 10-key manifest using every placeholder.
cat >"$SD/api.json" <<'EOT'
{"id": "api", "run_list": ["recipe[api]"],
 "environment": {"PORT": 1100, "ENV": "production", "POOL": "blue"},
 "provides": {
   "API_URL": "http://{HOST}:{PORT}",
   "API_HOST": "{HOST}",
   "API_PORT": "{PORT}",
   "API_NODE": "{NODE}",
   "API_REGION": "{REGION}",
   "API_FED": "{FEDERATION}",
   "API_ENV": "{ENV}-{POOL}",
   "API_HEALTH": "http://{HOST}:{PORT}/health",
   "API_LITERAL": "no placeholders here",
   "API_ID": "{FEDERATION}/{REGION}/{NODE}"},
 "local_port": 9999, "public": true}
EOT
cat >"$SD/web.json" <<'EOT'
{"id": "web", "local_port": 8080, "provides": {"WWW_URL": "http://{HOST}:{PORT}/mount"}}
EOT

# --- version, help, usage
is "$(provbus-publish --version)" "provbus-publish $VERSION" "--version"
out=$(provbus-publish --help); rc=$?
is $rc 0 "--help exits 0"
like "$out" "no manifest" "--help says a SERVICE_ID with no manifest is an error"
like "$out" "75 " "--help lists exit 75"
provbus-publish -c "$C" >/dev/null 2>&1; is $? 64 "no command: 64"
provbus-publish -c "$C" frob >/dev/null 2>&1; is $? 64 "unknown command: 64"
provbus-publish -c "$C" retire >/dev/null 2>&1; is $? 64 "retire without SERVICE_ID: 64"
provbus-publish -c "$C" --timeout x provides >/dev/null 2>&1; is $? 64 "--timeout x: 64"
provbus-publish -c "$C" --ttl -5 provides >/dev/null 2>&1; is $? 64 "--ttl -5: 64"
provbus-publish -c "$C" flush web >/dev/null 2>&1; is $? 64 "flush SERVICE_ID: 64"
# every usage error: exit 64, what is wrong, then the usage lines (the
# same shape as provbus-schema and provbus-audit)
cli_usage64 provbus-publish "unknown option --bogus" "unknown long option" -c "$C" --bogus provides
cli_usage64 provbus-publish "unknown option -x" "unknown short option after a long one" -c "$C" --dry-run -x provides
cli_usage64 provbus-publish "option --ttl needs an argument" "--ttl without its argument" -c "$C" provides --ttl
cli_usage64 provbus-publish "option --dry-run takes no argument" "--dry-run=1" -c "$C" --dry-run=1 provides
cli_usage64 provbus-publish "a verb is needed" "no verb" -c "$C" -v
cli_usage64 provbus-publish "unknown verb 'frob'" "unknown verb" -c "$C" frob
cli_usage64 provbus-publish "retire needs at least one SERVICE_ID" "retire alone" -c "$C" retire
cli_usage64 provbus-publish "flush takes no SERVICE_ID" "flush with an argument" -c "$C" flush web
P -v -v --dry-run provides web >/dev/null 2>&1; is $? 0 "-v repeatable, before the verb"

# --- dry run: JSON lines, nothing sent, no seq used, no outbox written
out=$(P provides api --dry-run 2>"$T/err"); rc=$?
is $rc 0 "--dry-run exits 0"
is "$(echo "$out" | wc -l)" 10 "--dry-run prints 10 lines"
is "$(echo "$out" | jq -s 'map(select(.v == 1 and .kind == "provides" and .seq == 1)) | length')" 10 \
	"--dry-run lines are v1 provides events with seq 1"
is "$(echo "$out" | jq -r 'select(.key == "API_URL") | .value')" "http://127.0.0.1:1100" "--dry-run expands API_URL"
# exactly the docs/protocol.md §4 body, one JSON object per line, nothing else
is "$(echo "$out" | jq -c 'keys_unsorted' | sort -u)" '["v","id","kind","federation","region","node","service","key","value","public","seq","ttl_s","ts"]' \
	"--dry-run lines have exactly the docs/protocol.md §4 fields, in its order"
is "$(echo "$out" | grep -vc '^{.*}$')" 0 "--dry-run prints nothing but one object per line"
sleep 0.3
is "$(A count cap)" 0 "--dry-run sent nothing"
ok "$([ ! -e "$ST/outbox.db" ]; echo $?)" "--dry-run created no outbox"

# --- a real announcement
t0=$(date +%s)
P provides api 2>"$T/err"; rc=$?
t1=$(date +%s)
is $rc 0 "provides api: exit 0"
is "$(grab 10 "$T/run1.jsonl")" 0 "nothing more than 10 messages"
is "$(wc -l <"$T/run1.jsonl")" 10 "10 messages captured, one per key"
is "$(sqlite3 "$ST/outbox.db" 'SELECT count(*) FROM outbox')" 0 "the outbox is empty after confirms"
like "$(stat -c %a "$ST/outbox.db")" '^600$' "outbox.db is mode 0600"

bad=$(jq -c --arg v "provbus/$VERSION" '
  . as $m | (.body | fromjson) as $b |
  select(
    $m.properties.content_type != "application/json" or
    $m.properties.delivery_mode != 2 or
    $m.properties.message_id != $b.id or
    $m.properties.type != $b.kind or
    $m.properties.app_id != $v or
    $m.routing_key != ($b.region + ".provides." + $b.key) or
    $m.exchange != "provbus.pubf" or
    ($b | keys_unsorted) != ["v","id","kind","federation","region","node","service","key","value","public","seq","ttl_s","ts"] or
    $b.v != 1 or $b.kind != "provides" or $b.federation != "pubf" or $b.region != "us-east-1" or
    $b.node != "api-03" or $b.service != "api" or $b.public != true or $b.seq != 1 or
    $b.ttl_s != 0 or ($b.value | type) != "string")' "$T/run1.jsonl")
is "$bad" "" "every message: properties (content_type, delivery_mode 2, message_id = id, type = kind, app_id), routing key, and body fields in protocol order"
ids_ok=$(jq -r '.body | fromjson | .id' "$T/run1.jsonl" | grep -Ecv "$UUID_RE")
is "$ids_ok" 0 "every id is a lowercase UUID"
is "$(jq -r '.body | fromjson | .id' "$T/run1.jsonl" | sort -u | wc -l)" 10 "10 distinct ids"
is "$(jq -r '.body | fromjson | .ts' "$T/run1.jsonl" | grep -Ecv "$TS_RE")" 0 "ts is RFC 3339 UTC with milliseconds"
ts=$(jq -r '.properties.timestamp' "$T/run1.jsonl" | sort -u)
ok "$([ "$(echo "$ts" | wc -l)" -eq 1 ] && [ "$ts" -ge "$t0" ] && [ "$ts" -le "$t1" ]; echo $?)" "timestamp property: seconds, the time of the run"
is "$(jq -r '(.body | fromjson | .ts | sub("\\.[0-9]+Z$"; "Z") | fromdate) == .properties.timestamp' "$T/run1.jsonl" | sort -u)" true \
	"timestamp property = ts in seconds"
val() { jq -r --arg k "$1" '.body | fromjson | select(.key == $k) | .value' "$2"; }
is "$(val API_URL "$T/run1.jsonl")" "http://127.0.0.1:1100" "{HOST}:{PORT} (PORT from environment, not local_port)"
is "$(val API_NODE "$T/run1.jsonl")" "$NODE" "{NODE}"
is "$(val API_REGION "$T/run1.jsonl")" "$R" "{REGION}"
is "$(val API_FED "$T/run1.jsonl")" "$F" "{FEDERATION}"
is "$(val API_ENV "$T/run1.jsonl")" "production-blue" "environment placeholders"
is "$(val API_ID "$T/run1.jsonl")" "$F/$R/$NODE" "several placeholders in one template"
is "$(val API_LITERAL "$T/run1.jsonl")" "no placeholders here" "a literal value"

# the history stream holds the same events
A stream "provbus.$F.history" --offset first --count 10 --timeout-ms 3000 >"$T/hist1.jsonl"
is "$(jq -r '.body | fromjson | .id' "$T/hist1.jsonl" | sort | tr '\n' ' ')" \
	"$(jq -r '.body | fromjson | .id' "$T/run1.jsonl" | sort | tr '\n' ' ')" "the history stream holds the same 10 events"

# --- seq across runs; --ttl
P provides api --ttl 600 2>"$T/err"; is $? 0 "provides --ttl 600: exit 0"
is "$(grab 10 "$T/run2.jsonl")" 0 "second run: 10 messages, no more"
is "$(jq -r '.body | fromjson | "\(.seq) \(.ttl_s)"' "$T/run2.jsonl" | sort -u)" "2 600" "second run: all keys seq 2, ttl_s 600"
P --dry-run provides api | jq -r .seq | sort -u >"$T/dry"
is "$(cat "$T/dry")" 3 "--dry-run shows the next seq (3) without using it"
P provides 2>"$T/err"; is $? 0 "provides (every manifest): exit 0"
is "$(grab 11 "$T/run3.jsonl")" 0 "every manifest: no more than 11 messages"
is "$(wc -l <"$T/run3.jsonl")" 11 "every manifest: 10 + 1 events"
is "$(jq -r '.body | fromjson | select(.service == "api") | .seq' "$T/run3.jsonl" | sort -u)" 3 "api: seq 3 (the dry run used none)"
is "$(jq -r '.body | fromjson | select(.service == "web") | "\(.seq) \(.value) \(.public)"' "$T/run3.jsonl")" \
	"1 http://127.0.0.1:8080/mount false" "web: its own seq 1, {PORT} from local_port, public false"
P provides web 2>"$T/err"; is $? 0 "provides web: exit 0"
is "$(grab 1 "$T/run4.jsonl")" 0 "provides web: one message"
is "$(jq -r '.body | fromjson | "\(.service) \(.seq)"' "$T/run4.jsonl")" "web 2" "provides web announces web only"

# --- a key dropped from the manifest is retired with the next announcement
jq 'del(.provides.API_LITERAL)' "$SD/api.json" >"$T/api.json" && mv "$T/api.json" "$SD/api.json"
P provides api 2>"$T/err"; is $? 0 "provides after dropping a key: exit 0"
is "$(grab 10 "$T/run5.jsonl")" 0 "dropped key: no more than 10 messages"
is "$(wc -l <"$T/run5.jsonl")" 10 "9 provides + 1 retire"
is "$(jq -c 'select(.body | fromjson | .kind == "retire") | [.routing_key, (.body | fromjson | .value, .seq)]' "$T/run5.jsonl")" \
	'["us-east-1.retire.API_LITERAL",null,4]' "the dropped key is retired, in the same announcement (seq 4)"

# --- retire, from the manifest
P retire api 2>"$T/err"; is $? 0 "retire api: exit 0"
is "$(grab 9 "$T/ret1.jsonl")" 0 "retire: no more than 9 messages"
is "$(wc -l <"$T/ret1.jsonl")" 9 "retire: one event per key"
bad=$(jq -c '. as $m | (.body | fromjson) as $b | select($b.kind != "retire" or $b.value != null or
	$m.properties.type != "retire" or $m.routing_key != ($b.region + ".retire." + $b.key) or $b.seq != 5)' "$T/ret1.jsonl")
is "$bad" "" "retire events: kind retire, value null, type retire, routing key REGION.retire.KEY, seq 5"
# ... and from the outbox's record once the manifest is gone
rm "$SD/api.json"
P retire api 2>"$T/err"; is $? 0 "retire api after its manifest is gone: exit 0"
is "$(grab 9 "$T/ret2.jsonl")" 0 "retire from the record: no more than 9 messages"
is "$(jq -r '.body | fromjson | "\(.kind) \(.seq)"' "$T/ret2.jsonl" | sort | uniq -c | awk '{print $1, $2, $3}')" \
	"9 retire 6" "retire from the record: the 9 keys last announced, seq 6"

# --- bad input
P provides nosuch >/dev/null 2>"$T/err"; rc=$?
is $rc 65 "provides with an unknown SERVICE_ID: 65"
like "$(cat "$T/err")" "nosuch.*$SD|$SD.*nosuch" "the message names the id and services_dir"
P retire nosuch >/dev/null 2>"$T/err"; is $? 65 "retire of an unknown service with no record: 65"
is "$(A count cap)" 0 "nothing was sent for bad input"
provbus-publish -c "$T/nope.json" provides >/dev/null 2>"$T/err"; rc=$?
is $rc 66 "missing config file: 66"
like "$(cat "$T/err")" "$T/nope.json" "the message names the config file"
PROVBUS_CONFIG=$C provbus-publish provides web >/dev/null 2>&1; is $? 0 "\$PROVBUS_CONFIG is the default config"
is "$(grab 1 /dev/null)" 0 "(drained)"

for f in "$PB_ROOT"/tests/data/publish/bad/*.json; do
	name=$(basename "$f" .json)
	d=$T/bad-$name; mkdir -p "$d/services.d"
	cp "$f" "$d/services.d/"
	sed "s#\"services_dir\": \"[^\"]*\"#\"services_dir\": \"$d/services.d\"#" "$C" >"$d/node.json"
	provbus-publish -c "$d/node.json" provides >/dev/null 2>"$d/err"; rc=$?
	is $rc 65 "bad manifest $name: 65"
	want=$(cat "$PB_ROOT/tests/data/publish/bad/$name.expect")
	like "$(cat "$d/err")" "$d/services.d/$name.json$want" "bad manifest $name: the message says where"
done
is "$(A count cap)" 0 "nothing was sent for bad manifests"

# --- missing exchange: 78 with the hint; the events stay spooled
pb_node_config "$T/other.json" other-01 nofed "$R"
cp "$SD/web.json" "$T/other-01/services.d/"
provbus-publish -c "$T/other.json" provides >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "missing exchange: 78"
like "$(cat "$T/err")" "exchange provbus\.nofed not found: run provbus-schema apply" "the message names the exchange and says what to do"
is "$(sqlite3 "$T/other-01/state/outbox.db" 'SELECT count(*) FROM outbox')" 1 "the event stays spooled"

# --- a message no queue takes (an exchange without the alternate
# exchange: basic.return) and a message the broker nacks (a queue that
# rejects publishes when full): 75, spooled, and said
A exchange provbus.retf --type topic >/dev/null
pb_node_config "$T/ret.json" ret-01 retf "$R"
cp "$SD/web.json" "$T/ret-01/services.d/"
provbus-publish -c "$T/ret.json" provides >/dev/null 2>"$T/err"; rc=$?
is $rc 75 "returned as unroutable: 75"
like "$(cat "$T/err")" "routing key us-east-1\.provides\.WWW_URL: returned by the broker" "the message names the routing key and says it was returned"
is "$(sqlite3 "$T/ret-01/state/outbox.db" 'SELECT count(*) FROM outbox')" 1 "the returned event stays spooled"

A exchange provbus.nackf --type topic --alternate provbus.unrouted >/dev/null
A queue nackq --bind "provbus.nackf:#" >/dev/null
pb_ctl set_policy -p "$VHOST" --apply-to queues rejectall '^nackq$' '{"max-length": 0, "overflow": "reject-publish"}' >/dev/null
pb_node_config "$T/nack.json" nack-01 nackf "$R"
cp "$SD/web.json" "$T/nack-01/services.d/"
wait_for 10 sh -c "! pbtest-amqp '$URL' publish provbus.nackf x.y --body x --confirm >/dev/null 2>&1"
ok $? "the policy is in force: a test publish is nacked"
provbus-publish -c "$T/nack.json" provides >/dev/null 2>"$T/err"; rc=$?
is $rc 75 "nacked by the broker: 75"
like "$(cat "$T/err")" "basic\.nack" "the message says the broker refused (nack)"
like "$(cat "$T/err")" "1 event spooled to $T/nack-01/state/outbox.db" "the nacked event stays spooled"

pb_done
