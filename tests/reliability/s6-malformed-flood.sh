#!/usr/bin/env bash
# Scenario 6: a flood of malformed messages mixed with valid events, all on
# routing keys the consumer's queue is bound with. Every malformed one is
# rejected without requeue (dead-lettered to provbus.dead) and audited as
# invalid; every valid one is applied; the daemon's memory stays flat
# (VmRSS sampled every 0.5 s); it never stops or crashes.
#   RL_MALFORMED (default 100000), RL_VALID_EVERY (default 10: one valid
#   event per 10 malformed), RL_VALGRIND=1 (the daemon under memcheck; use
#   small counts)
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s6-malformed-flood
bad_n=${RL_MALFORMED:-100000}
every=${RL_VALID_EVERY:-10}
keys="K001 K002 K003 K004 K005"

rl_topology fed r1
rl_apply
rl_consumer c1 r1 "$keys"
rl_consumer_start c1
pid=$BG_PID
rl_wait_connected c1 60
ok $? "consumer connected"
rl_wait_idle c1 60
ok $? "consumer idle (history catch-up and startup run done)"
Q=provbus.fed.node.c1
db=$T/c1/state/audit.db

# The flood: line "ROUTING_KEY<TAB>BODY"; kinds of damage in turn; one
# valid event (seq increasing, all applied) after every $every bad ones.
salt=$(printf '%08x' $((RANDOM * 32768 + RANDOM)))
awk -v n="$bad_n" -v every="$every" -v salt="$salt" 'BEGIN {
	big = sprintf("%5000s", ""); gsub(/ /, "x", big)
	seq = 0; valid = 0
	for (i = 0; i < n; i++) {
		k = sprintf("K%03d", i % 5 + 1); rk = "r1.provides." k
		id = sprintf("%s-0000-4000-8000-%012x", salt, i)
		head = "{\"v\":1,\"id\":\"" id "\",\"kind\":\"provides\",\"federation\":\"fed\",\"region\":\"r1\",\"node\":\"pv\",\"service\":\"svc\",\"key\":\"" k "\","
		tail = ",\"public\":false,\"seq\":1,\"ttl_s\":0,\"ts\":\"2026-01-01T00:00:00Z\"}"
		t = i % 16
		if (t == 0) body = "this is not json {"
		else if (t == 1) body = "[1,2,3]"
		else if (t == 2) { body = head "\"value\":\"x\"" tail; sub(/"v":1/, "\"v\":2", body) }
		else if (t == 3) { body = head "\"value\":\"x\"" tail; sub(/,"seq":1/, "", body) }
		else if (t == 4) { body = head "\"value\":\"x\"" tail; sub(/"seq":1/, "\"seq\":\"1\"", body) }
		else if (t == 5) { body = head "\"value\":\"x\"" tail; sub(/"node":"pv"/, "\"node\":\"Bad Node!\"", body) }
		else if (t == 6) body = head "\"value\":\"line1\\nline2\"" tail
		else if (t == 7) body = head "\"value\":\"cr\\rhere\"" tail
		else if (t == 8) body = head "\"value\":\"nul\\u0000here\"" tail
		else if (t == 9) { body = head "\"value\":\"x\"" tail; rk = "r1.provides." (k == "K001" ? "K002" : "K001") }
		else if (t == 10) { body = head "\"value\":\"x\"" tail; sub(/"federation":"fed"/, "\"federation\":\"other\"", body) }
		else if (t == 11) { body = head "\"value\":\"x\"" tail; sub(/"kind":"provides"/, "\"kind\":\"bogus\"", body) }
		else if (t == 12) body = (i % 1024 == 12) ? head "\"value\":\"" big "\"" tail : head "\"value\":17" tail
		else if (t == 13) body = "{\"v\":1}"
		else if (t == 14) { body = head "\"value\":\"x\"" tail; sub(/"id":"[^"]*"/, "\"id\":\"not-a-uuid\"", body) }
		else body = "\"just a string\""
		print rk "\t" body
		if ((i + 1) % every == 0) {
			seq++; valid++
			k = sprintf("K%03d", seq % 5 + 1)
			vid = sprintf("%s-1111-4000-8000-%012x", salt, seq)
			printf "r1.provides.%s\t{\"v\":1,\"id\":\"%s\",\"kind\":\"provides\",\"federation\":\"fed\",\"region\":\"r1\",\"node\":\"pv\",\"service\":\"svc\",\"key\":\"%s\",\"value\":\"http://pv/%d\",\"public\":false,\"seq\":%d,\"ttl_s\":0,\"ts\":\"2026-01-01T00:00:00Z\"}\n", k, vid, k, seq, seq
		}
	}
	print valid > "/dev/stderr"
}' >"$T/flood.tsv" 2>"$T/valid.n"
valid_n=$(cat "$T/valid.n")
total=$((bad_n + valid_n))
is "$(wc -l <"$T/flood.tsv")" "$total" "generated $bad_n malformed and $valid_n valid messages"
# a few bodies over 64 KiB (sent one by one below)
big_n=5
head -c 70000 /dev/zero | tr '\0' 'y' >"$T/huge.body"

# memory sampler
( while kill -0 "$pid" 2>/dev/null; do echo "$(rl_now) $(rl_rss "$pid")"; sleep 0.5; done ) >"$T/rss.txt" &
sampler=$!
rl_track_pid "$sampler"

t0=$(rl_now)
pbtest-amqp "$URL" publish-lines provbus.fed --confirm --persistent --content-type application/json \
	--timeout-ms 120000 <"$T/flood.tsv" >"$T/publish.log" 2>&1
ok $? "the flood was confirmed by the broker"
for i in $(seq 1 $big_n); do
	pbtest-amqp "$URL" publish provbus.fed r1.provides.K001 --body-file "$T/huge.body" --persistent --confirm >/dev/null 2>&1
done
total=$((total + big_n)); bad_n=$((bad_n + big_n))
pub_ms=$(( $(rl_now) - t0 ))

wait_for 600 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' 'SELECT count(*) FROM events')\" -ge $total ]"
ok $? "the consumer audited all $total messages"
done_ms=$(( $(rl_now) - t0 ))
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null

kill -0 "$pid" 2>/dev/null
ok $? "the daemon is still running"
st=$(rl_status "$T/c1.json")
is "$(rl_json_get "$st" .connected)" true "still connected"

invalid=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='invalid'")
applied=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='applied'")
other=$(rl_sql "$db" "SELECT verdict || ':' || count(*) FROM events WHERE verdict NOT IN ('invalid','applied') GROUP BY verdict" | tr '\n' ' ')
is "$invalid" "$bad_n" "every malformed message audited as invalid"
is "$applied" "$valid_n" "every valid event applied"
is "$other" "" "no other verdicts"
nodetail=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='invalid' AND (detail IS NULL OR detail = '')")
is "$nodetail" 0 "each invalid row says why (detail)"
diag "reasons: $(rl_sql "$db" "SELECT substr(detail, 1, 60) || ' x' || count(*) FROM events WHERE verdict='invalid' GROUP BY substr(detail, 1, 25) ORDER BY count(*) DESC LIMIT 20" | tr '\n' ';')"
wait_for 30 bash -c "[ \"\$(pbtest-amqp '$URL' count provbus.dead)\" -ge $bad_n ]"
dead=$(pbtest-amqp "$URL" count provbus.dead)
is "$dead" "$bad_n" "every malformed message dead-lettered to provbus.dead (and only those)"
is "$(pbtest-amqp "$URL" count "$Q")" 0 "nothing left ready in the node queue"
# the values: the last valid event of each key
last=$(rl_sql "$db" "SELECT key || '=' || value FROM events WHERE verdict='applied' AND id IN (SELECT max(id) FROM events WHERE verdict='applied' GROUP BY key) ORDER BY key" | tr '\n' ' ')
vals=$(rl_json_get "$st" '.values | to_entries | map(.key + "=" + (.value|tostring)) | join(" ")')
diag "last applied: $last; status values: $vals"
like "$vals" "E_K001=http://pv/" "the valid events set the values"

# memory: after the first quarter of the flood, VmRSS stays within 16 MB
read -r first_kb max_kb end_kb n_samples < <(awk -v t0="$t0" -v t1=$((t0 + done_ms / 4)) '
	$1 >= t1 && $2 != "" { if (!f) f = $2; if ($2 > m) m = $2; e = $2; n++ }
	END { print f + 0, m + 0, e + 0, n + 0 }' "$T/rss.txt")
diag "VmRSS kB: at 1/4 $first_kb, max $max_kb, end $end_kb ($n_samples samples); whole run: $(awk '{print $2}' "$T/rss.txt" | sort -n | sed -n '1p;$p' | tr '\n' ' ')"
if [ -z "${RL_VALGRIND:-}" ] && [ "$n_samples" -ge 4 ]; then
	[ "$n_samples" -ge 2 ] && [ $((max_kb - first_kb)) -lt 16384 ]
	ok $? "memory flat: VmRSS grew $(( (max_kb - first_kb) / 1024 )) MB after the first quarter (< 16)"
fi

rl_consumer_stop c1
rc=$?
is "$rc" 0 "SIGTERM: the daemon exits 0"
rl_valgrind_check c1 "$rc"

rows=$(rl_sql "$db" "SELECT count(*) FROM events")
rl_result sent=$total malformed=$bad_n valid=$valid_n audited="$rows" \
	lost=$((total - rows)) invalid=$invalid dead_lettered=$dead applied=$applied \
	duplicated_detected=0 publish_s=$((pub_ms / 1000)) drain_s=$((done_ms / 1000)) \
	rss_kb_first=$first_kb rss_kb_max=$max_kb rate_per_s=$(( total * 1000 / (done_ms > 0 ? done_ms : 1) ))
pb_done
