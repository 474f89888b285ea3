#!/usr/bin/env bash
# provbus-consumer, receiving: usage, -n, the queue and its bindings, every
# verdict of provbus-consumer(1) (applied, duplicate, stale, retire then a late older
# provides, foreign, expired), every malformed message of docs/protocol.md §4
# dead-lettered and audited as invalid while the daemon keeps consuming,
# acks only after the audit row (nothing left in the queue), SIGTERM.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cverdicts
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pbc_init web-01 us-east-1 '"regions": ["us-east-1", "eu-west-1"]'
pbc_manifest app '{"API_URL": "{API_URL}", "CACHE": "{CACHE_URL}", "MODE": "fast"}'
Q=provbus.$F.node.web-01
A() { pbtest-amqp "$URL" "$@"; }

# --- -n, usage
out=$(provbus-consumer -c "$C" -n); is "$?:$out" "0:configuration OK" "-n: configuration OK"
echo '{"node": "x"' >"$T/bad.json"
provbus-consumer -c "$T/bad.json" -n >/dev/null 2>&1; is $? 78 "-n on a broken config: 78"
echo '{"id": "broken", "requires": {"lower": "x"}}' >"$T/web-01/services.d/zz.json"
err=$(provbus-consumer -c "$C" -n 2>&1); is $? 65 "-n on a bad manifest: 65"
like "$err" "zz.json" "the error names the manifest"
rm "$T/web-01/services.d/zz.json"
pbc_manifest other '{"MODE": "slow"}'
err=$(provbus-consumer -c "$C" -n 2>&1); is $? 78 "two manifests requiring MODE differently: 78"
like "$err" "app.json.*other.json.*MODE|other.json.*app.json.*MODE" "the error names both files and the var"
rm "$SD/other.json"
cli_usage64 provbus-consumer "unknown verb 'frob'" "unknown verb" -c "$C" frob
cli_usage64 provbus-consumer "a verb is needed" "no verb" -c "$C"
cli_usage64 provbus-consumer "unknown option --frob" "unknown option" -c "$C" --frob status
cli_usage64 provbus-consumer "option -c needs an argument" "-c without a file" -c
cli_usage64 provbus-consumer "--prometheus goes with status only" "--prometheus on pause" -c "$C" pause --prometheus
is "$(provbus-consumer --version)" "provbus-consumer $(cat "$PB_ROOT/VERSION")" "--version"
like "$(provbus-consumer --help)" "provision-now" "--help"
provbus-consumer -c "$C" status >/dev/null 2>&1; is $? 69 "status without a daemon: 69"

pbc_start
is "$(pbc_status .connected)" true "status: connected"
like "$(pbc_status .broker)" '^amqp://guest@127\.0\.0\.1:' "status: the broker URL, without the password"
is "$(pbc_status -c .bound_keys)" '["API_URL","CACHE_URL"]' "status: bound keys"
is "$(A count "$Q")" 0 "the node queue exists (declared by the daemon)"

# --- applied, duplicate, stale
ID1=$(pbc_uuid)
{ pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 5 0 "$ID1"
  pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 5 0 "$ID1"
  pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.9:80 4
  pbc_ev retire us-east-1 api-02 api API_URL "" 10
  pbc_ev provides us-east-1 api-02 api API_URL http://10.0.0.2:80 9
  pbc_ev provides eu-west-1 cache-1 cache CACHE_URL redis://10.1.0.1 3
} | pbc_pub
pbc_wait_rows 6; ok $? "6 rows"
is "$(pbc_sql "SELECT group_concat(verdict, ' ') FROM (SELECT verdict FROM events ORDER BY id)")" \
	"applied duplicate stale applied stale applied" "verdicts: applied duplicate stale, retire applied, older provides stale, other region applied"
is "$(pbc_sql "SELECT redelivered || source || exchange FROM events WHERE id = 1")" "0liveprovbus.$F" "row: redelivered 0, source live, exchange"
is "$(pbc_sql "SELECT msg_id FROM events WHERE verdict = 'duplicate'")" "$ID1" "the duplicate row has the event id"
is "$(pbc_sql "SELECT tombstone || ':' || seq FROM providers WHERE node = 'api-02'")" "1:10" "retire left a tombstone with its seq"
is "$(pbc_status -c .providers.API_URL)" '["http://10.0.0.1:80"]' "status: the live providers of API_URL"
pbc_wait_eq 5 0 A count "$Q"; ok $? "everything acked"

# --- a lease runs out
pbc_ev provides us-east-1 api-03 api API_URL http://10.0.0.3:80 1 3 | pbc_pub
pbc_wait_rows 1 "node = 'api-03' AND verdict = 'applied'"; ok $? "lease applied"
is "$(pbc_status -c .providers.API_URL)" '["http://10.0.0.1:80","http://10.0.0.3:80"]' "the lease is live"
pbc_wait_rows 1 "verdict = 'expired'"; ok $? "an expired row after the ttl"
is "$(pbc_sql "SELECT source || ':' || node || ':' || changed FROM events WHERE verdict = 'expired'")" "daemon:api-03:1" "expired row: source daemon, the provider, changed"
like "$(pbc_sql "SELECT detail FROM events WHERE verdict = 'expired'")" "lease ran out" "expired row says why"
is "$(pbc_status -c .providers.API_URL)" '["http://10.0.0.1:80"]' "the expired provider is gone"
is "$(pbc_sql "SELECT COUNT(*) FROM providers WHERE node = 'api-03'")" 0 "and gone from the providers table"

# --- malformed messages: dead-lettered and audited as invalid
base='{"v":1,"id":"11111111-2222-4333-8444-555555555555","kind":"provides","federation":"'$F'","region":"us-east-1","node":"api-09","service":"api","key":"API_URL","value":"http://x","public":false,"seq":1,"ttl_s":0,"ts":"2026-01-01T00:00:00Z"}'
RK=us-east-1.provides.API_URL
n_bad=0
bad() { # NAME BODY-FILE [ROUTING_KEY] [PUBLISH OPTIONS...]
	local name=$1 file=$2 rk=${3:-$RK}; shift 3 2>/dev/null || shift $#
	A publish "provbus.$F" "$rk" --body-file "$file" --confirm --message-id "bad-$name" "$@" >/dev/null
	n_bad=$((n_bad + 1))
}
# the bodies: each mkj is the base event with its own id, then a jq filter
n_id=0
mk() { printf '%s' "$2" >"$T/bad-$1"; }
mkj() {
	n_id=$((n_id + 1))
	jq -c --arg id "$(printf '11111111-2222-4333-8444-%012d' $n_id)" ".id = \$id | $2" <<<"$base" |
		tr -d '\n' >"$T/bad-$1"
}
idof() { printf '11111111-2222-4333-8444-%012d' "$1"; }
mk notjson 'this is not json'
mk array '[1,2,3]'
mk string '"just a string"'
mkj v2 '.v = 2'
mkj nov 'del(.v)'
mkj noseq 'del(.seq)'
mkj seqstr '.seq = "5"'
mkj negseq '.seq = -1'
mkj badid '.id = "not-a-uuid"'
mkj badkind '.kind = "maybe"'
mkj badnode '.node = "API_03"'
mkj badkey '.key = "api_url"'
mkj public '.public = "yes"'
mkj longval '.value = ("x" * 4097)'
mkj lf '.value = "a\nb"'
mkj cr '.value = "a\rb"'
mkj nul '.value = "a\u0000b"'
mkj retireval '.kind = "retire"'
mkj provnull '.value = null'
mkj rkmismatch '.'
mkj rkregion '.region = "eu-west-1"'
mkj otherfed '.federation = "otherfed"'
mkj badts '.ts = "yesterday"'
mkj ctype '.'
head -c 300 /dev/urandom >"$T/bad-random"
: >"$T/bad-empty"
head -c 1048576 /dev/zero | tr '\0' 'a' >"$T/bad-1mib"
jq -c '.value = ("y" * 70000)' <<<"$base" >"$T/bad-65k"
for b in notjson array string v2 nov noseq seqstr negseq badid badkind badnode badkey public \
	longval lf cr nul provnull rkregion otherfed badts random empty 1mib 65k; do
	bad "$b" "$T/bad-$b"
done
bad retireval "$T/bad-retireval" us-east-1.retire.API_URL
bad rkmismatch "$T/bad-rkmismatch" us-east-1.retire.API_URL
bad ctype "$T/bad-ctype" "$RK" --content-type text/plain
pbc_wait_rows "$n_bad" "verdict = 'invalid'"; ok $? "$n_bad malformed messages audited as invalid"
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE verdict = 'invalid'")" "$n_bad" "exactly one invalid row each"
pbc_wait_ge 10 "$n_bad" A count provbus.dead; ok $? "all dead-lettered"
is "$(A count provbus.dead)" "$n_bad" "exactly $n_bad in provbus.dead"
is "$(pbc_status .counts.invalid)" "$n_bad" "status counts them"
like "$(pbc_sql "SELECT detail FROM events WHERE msg_id = '$(idof 1)'")" "'v'" "invalid row: the detail says why (v 2)"
like "$(pbc_sql "SELECT detail FROM events WHERE msg_id = 'bad-notjson'")" "JSON|json" "not JSON: said so, the AMQP message_id kept"
like "$(pbc_sql "SELECT detail FROM events WHERE routing_key = 'us-east-1.retire.API_URL' AND detail LIKE '%routing key%' LIMIT 1")" "routing key" "routing key mismatch named"
like "$(pbc_sql "SELECT detail FROM events WHERE detail LIKE '%content type%'")" "text/plain" "wrong content type named"
like "$(pbc_sql "SELECT detail FROM events WHERE msg_id = 'bad-1mib'")" "1048576 bytes" "1 MiB body: over the limit"
is "$(pbc_sql "SELECT COUNT(DISTINCT msg_id) FROM events WHERE verdict = 'invalid' AND msg_id LIKE '11111111-%'")" "$((n_id - 1))" \
	"invalid rows carry the body's id when the body has one"
kill -0 "$CPID"; ok $? "the daemon is still running"
pbc_ev provides us-east-1 api-04 api API_URL http://10.0.0.4:80 1 | pbc_pub
pbc_wait_rows 1 "node = 'api-04' AND verdict = 'applied'"; ok $? "and still consuming: the next event is applied"
pbc_wait_eq 5 0 A count "$Q"; ok $? "the queue is empty (invalid ones rejected, the rest acked)"

# --- foreign: a key and a region dropped while events wait in the queue
pbc_stop; is "$CRC" 0 "SIGTERM: exit 0"
pbc_manifest app '{"API_URL": "{API_URL}", "MODE": "fast"}'
sed -i 's/"regions": \["us-east-1", "eu-west-1"\]/"regions": ["us-east-1"]/' "$C"
{ pbc_ev provides eu-west-1 cache-2 cache CACHE_URL redis://10.1.0.2 1
  pbc_ev provides eu-west-1 api-05 api API_URL http://10.2.0.5:80 1
  pbc_ev provides us-east-1 api-06 api API_URL http://10.0.0.6:80 1
} | pbc_pub
is "$(A count "$Q")" 3 "3 events wait in the queue while the daemon is down"
pbc_start consumer2
pbc_wait_rows 3 "node IN ('cache-2', 'api-05', 'api-06')"; ok $? "the 3 waiting events judged"
is "$(pbc_sql "SELECT group_concat(node || '=' || verdict, ' ') FROM (SELECT node, verdict FROM events WHERE node IN ('cache-2', 'api-05', 'api-06') ORDER BY id)")" \
	"cache-2=foreign api-05=foreign api-06=applied" "dropped key and dropped region: foreign"
is "$(pbc_status -c .bound_keys)" '["API_URL"]' "the dropped key is no longer bound"
{ pbc_ev provides eu-west-1 cache-3 cache CACHE_URL redis://10.1.0.3 1
  pbc_ev provides us-east-1 api-07 api API_URL http://10.0.0.7:80 1
} | pbc_pub
pbc_wait_rows 1 "node = 'api-07'"; ok $? "a bound event arrives"
sleep 0.3
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE node = 'cache-3'")" 0 "the unbound key no longer reaches the queue"

# --- a copy of an old event, judged by the first daemon: this one has
# never seen its id, and 3,000 events of other nodes pass first (more
# than its id cache holds). The audit log knows the copy, and the mark of
# api-01's highest seq (seen.c, read from the log) sends it to the lookup.
pbc_gen 3000 40 API_URL us-east-1 | pbc_pub
pbc_wait_rows 3000 "node LIKE 'node-%'"; ok $? "3,000 events from 40 other nodes"
{ pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 5 0 "$ID1"
  pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 4 0 "$ID1"
  pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 6
} | pbc_pub
pbc_wait_rows 6 "node = 'api-01'"; ok $? "an old copy, the same id with another seq, a new event"
is "$(pbc_sql "SELECT group_concat(verdict, ' ') FROM (SELECT verdict FROM events WHERE node = 'api-01' ORDER BY id)")" \
	"applied duplicate stale duplicate duplicate applied" "(the three of the start, then) old copy: duplicate; same id, older seq: duplicate (the id first, provbus-consumer(1)); next seq: applied"
pbc_stop; is "$CRC" 0 "exit 0"
pb_done
