#!/usr/bin/env bash
# Scenario 7: provision commands that misbehave — one that hangs, one that
# floods stdout (lines, then one endless line), one that exits non-zero
# forever. Throughout, `provbus-consumer status` answers within 1 s
# (sampled continuously); the hang holds one run (changes meanwhile queue
# one follow-up) until the command is killed, then it is retried; the flood
# is drained with bounded memory and an 8 KiB tail; the failing command is
# retried retry.max times with backoff, then left alone; each run is
# recorded in the audit log with its status and exit.
#   RL_FLOOD_MB (default 200): megabytes of output of the flooding run
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s7-bad-provision
flood_mb=${RL_FLOOD_MB:-200}

cat >"$T/provision.sh" <<EOT
#!/bin/sh
# the mode file says how to misbehave
echo "\$(date +%s%3N) \${PROVBUS_REASON} \${PROVBUS_RUN_ID} \$\$ \$(cat $T/mode)" >>$T/runs.log
case \$(cat $T/mode) in
hang) echo \$\$ >$T/hang.pid; exec sleep 3600 ;;
flood) yes 'flood line 0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz' | head -c $((flood_mb * 1024 * 1024 * 3 / 4))
       head -c $((flood_mb * 1024 * 1024 / 4)) /dev/zero | tr '\\0' z
       echo; echo "flood done"; exit 0 ;;
fail) echo "failing on purpose" >&2; exit 3 ;;
*) exit 0 ;;
esac
EOT
chmod +x "$T/provision.sh"
echo ok >"$T/mode"

rl_topology fed r1
rl_apply
rl_consumer c1 r1 "K001"
rl_consumer_start c1
pid=$BG_PID
rl_wait_idle c1 60
ok $? "consumer up and idle after its startup run"
db=$T/c1/state/audit.db
runs_sql() { rl_sql "$db" "SELECT reason || ':' || status || ':' || ifnull(exit_status, '-') FROM runs WHERE id > $1 ORDER BY id" | tr '\n' ' '; }
last_run_id() { rl_sql "$db" "SELECT ifnull(max(id), 0) FROM runs"; }

# responsiveness: status every 0.2 s, each bounded by 1 s
( while kill -0 "$pid" 2>/dev/null; do
	s=$(rl_now)
	timeout -k 1 1 provbus-consumer -c "$T/c1.json" status >/dev/null 2>"$T/status.err"
	r=$?
	# 126/127: the client itself could not start (bin/ being relinked):
	# not the daemon's doing, no sample
	if [ $r -ne 126 ] && [ $r -ne 127 ]; then
		[ $r -eq 0 ] || echo "$s: exit $r: $(cat "$T/status.err")" >>"$T/status-failures.txt"
		echo "$s $(( $(rl_now) - s )) $([ $r -eq 0 ] && echo 0 || echo 1)"
	fi
	sleep 0.2
  done ) >"$T/latency.txt" &
sampler=$!
rl_track_pid "$sampler"
lat_report() { # lat_report FROM-MS: "samples failures max-ms"
	awk -v from="$1" '$1 >= from { n++; if ($3) f++; if ($2 > m) m = $2 } END { print n + 0, f + 0, m + 0 }' "$T/latency.txt"
}

# --- 1. a command that hangs
echo hang >"$T/mode"
base=$(last_run_id)
t_hang=$(rl_now)
rl_send K001 http://a/1
wait_for 20 test -s "$T/hang.pid"
ok $? "the provision run started and hangs"
hang_pid=$(cat "$T/hang.pid" 2>/dev/null)
rl_track_pid "${hang_pid:-0}"
sleep "${RL_HANG_S:-3}"
st=$(rl_status "$T/c1.json")
is "$(rl_json_get "$st" .state)" running "status during the hang: state running"
is "$(rl_json_get "$st" .running.pid)" "$hang_pid" "status shows the running command's pid"
rl_send K001 http://a/2
wait_for 5 bash -c "[ \"\$(provbus-consumer -c '$T/c1.json' status | jq -r .pending)\" = true ]"
ok $? "a change during the hang is pending (a follow-up run), not started"
is "$(grep -c ' hang$' "$T/runs.log")" 1 "still only one provision process"
echo ok >"$T/mode"
kill -KILL "$hang_pid"
wait_for 20 bash -c "[ \"\$(provbus-consumer -c '$T/c1.json' status | jq -r .state)\" = idle ]"
ok $? "after the hung command is killed the daemon goes on and settles"
r=$(runs_sql "$base")
like "$r" "^change:failed:137 " "the hung run is recorded as failed, exit 137 (SIGKILL): $r"
like "$r" "(retry|change):ok:0 $" "then a run (retry or the follow-up) succeeds"
read -r n f m < <(lat_report "$t_hang")
is "$f" 0 "status answered within 1 s during the hang ($n samples, max $m ms)"

# --- 2. a command that floods its output
echo flood >"$T/mode"
base=$(last_run_id)
rss0=$(rl_rss "$pid")
t_flood=$(rl_now)
rl_send K001 http://a/3
( maxr=0; while kill -0 "$pid" 2>/dev/null; do r=$(rl_rss "$pid"); [ "${r:-0}" -gt $maxr ] && maxr=$r; echo $maxr >"$T/rss.max"; sleep 0.2; done ) &
rl_track_pid $!
rsspid=$!
wait_for 5 bash -c "grep -q ' flood$' '$T/runs.log'"
wait_for 180 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM runs WHERE id > $base AND status != 'running'\")\" -ge 1 ]"
ok $? "the flooding run finished"
flood_ms=$(( $(rl_now) - t_flood ))
kill "$rsspid" 2>/dev/null
r=$(runs_sql "$base")
like "$r" "^change:ok:0" "the flooding run is recorded ok: $r"
tail_len=$(rl_sql "$db" "SELECT length(output_tail) FROM runs WHERE id = $((base + 1))")
[ "${tail_len:-0}" -gt 0 ] && [ "${tail_len:-0}" -le 8192 ]
ok $? "its output tail is kept, at most 8 KiB ($tail_len bytes)"
is "$(rl_sql "$db" "SELECT instr(output_tail, CAST('zzzz' || char(10) || 'flood done' AS BLOB)) > 0 FROM runs WHERE id = $((base + 1))")" 1 "the tail is the end of the output (the endless line, then 'flood done')"
rssmax=$(cat "$T/rss.max" 2>/dev/null)
[ $(( ${rssmax:-0} - ${rss0:-0} )) -lt 32768 ]
ok $? "memory bounded during a ${flood_mb} MB flood: VmRSS $rss0 -> max $rssmax kB"
read -r n f m < <(lat_report "$t_flood")
is "$f" 0 "status answered within 1 s during the flood ($n samples, max $m ms)"

# --- 3. a command that always fails
echo fail >"$T/mode"
base=$(last_run_id)
t_fail=$(rl_now)
rl_send K001 http://a/4
# retry.max 3, base 200 ms: 1 + 3 runs over ~1.4 s, then no more
wait_for 30 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM runs WHERE id > $base AND status = 'failed'\")\" -ge 4 ]"
ok $? "the failing command ran 1 + retry.max (3) times"
sleep 3
r=$(runs_sql "$base")
is "$r" "change:failed:3 retry:failed:3 retry:failed:3 retry:failed:3 " "recorded: the change run and 3 retries, each failed with exit 3, then no more"
gaps=$(rl_sql "$db" "SELECT started_at FROM runs WHERE id > $base ORDER BY id" | awk 'NR > 1 {printf "%d ", $1 - p} {p = $1}')
diag "gaps between the runs (ms): $gaps (retry.base_ms 200: 200, 400, 800 + run time)"
read -r -a g <<<"$gaps"
[ "${#g[@]}" -eq 3 ] && [ "${g[0]}" -ge 180 ] && [ "${g[1]}" -ge 380 ] && [ "${g[2]}" -ge 780 ]
ok $? "the retries back off (base_ms · 2^n)"
like "$(rl_sql "$db" "SELECT kind FROM notes WHERE kind LIKE 'retry%'" | tr '\n' ' ')" "retry-exhausted" "a note says the retries are exhausted"
st=$(rl_status "$T/c1.json")
is "$(rl_json_get "$st" .last_run.status)" failed "status: the last run failed"
like "$(rl_sql "$db" "SELECT CAST(output_tail AS TEXT) FROM runs WHERE id = $((base + 1))")" "failing on purpose" "the failed run's output is kept"
read -r n f m < <(lat_report "$t_fail")
is "$f" 0 "status answered within 1 s meanwhile ($n samples, max $m ms)"

# --- 4. fixed: a manual run succeeds and the values finally apply
echo ok >"$T/mode"
base=$(last_run_id)
provbus-consumer -c "$T/c1.json" provision-now >/dev/null
wait_for 20 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM runs WHERE id > $base AND status = 'ok'\")\" -ge 1 ]"
ok $? "provision-now after the fix: a run succeeds"
like "$(cat "$T/c1/app.env" 2>/dev/null)" "E_K001='http://a/4'" "the env file holds the latest value"

kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
read -r n f m < <(lat_report 0)
is "$f" 0 "status never failed to answer within 1 s ($n samples over the scenario, max $m ms)"
kill -0 "$pid"; ok $? "the daemon never stopped"
rl_consumer_stop c1
rc=$?
is "$rc" 0 "SIGTERM: exit 0"
rl_valgrind_check c1 "$rc"
rl_result sent=$RL_SEQ runs="$(rl_sql "$db" "SELECT count(*) FROM runs")" \
	failed_runs="$(rl_sql "$db" "SELECT count(*) FROM runs WHERE status='failed'")" status_samples=$n status_failures=$f status_max_ms=$m \
	flood_mb=$flood_mb flood_s=$((flood_ms / 1000)) rss_kb_before_flood=$rss0 rss_kb_max_flood=$rssmax lost=0
pb_done
