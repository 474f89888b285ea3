#!/usr/bin/env bash
# provbus-consumer, acting (provbus-consumer(1)): a burst makes one run (linked to
# its events); changes during a run make exactly one follow-up; A -> B -> A
# makes no run; a failing command is retried with backoff, then given up
# and audited; max_wait_ms starts a run under a never-quiet stream; the
# throttle delays a start (never drops it) and its window survives a
# restart.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cruns
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

start_of() { pbc_run_field start "$1" 4; }
# nothing running and nothing pending: no run can start by itself now
settled() { [ "$(pbc_status -c '[.state, .pending]')" = '["idle",false]' ]; }
end_of() { pbc_run_field end "$1" 3; }

# ---------------------------------------------------------------- web-01
# quiet_ms 800: a 500-event burst must not show a quiet gap, even when a
# loaded machine stalls the publisher for a few hundred ms
pbc_init web-01 us-east-1 '"quiet_ms": 800, "max_wait_ms": 10000'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start
pbc_wait_ends 1; ok $? "the startup run"
is "$(pbc_run_field start 1 3)" startup "run 1: reason startup"

# --- a burst: one run
pbc_gen 500 50 | pbc_pub
pbc_wait_ends 2; ok $? "a run after the burst"
wait_for 10 settled; ok $? "then idle, nothing pending"
is "$(pbc_runs)" 2 "500 events: exactly one run"
is "$(pbc_run_field start 2 3)" change "reason change"
is "$(pbc_sql "SELECT COUNT(*) FROM run_events WHERE run_id = 2")" 500 "the run is linked to its 500 events"
is "$(pbc_sql "SELECT changed_keys FROM runs WHERE id = 2")" '["API_URL"]' "changed_keys"
is "$(pbc_sql "SELECT status || ':' || exit_status FROM runs WHERE id = 2")" "ok:0" "status ok, exit 0"
like "$(pbc_sql "SELECT output_tail FROM runs WHERE id = 2")" "output line for run 2" "the output tail is kept"
like "$(cat "$T/consumer.log")" "run=2 provision.sh output line for run 2" "output lines go to the log, prefixed run=ID"

# --- changes during a run: exactly one follow-up
touch "$T/web-01.hold"	# run 3 lasts until the test lets it end
for i in 2 3 4; do pbc_ev provides us-east-1 solo-1 s API_URL "http://solo:$i" "$i" >"$T/during$i"; done
pbc_ev provides us-east-1 solo-1 s API_URL http://solo:1 1 | pbc_pub
pbc_wait_eq 10 3 pbc_runs; ok $? "run 3 started"
is "$(pbc_status .state)" running "status: running"
is "$(pbc_status .running.run_id)" 3 "status: the running run"
for i in 2 3 4; do cat "$T/during$i"; sleep 0.2; done | pbc_pub
pbc_wait_rows 3 "node = 'solo-1' AND seq IN (2, 3, 4)"; ok $? "three changes arrive during the run"
is "$(pbc_status .pending)" true "changes during the run: pending"
pb_sleep 0.5
is "$(pbc_runs)" 3 "nothing starts while the run goes (one at a time)"
rm "$T/web-01.hold"
pbc_wait_ends 4; ok $? "a follow-up run"
wait_for 10 settled; ok $? "then idle, nothing pending"
is "$(pbc_runs)" 4 "three changes during a run: exactly one follow-up"
ok "$([ "$(start_of 4)" -ge "$(end_of 3)" ]; echo $?)" "the follow-up started after the run ended"
like "$(tr '\0' '\n' <"$RUNS.4.env" | grep '^API_URL=')" "http://solo:4" "the follow-up has the latest value"

# --- A -> B -> A: no run
pbc_ev provides us-east-1 solo-1 s API_URL http://solo:B 5 >"$T/ab"
pbc_ev provides us-east-1 solo-1 s API_URL http://solo:4 6 >>"$T/ab"
pbc_pub <"$T/ab"
pbc_wait_rows 2 "node = 'solo-1' AND seq IN (5, 6)"; ok $? "B then A applied"
is "$(pbc_sql "SELECT group_concat(changed) FROM events WHERE node = 'solo-1' AND seq IN (5, 6)")" "1,1" "both changed the values"
pb_sleep 1.8	# past the quiet timer (800 ms) of the last event
is "$(pbc_runs)" 4 "A -> B -> A before the quiet timer: no run"
is "$(pbc_status .pending)" false "nothing pending"

# --- a failing command: retried with backoff, then given up
b=$(pbc_runs)
echo 3 >"$T/web-01.exit"
pbc_ev provides us-east-1 solo-1 s API_URL http://solo:F 7 | pbc_pub
_note_exhausted() { [ "$(pbc_sql "SELECT COUNT(*) FROM notes WHERE kind = 'retry-exhausted'")" -ge 1 ]; }
wait_for 15 _note_exhausted; ok $? "given up: a retry-exhausted note"
is "$(pbc_sql "SELECT group_concat(reason || ':' || status || ':' || exit_status, ' ') FROM (SELECT * FROM runs WHERE id > $b ORDER BY id)")" \
	"change:failed:3 retry:failed:3 retry:failed:3" "one run and retry.max (2) retries, all failed and audited"
gap() { pbc_sql "SELECT (SELECT started_at FROM runs WHERE id = $2) - (SELECT finished_at FROM runs WHERE id = $1)"; }
g1=$(gap $((b + 1)) $((b + 2))) g2=$(gap $((b + 2)) $((b + 3)))
ok "$([ "$g1" -ge 200 ] && [ "$g2" -ge 400 ]; echo $?)" "backoff: ${g1} ms then ${g2} ms (base 200 ms, doubling)"
pb_sleep 1
is "$(pbc_runs)" $((b + 3)) "no more runs after giving up"
is "$(pbc_status -c .pending_changes)" '["API_URL"]' "the value stays a pending change"
is "$(pbc_status .last_run.exit_status)" 3 "status: last_run exit 3"
like "$(provbus-consumer -c "$C" status --prometheus)" "provbus_last_run_exit_status 3" "prometheus: last exit status"
rm "$T/web-01.exit"
out=$(provbus-consumer -c "$C" provision-now); is "$(jq -r .ok <<<"$out")" true "provision-now answers ok"
pbc_wait_ends $((b + 4)); ok $? "a manual run"
is "$(pbc_run_field start $((b + 4)) 3)" manual "reason manual"
pbc_wait_eq 5 '[]' pbc_status -c .pending_changes; ok $? "after a successful run nothing is pending"
pbc_stop; is "$CRC" 0 "exit 0"

# ---------------------------------------------------------------- web-02
# max_wait under a stream that is never quiet
pbc_init web-02 us-east-1 '"quiet_ms": 1000, "max_wait_ms": 2000, "splay_ms": 400'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start web02
pbc_wait_ends 1; ok $? "web-02: startup run"
wait_for 10 settled; ok $? "web-02: settled before the stream"
# one publisher process fed a line every 0.15 s: a fork per event would
# be too slow on a loaded machine to keep the stream under quiet_ms
pbc_gen 34 1 API_URL us-east-1 1 | sed 's/node-0/flap-1/g' >"$T/flap"
t0=$(date +%s%3N)
while IFS= read -r line; do printf '%s\n' "$line"; sleep 0.15; done <"$T/flap" |
	pbtest-amqp "$URL" publish-lines "provbus.$F" --persistent >/dev/null 2>&1
t1=$(date +%s%3N)
i=$(wc -l <"$T/flap")
first=$(pbc_sql "SELECT MIN(received_at) FROM events WHERE node = 'flap-1'")
changes=$(pbc_sql "SELECT COUNT(*) FROM runs WHERE reason = 'change' AND started_at < $(pbc_sql "SELECT MAX(received_at) FROM events WHERE node = 'flap-1'")")
diag "$i events over $((t1 - t0)) ms; change runs started while they flowed: $changes"
ok "$([ "$changes" -ge 2 ]; echo $?)" "max_wait_ms: runs start while the stream never goes quiet ($changes)"
# when the first change run was due, from the times the events arrived
# (a scheduler stall can open a quiet gap in the stream: then the quiet
# timer, not max_wait, made it due, and that is right too): the earlier
# of first + max_wait and the end of the first gap of quiet_ms
due=$(pbc_sql "SELECT received_at FROM events WHERE node = 'flap-1' ORDER BY id" |
	awk -v q=1000 -v mw=2000 '
	NR == 1 { due = $1 + mw; prev = $1; next }
	!stop { if (prev >= due) stop = 1
		else if ($1 - prev >= q) { if (prev + q < due) due = prev + q; stop = 1 }
		prev = $1 }
	END { if (!stop && prev + q < due) due = prev + q; printf "%.0f\n", due }')
how=$([ "$due" -eq $((first + 2000)) ] && echo "max_wait" || echo "a quiet gap in the stream")
d=$(( $(pbc_sql "SELECT MIN(started_at) FROM runs WHERE reason = 'change'") - due ))
ok "$([ "$d" -ge -20 ] && [ "$d" -le "$(pb_slow 1000)" ]; echo $?)" \
	"the first change run starts $d ms after it was due ($how; splay <= 400)"
# splay: drawn per run, recorded, waited
# (one statement: a run may start between two reads)
is "$(pbc_sql "SELECT (SELECT COUNT(*) FROM notes WHERE kind = 'splay') || ' ' || (SELECT COUNT(*) FROM runs)" |
	awk '{ print ($1 == $2) ? "equal" : "notes " $1 ", runs " $2 }')" equal "a splay note per run"
bad=$(pbc_sql "SELECT COUNT(*) FROM notes n JOIN runs r ON r.id = n.run_id WHERE n.kind = 'splay'
	AND (CAST(substr(n.text, 19) AS INTEGER) > 400 OR r.started_at - r.queued_at < CAST(substr(n.text, 19) AS INTEGER))")
is "$bad" 0 "each splay in [0, 400] ms, and waited between queued_at and started_at"
pbc_stop

# ---------------------------------------------------------------- web-03
# throttle: 2 starts per 8 s (x PB_SLOW: the third request must still
# fall inside the window of the first, however slowly the first two runs
# went on a busy machine)
win=$(pb_slow 8)
pbc_init web-03 us-east-1 '"throttle": {"runs": 2, "per_s": '"$win"'}'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start web03
pbc_wait_ends 1; ok $? "web-03: startup run"
provbus-consumer -c "$C" provision-now >/dev/null
pbc_wait_ends 2; ok $? "a second run at once"
provbus-consumer -c "$C" provision-now >/dev/null
pbc_wait_status .state pending; ok $? "the third request is taken"
is "$(pbc_runs)" 2 "a third is held by the throttle"
is "$(pbc_status -c '[.state, (.next_run_at | type)]')" '["pending","string"]' "status: pending, with next_run_at"
pbc_wait_ends 3; ok $? "the third run starts when the window allows (not dropped)"
started() { pbc_sql "SELECT started_at FROM runs WHERE id = $1"; }
gap=$(( $(started 3) - $(started 1) ))
ok "$([ "$gap" -ge $((win * 1000)) ]; echo $?)" "3 starts: the third ${gap} ms after the first (window $((win * 1000)) ms)"
pbc_stop
pbc_start web03b
pbc_wait_ends 4; ok $? "after a restart, the startup run"
gap=$(( $(started 4) - $(started 2) ))
ok "$([ "$gap" -ge $((win * 1000)) ]; echo $?)" "the throttle window survived the restart (${gap} ms after run 2)"
pbc_stop; is "$CRC" 0 "exit 0"

# ---------------------------------------------------------------- mem-01
# Memory while idle: a run's output is read through a 64 KiB buffer on the
# daemon's stack (one write of 64 KiB fills it in one read); once the daemon
# is idle those stack pages are given back, so the [stack] mapping's Rss is
# again below the buffer's size.
printf '#!/bin/sh\ndd if=/dev/zero bs=65536 count=3 2>/dev/null | tr "\\000" x\necho\n' >"$T/loud.sh"
chmod +x "$T/loud.sh"
pbc_init mem-01 us-east-1 "\"provision\": [\"$T/loud.sh\"]"
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start mem01
loud_ok() { [ "$(pbc_sql "SELECT COUNT(*) FROM runs WHERE status = 'ok'")" -ge 1 ]; }
wait_for 30 loud_ok; ok $? "mem-01: a run that printed 192 KiB"
stack_kb() { awk '/ \[stack\]$/ { on = 1; next } on && /^Rss:/ { print $2; exit }' "/proc/$CPID/smaps"; }
stack_small() { [ "$(stack_kb)" -lt 60 ]; }
wait_for 10 stack_small; ok $? "idle: the stack's pages are given back (Rss $(stack_kb) kB, the buffer is 64)"
pbc_stop; is "$CRC" 0 "exit 0"
pb_done
