#!/usr/bin/env bash
# t-security-terminal: untrusted text never reaches an operator's terminal
# raw. An attacker with one node's credentials sends values holding
# terminal control sequences (ESC [ 1A ESC [ 2K erases the line above;
# OSC 52, ESC ] 52 ; c ; ... BEL, writes the clipboard), C1 controls in
# UTF-8 (U+009B is a CSI), invalid UTF-8, a bidi override (U+202E) in a
# node name:
#   - at the wire, the consumer audits each as invalid (the detail names
#     the field, the byte and its offset) and dead-letters it; the
#     publisher refuses such a value (exit 65, naming the manifest and key);
#   - at every output, an audit log seeded BY HAND with such bytes (a
#     database edited by hand, or written before the rule) prints nothing
#     raw in any provbus-audit verb, text or --json, nor does
#     provbus-consumer status (JSON, --prometheus) or the daemon's log.
# "Raw" is checked on the output bytes: a C0 control but TAB and newline,
# DEL, a C1 control or bidi control in UTF-8, or bytes that are not UTF-8.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup secterm
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

# raw_lines FILE: how many lines of FILE hold a byte that drives a
# terminal, plus 1000 when FILE is not valid UTF-8
raw_lines() {
	local n
	n=$(LC_ALL=C grep -caP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\xd8\x9c' "$1")
	iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1 || n=$((n + 1000))
	echo "$n"
}
# the checker itself must see what it is meant to see
printf 'ok\tline\n' >"$T/clean.txt"
is "$(raw_lines "$T/clean.txt")" 0 "checker: a tab is not raw"
for b in '\x1b[2K' '\x07' '\x7f' '\xc2\x9b' '\xe2\x80\xae' '\x9b' '\xc0\xaf' '\r'; do
	printf "ok %b\n" "$b" >"$T/dirty.txt"
	[ "$(raw_lines "$T/dirty.txt")" != 0 ] || diag "checker misses $b"
done
printf 'a\x1b]52;c;eA==\x07\n' >"$T/dirty.txt"
is "$(raw_lines "$T/dirty.txt")" 1 "checker: OSC 52 is raw"

# ---- 1. an audit log seeded by hand --------------------------------------
DB=$T/hand.db
pbtest-auditgen -o "$DB" --empty >/dev/null; ok $? "an empty audit log"
# X'..' AS TEXT: the exact bytes, whatever sqlite3's shell would make of them
#   1b5b31411b5b324b  ESC[1A ESC[2K        1b5d35323b633b...07  OSC 52 ... BEL
#   7f DEL   c29b U+009B (C1 CSI)   9b raw CSI byte   ff c0af invalid UTF-8
#   e280ae U+202E   0d CR   0a LF   00 NUL
sqlite3 "$DB" <<'EOT'
BEGIN;
INSERT INTO params(at, json) VALUES(1767225600000,
 '{"quiet_ms":2000,"max_wait_ms":30000,"throttle_runs":6,"throttle_per_s":600,"splay_ms":0,"retry_max":5,"retry_base_ms":1000,"event":"start"}');
INSERT INTO events(id, msg_id, received_at, kind, federation, region, node, service, key, value,
 seq, ttl_s, public, verdict, detail, redelivered, source, exchange, routing_key, changed) VALUES
 (1, CAST(X'31311b5b324b' AS TEXT), 1767225605000, 'provides', 'fleet', 'us-east-1',
  CAST(X'617069e280ae3330' AS TEXT), CAST(X'7376630d' AS TEXT), 'K1',
  CAST(X'6f6b1b5b31411b5b324b1b5d35323b633b5933567962413d3d07' AS TEXT),
  1, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.K1', 1),
 (2, 'id-2', 1767225606000, 'provides', 'fleet', CAST(X'75731b5b33316d' AS TEXT), 'n2', 's',
  CAST(X'4b321b' AS TEXT), CAST(X'617f62c29b63' AS TEXT),
  2, 0, 0, 'invalid', CAST(X'64657461696c1b5b324b7fc29b0a6c696e65' AS TEXT), 0, 'live',
  'provbus.fleet', CAST(X'72b1' AS TEXT), 0),
 (3, 'id-3', 1767225607000, 'provides', 'fleet', 'us-east-1', '<script>alert(1)</script>', 's',
  'K1', CAST(X'62616420ff9bc0af0020e280ae7574663820003c623e' AS TEXT),
  3, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.K1', 1);
INSERT INTO runs(id, reason, queued_at, started_at, finished_at, exit_status, status, deferred_ms,
 changed_keys, values_before, values_after, output_tail, notify_status) VALUES
 (1, 'change', 1767225607000, 1767225609000, 1767225612000, 1, CAST(X'6661696c65641b5b324b' AS TEXT), 0,
  '["K1","K\u001b[2K"]',
  '{"K1":"before\u001b[1A\u001b[2K","K\u001b[2K":"x\u007f\u009b"}',
  CAST(X'7b224b31223a22616674657220c29b7f227d' AS TEXT),
  X'737461727420310a1b5d35323b633b5933567962413d3d070a6572617365201b5b31411b5b324b0d6c696e650a9bff00c0af0a6c61737420e280ae6c696e650a',
  NULL),
 (2, CAST(X'6d616e75616c1b' AS TEXT), 1767225620000, 1767225620000, 1767225621000, 0, 'ok', 0,
  CAST(X'5b224b311b225d' AS TEXT), CAST(X'7b7f' AS TEXT), NULL, X'ff0a', NULL);
INSERT INTO run_events(run_id, event_id) VALUES (1, 1), (1, 2), (1, 3), (2, 3);
INSERT INTO notes(at, run_id, kind, text) VALUES
 (1767225610000, 1, CAST(X'6c6f636b1b' AS TEXT), CAST(X'68656c64206279201b5d303b70776e65640720c29b' AS TEXT));
INSERT INTO providers(federation, region, node, service, key, value, public, seq, expires_at,
 updated_at, tombstone) VALUES
 ('fleet', 'us-east-1', CAST(X'617069e280ae3330' AS TEXT), 's', 'K1', CAST(X'761b5b324b7fc29bff' AS TEXT),
  0, 1, NULL, 1767225605000, 0);
COMMIT;
EOT
ok $? "hostile bytes inserted by hand"
is "$(sqlite3 "$DB" "SELECT instr(value, char(27)) FROM events WHERE id = 1")" 3 "the db really holds a raw ESC"

au() { # NAME ARGS...: provbus-audit on the hand-made log; stdout+stderr in $T/au-NAME
	local name=$1; shift
	provbus-audit -d "$DB" "$@" >"$T/au-$name" 2>&1
	is "$?" 0 "provbus-audit $*: exit 0"
	is "$(raw_lines "$T/au-$name")" 0 "provbus-audit $*: no raw control byte, valid UTF-8"
}
au events events
au events-json events --json
au events-key events --key K1 --verdict applied
au runs runs
au runs-json runs --json
au explain explain 1
au explain-all explain 1 --all
au explain-json explain 1 --json
au explain2 explain 2
au explain2-json explain 2 --json
au replay replay
au replay-json replay --json
au replay-whatif replay --quiet-ms 500
au export export --jsonl
au timeline timeline --html "$T/t.html"
is "$(raw_lines "$T/t.html")" 0 "timeline: the HTML file holds no raw control byte"
is "$(grep -c '<script>alert' "$T/t.html")" 0 "timeline: markup from the log is escaped (no <script> from a node name)"
like "$(grep -o '&lt;script&gt;alert(1)&lt;/script&gt;' "$T/t.html" | head -n 1)" 'script' "timeline: ... it is shown as text"
is "$(grep -c 'class="run st-unknown"' "$T/t.html")" 1 "timeline: a status not known is no class name"

provbus-audit -d "$DB" events --verdict $'x\e]52;c;eA==\a' >/dev/null 2>"$T/au-usage"
is "$?" 64 "a usage error quoting a hostile word: exit 64"
like "$(head -n 1 "$T/au-usage")" "x\\\\x1b\\]52;c;eA==\\\\x07" "... the word shown escaped"
is "$(raw_lines "$T/au-usage")" 0 "... nothing raw"

# nothing vanished: every row is printed, escaped
is "$(wc -l <"$T/au-events-json")" 3 "events --json: all 3 rows, the one with invalid UTF-8 too"
is "$(grep -c '"type":"event"' "$T/au-export")" 3 "export: all 3 events"
is "$(grep -c '"type":"run"' "$T/au-export")" 2 "export: both runs"
is "$(grep -c '"type":"provider"' "$T/au-export")" 1 "export: the provider"
for f in events-json runs-json explain-json explain2-json replay-json export; do
	jq -e . "$T/au-$f" >/dev/null 2>&1; ok $? "$f: valid JSON lines"
done
# the escapes say what was there
like "$(grep -m1 '^ *1 ' "$T/au-events")" 'ok\\x1b\[1A\\x1b\[2K\\x1b\]52;c;Y3VybA==\\x07' "events: ESC and BEL shown as \\x1b, \\x07"
like "$(cat "$T/au-events")" 'api\\u202e30/svc\\x0d' "events: U+202E and CR in node/service shown escaped"
like "$(cat "$T/au-events")" 'detail\\x1b\[2K\\x7f\\u009b\\x0aline' "events: DEL, C1 and LF in a detail shown escaped"
like "$(cat "$T/au-events")" 'bad \\xff\\x9b\\xc0\\xaf' "events: invalid UTF-8 shown as \\xNN"
is "$(jq -r 'select(.id == 1) | .value' "$T/au-events-json" | od -An -tx1 | tr -d ' \n')" \
	"6f6b1b5b31411b5b324b1b5d35323b633b5933567962413d3d070a" "events --json: the value decodes to its exact bytes"
like "$(jq -r 'select(.id == 3) | .value' "$T/au-events-json" | tr -d '\000')" '^bad \\xff\\x9b\\xc0\\xaf' "events --json: invalid UTF-8 becomes the text \\xNN"
like "$(grep -c 'u009b' "$T/au-events-json")" '^[1-9]' "events --json: C1 written \\u009b"
like "$(cat "$T/au-explain")" '  \| \\x1b\]52;c;Y3VybA==\\x07' "explain: the output tail's OSC 52 shown escaped"
like "$(cat "$T/au-explain")" '  \| erase \\x1b\[1A\\x1b\[2K\\x0dline' "explain: ESC and CR in the output tail shown escaped"
like "$(cat "$T/au-explain")" '  \| \\x9b\\xff\\x00\\xc0\\xaf' "explain: bad UTF-8 and NUL in the output tail shown escaped"
like "$(cat "$T/au-explain")" 'before  before\\x1b\[1A\\x1b\[2K' "explain: a value before, escaped"
like "$(cat "$T/au-explain")" 'held by \\x1b\]0;pwned\\x07 \\u009b' "explain: a note, escaped"
like "$(cat "$T/au-runs")" 'failed\\x1b\[2K' "runs: a status, escaped"
like "$(jq -r .output_tail "$T/au-explain-json" | tr -d '\000')" 'erase' "explain --json: the output tail is there"

# ---- 2. the wire: hostile events sent raw over AMQP ------------------------
pbc_init web-01 us-east-1
pbc_manifest app '{"K1": "{K1}"}'
pbc_start
A() { pbtest-amqp "$URL" "$@"; }
RK=us-east-1.provides.K1
base='{"v":1,"id":"x","kind":"provides","federation":"'$F'","region":"us-east-1","node":"api-09","service":"api","key":"K1","value":"ok","public":false,"seq":1,"ttl_s":0,"ts":"2026-01-01T00:00:00Z"}'
n_bad=0
hostile() { # NAME JQ-FILTER: the base event, its own id, the filter applied, sent raw
	n_bad=$((n_bad + 1))
	local id; id=$(printf '22222222-2222-4222-8222-%012d' $n_bad)
	jq -c --arg id "$id" ".id = \$id | $2" <<<"$base" | tr -d '\n' >"$T/ev-$1"
	A publish "provbus.$F" "$RK" --body-file "$T/ev-$1" --confirm --persistent \
		--content-type application/json --message-id "$id" >/dev/null || diag "publish $1 failed"
}
raw() { # NAME BYTES (printf): the base event with value BYTES, not JSON-escaped
	n_bad=$((n_bad + 1))
	local id; id=$(printf '22222222-2222-4222-8222-%012d' $n_bad)
	jq -c --arg id "$id" '.id = $id | .value = "@@"' <<<"$base" | tr -d '\n' >"$T/ev-$1.tmpl"
	{ sed 's/@@.*//' "$T/ev-$1.tmpl" | tr -d '\n'; printf "%b" "$2"; sed 's/.*@@//' "$T/ev-$1.tmpl"; } >"$T/ev-$1"
	A publish "provbus.$F" "$RK" --body-file "$T/ev-$1" --confirm --persistent \
		--content-type application/json --message-id "$id" >/dev/null || diag "publish $1 failed"
}
hostile erase '.value = "ok\u001b[1A\u001b[2K"'
hostile osc52 '.value = "\u001b]52;c;Y3VybCB4fHNo\u0007"'
hostile del '.value = "abc\u007f"'
hostile c1 '.value = "x\u009b2J"'
hostile bidi-node '.node = "api\u202e30"'
hostile esc-node '.node = "api\u001b"'
hostile extra '.note = "\u001b]0;pwned\u0007"'
raw raw-c1 'x\xc2\x9b2J'
raw raw-del 'abc\x7f'
raw bad-utf8 'bad \xff'
raw overlong 'a\xc0\xaf'
raw raw-esc 'a\x1b[2K'
pbc_wait_rows "$n_bad" "verdict = 'invalid'"; ok $? "$n_bad hostile events audited as invalid"
is "$(pbc_sql "SELECT count(*) FROM events WHERE verdict = 'applied'")" 0 "none applied"
pbc_wait_ge 10 "$n_bad" A count provbus.dead; ok $? "... and dead-lettered"
is "$(A count provbus.dead)" "$n_bad" "exactly $n_bad in provbus.dead"
det() { pbc_sql "SELECT detail FROM events WHERE msg_id = '$(printf '22222222-2222-4222-8222-%012d' "$1")'"; }
is "$(det 1)" "field 'value': control byte 0x1b at offset 2" "ESC: the detail names the field, byte and offset"
is "$(det 2)" "field 'value': control byte 0x1b at offset 0" "OSC 52: likewise"
is "$(det 3)" "field 'value': control byte 0x7f at offset 3" "DEL: likewise"
is "$(det 4)" "field 'value': C1 control U+009B at offset 1" "C1 (escaped in JSON): likewise"
like "$(det 5)" "^field 'node': bad name" "U+202E in a node name: a bad name"
is "$(det 6)" "field 'node': control byte 0x1b at offset 3" "ESC in a node name: the byte named"
is "$(det 7)" "field 'note': control byte 0x1b at offset 0" "an extra member: checked too"
is "$(det 8)" "field 'value': C1 control U+009B at offset 1" "C1 (raw UTF-8): likewise"
is "$(det 9)" "field 'value': control byte 0x7f at offset 3" "raw DEL: likewise"
like "$(det 10)" "^field 'value': invalid UTF-8 byte 0xff at offset [0-9]+ of the body" "invalid UTF-8: the byte and its offset"
like "$(det 11)" "^field 'value': invalid UTF-8 byte 0xc0" "overlong UTF-8: likewise"
like "$(det 12)" "^field 'value': control byte 0x1b at offset [0-9]+ of the body" "a raw ESC (not JSON): the field, byte and offset"
is "$(pbc_sql "SELECT count(*) FROM events WHERE detail GLOB '*[^ -~]*'")" 0 "no detail holds a byte outside printable ASCII"
kill -0 "$CPID"; ok $? "the daemon is still running"

provbus-consumer -c "$C" status >"$T/status.json" 2>&1; ok $? "status"
is "$(raw_lines "$T/status.json")" 0 "status: nothing raw"
jq -e . "$T/status.json" >/dev/null; ok $? "status: valid JSON"
provbus-consumer -c "$C" status --prometheus >"$T/status.prom" 2>&1; ok $? "status --prometheus"
is "$(raw_lines "$T/status.prom")" 0 "status --prometheus: nothing raw"
provbus-audit -d "$ST/audit.db" events >"$T/live-events" 2>&1; ok $? "events on the live log"
is "$(raw_lines "$T/live-events")" 0 "events on the live log: nothing raw"
provbus-audit -d "$ST/audit.db" events --json >"$T/live-events.json" 2>&1
is "$(raw_lines "$T/live-events.json")" 0 "events --json on the live log: nothing raw"
is "$(raw_lines "$T/consumer.log")" 0 "the daemon's log (-vv): nothing raw"

# a status restored from a log written before the rule (values with DEL,
# C1, ESC): the daemon restores providers from its audit log at start
pbc_stop
sqlite3 "$ST/audit.db" "INSERT INTO providers(federation, region, node, service, key, value, public, seq,
 expires_at, updated_at, tombstone) VALUES ('$F', 'us-east-1', 'old-1', 's', 'K1',
 CAST(X'6f6c641b5b324b7fc29b' AS TEXT), 0, 1, NULL, 1767225605000, 0)"
pbc_start consumer2
provbus-consumer -c "$C" status >"$T/status2.json" 2>&1; ok $? "status after a restart"
like "$(jq -r '.providers.K1[0]' "$T/status2.json" | od -An -tx1 | tr -d ' \n')" "6f6c641b5b324b7fc29b" \
	"status: the old value, restored, as it is"
is "$(raw_lines "$T/status2.json")" 0 "status: the old value printed escaped (DEL and C1 as \\u escapes)"
provbus-consumer -c "$C" status --prometheus >"$T/status2.prom" 2>&1
is "$(raw_lines "$T/status2.prom")" 0 "status --prometheus: nothing raw"
is "$(raw_lines "$T/consumer2.log")" 0 "the daemon's log after the restart: nothing raw"
pbc_stop

# ---- 3. the publisher refuses ---------------------------------------------
pb_node_config "$T/pub.json" pub-01 "$F" us-east-1
PSD=$T/pub-01/services.d
printf '{"id": "evil", "environment": {"E": "\\u001b]52;c;Y3VybA==\\u0007"}, "provides": {"EVIL_URL": "http://{HOST}/{E}"}}\n' >"$PSD/evil.json"
provbus-publish -c "$T/pub.json" provides evil >"$T/pub.out" 2>"$T/pub.err"
is "$?" 65 "publisher: a value with OSC 52 (from the environment): exit 65"
like "$(cat "$T/pub.err")" "evil.json: provides.EVIL_URL: the expanded value: control byte 0x1b at offset" \
	"publisher: names the manifest and key"
is "$(raw_lines "$T/pub.err")" 0 "publisher: its message holds nothing raw"
provbus-publish -c "$T/pub.json" provides --dry-run evil >"$T/pub.out" 2>"$T/pub.err"
is "$?" 65 "publisher --dry-run: exit 65 too"
is "$(wc -c <"$T/pub.out")" 0 "publisher --dry-run: prints no event"
printf '{"id": "evil", "provides": {"EVIL_URL": "x\\u007f", "OK_URL": "fine"}}\n' >"$PSD/evil.json"
provbus-publish -c "$T/pub.json" provides evil >/dev/null 2>"$T/pub.err"
is "$?" 65 "publisher: DEL in a template: exit 65"
like "$(cat "$T/pub.err")" "evil.json: provides.EVIL_URL: the expanded value: control byte 0x7f at offset 1" "... naming the manifest and key"
printf '{"id": "evil", "provides": {"EVIL_URL": "x\\u009b2J"}}\n' >"$PSD/evil.json"
provbus-publish -c "$T/pub.json" provides evil >/dev/null 2>"$T/pub.err"
is "$?" 65 "publisher: a C1 control: exit 65"
like "$(cat "$T/pub.err")" "provides.EVIL_URL: the expanded value: C1 control U\+009B" "... named"
is "$(A count provbus.dead)" "$n_bad" "nothing more reached the broker"
# a static value in the node config (it would end up in the env file)
pb_node_config "$T/stat.json" pub-02 "$F" us-east-1 '"consumer": {"env_file": "'"$T"'/x.env", "static": {"K": "a\u001b[2K"}}'
provbus-consumer -c "$T/stat.json" -n >/dev/null 2>"$T/stat.err"
is "$?" 78 "consumer -n: a static value with ESC: exit 78"
like "$(cat "$T/stat.err")" "field 'consumer.static.K': control byte 0x1b at offset 1" "... naming the field"
is "$(raw_lines "$T/stat.err")" 0 "... and the message holds nothing raw"
pb_done
