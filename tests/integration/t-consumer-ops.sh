#!/usr/bin/env bash
# provbus-consumer in the weeks after a rollout (provbus-consumer(1)):
# - under systemd, READY=1 comes once the configuration and the audit log
#   are loaded, without waiting for the broker (a `systemctl start` from a
#   Chef run must not hang on a broker outage); STATUS= says whether it is
#   connected; WATCHDOG=1 is sent;
# - the control verbs and provbus-audit -c work while the configuration
#   file on disk is broken, and status says why it does not load;
# - no run starts before a catch-up it is owed: a reload that adds a key
#   whose history takes longer to read than the quiet period and max_wait;
# - a notify never delays a stop (SIGTERM, SIGKILL 2 s later), and one
#   still going when the next run ends makes that run's notify skipped,
#   audited as skipped (provbus.json(5));
# - a value too long for a process environment (40 providers of 4 KB:
#   over 128 KiB) stays in the env file, is left out of the provision's
#   environment with a warning and an audit note, PROVBUS_ENV_FILE is set;
#   an exec failure says its errno in the default log and the audit log;
# - NOTIFY_SOCKET and JOURNAL_STREAM do not reach the provision; the
#   journald format only when stderr is JOURNAL_STREAM's device:inode;
# - -n checks what a run needs (password file, env file directory, the
#   manifests' provides templates); under public_only the log's changed=
#   agrees with the audit row; a regions-only reload adds no key.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cops
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pbc_init web-01 us-east-1 '"quiet_ms": 100, "max_wait_ms": 300'
pbc_manifest app '{"API_URL": "{API_URL}"}'
sed 's#"urls": \["[^"]*"\]#"urls": ["amqp://guest:guest@127.0.0.1:1/x"]#' "$C" >"$T/down.json"

# --- READY=1 with the broker away; STATUS= and WATCHDOG=1
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace") + "\n---\n")
        f.flush()' "$T/notify.sock" "$T/notify.log" &
NL=$!; _pb_pids+=("$NL")
wait_for 5 test -S "$T/notify.sock"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 pb_bg down provbus-consumer -c "$T/down.json" -v run
DPID=$BG_PID
wait_for 10 grep -qx 'READY=1' "$T/notify.log"; ok $? "broker away: READY=1 all the same"
like "$(grep '^STATUS=' "$T/notify.log" | head -n1)" 'not connected' "STATUS= says it is not connected"
wait_for 5 grep -qx 'WATCHDOG=1' "$T/notify.log"; ok $? "WATCHDOG=1 is sent (WATCHDOG_USEC set)"
is "$(provbus-consumer -c "$T/down.json" status | jq -c '[.connected, .config.loads]')" '[false,true]' \
	"status answers: not connected, the file on disk loads"

# the textfile-collector recipe: written atomically; a stopped daemon is
# provbus_up 0, never a stale provbus_connected
TF=$PB_ROOT/deploy/prometheus/provbus-textfile
mkdir -p "$T/textfile"
PROVBUS_CONSUMER=$PB_BIN/provbus-consumer sh "$TF" -c "$T/down.json" "$T/textfile"; is "$?" 0 "provbus-textfile: 0"
like "$(cat "$T/textfile/provbus.prom")" $'\nprovbus_up 1'\$ "the daemon answers: provbus_up 1"
like "$(cat "$T/textfile/provbus.prom")" $'\nprovbus_connected 0\n' "... with its figures"
like "$(cat "$T/textfile/provbus.prom")" $'\nprovbus_audit_failing 0\n' "... audit_failing"
like "$(cat "$T/textfile/provbus.prom")" $'\nprovbus_blocked 0\n' "... blocked"
is "$(ls -A "$T/textfile")" "provbus.prom" "no temp file left"

# --- the configuration on disk broken: the verbs still work
cp "$T/down.json" "$T/down.good"
sed -i 's/"quiet_ms"/"quiet_msx"/' "$T/down.json"
kill -HUP "$DPID"
wait_for 10 grep -q 'reload (SIGHUP) failed' "$T/down.log"; ok $? "the broken file is not loaded (reload failed)"
out=$(provbus-consumer -c "$T/down.json" status 2>"$T/err"); rc=$?
is "$rc" 0 "status with a broken file on disk: 0"
is "$(jq -c '.config.loads' <<<"$out")" false "status: the file on disk does not load"
like "$(jq -r '.config.error' <<<"$out")" 'quiet_msx' "status: and why (the unknown field)"
like "$(cat "$T/err")" 'quiet_msx' "the client warns that the file does not load"
provbus-consumer -c "$T/down.json" status --prometheus >"$T/prom" 2>/dev/null
is "$?" 0 "status --prometheus with a broken file: 0"
like "$(cat "$T/prom")" $'\nprovbus_connected 0\n' "... the figures are there"
provbus-consumer -c "$T/down.json" pause >/dev/null 2>&1; is "$?" 0 "pause with a broken file: 0"
is "$(provbus-consumer -c "$T/down.json" status 2>/dev/null | jq .paused)" true "... and the daemon is paused"
provbus-consumer -c "$T/down.json" resume >/dev/null 2>&1; is "$?" 0 "resume with a broken file: 0"
provbus-consumer -c "$T/down.json" provision-now >/dev/null 2>&1; is "$?" 0 "provision-now with a broken file: 0"
provbus-audit -c "$T/down.json" runs >/dev/null 2>&1; is "$?" 0 "provbus-audit -c with a broken file: 0"
echo '{"node": "web-01", "state_dir": "'"$ST"'", ' >"$T/down.json"
provbus-consumer -c "$T/down.json" status >/dev/null 2>&1; is "$?" 0 "status with a file that is not even JSON: 0 (state_dir found)"
# no "state_dir" left to find in the file: the daemon running this very
# file (its command line, its open audit log) says where it is
: >"$T/down.json"	# an interrupted template write
out=$(provbus-consumer -c "$T/down.json" status 2>/dev/null); is "$?" 0 "status with an empty file: 0"
is "$(jq -r .node <<<"$out")" web-01 "... the status of the daemon running that file"
printf '{broken' >"$T/down.json"
provbus-consumer -c "$T/down.json" pause >/dev/null 2>&1; is "$?" 0 "pause with '{broken': 0"
is "$(provbus-consumer -c "$T/down.json" status 2>/dev/null | jq .paused)" true "... and the daemon is paused"
provbus-consumer -c "$T/down.json" resume >/dev/null 2>&1; is "$?" 0 "resume with '{broken': 0"
provbus-audit -c "$T/down.json" runs >/dev/null 2>&1; is "$?" 0 "provbus-audit -c with '{broken': 0"
# another file, as broken, that no daemon runs: not taken for this one
printf '{broken' >"$T/other.json"
provbus-consumer -c "$T/other.json" status >/dev/null 2>"$T/err"
ok "$([ $? -ne 0 ]; echo $?)" "status with another broken file that no daemon runs: an error"
ok "$(grep -qF "$ST" "$T/err"; [ $? -ne 0 ]; echo $?)" "... which does not name this daemon's state_dir"
cp "$T/down.good" "$T/down.json"
kill -HUP "$DPID"
pbc_wait_eq 10 true sh -c "provbus-consumer -c '$T/down.json' status 2>/dev/null | jq .config.loads"
ok $? "fixed and reloaded: status says the file loads again"
kill -TERM "$DPID"; wait "$DPID"; is "$?" 0 "stopped: exit 0"
PROVBUS_CONSUMER=$PB_BIN/provbus-consumer sh "$TF" -c "$T/down.json" "$T/textfile"
is "$(grep -v '^#' "$T/textfile/provbus.prom")" "provbus_up 0" "the daemon stopped: the textfile says provbus_up 0, nothing else"

# --- no run before the catch-up owed: a reload adds a key with a long history
pbc_gen 20000 20 DB_URL | pbc_pub
pbc_start
pbc_wait_ends 1; ok $? "startup run"
pbc_wait_idle; ok $? "idle"
runs0=$(pbc_sql "SELECT COUNT(*) FROM runs")
pbc_manifest db '{"DATABASE_URL": "{DB_URL}"}'
pbc_wait_status .bound_keys '["API_URL","DB_URL"]'; ok $? "inotify: the new key is bound"
pbc_wait_ge 60 2 grep -c "catch-up done" "$T/consumer.log"; ok $? "its catch-up ended"
pbc_wait_idle 30; ok $? "idle again"
want=$(pbc_status -r .values.DATABASE_URL)
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE key = 'DB_URL' AND source = 'history'")" 20000 "the 20000 events of the key were read from the history"
first=$(pbc_sql "SELECT json_extract(values_after, '\$.DATABASE_URL') FROM runs WHERE id > $runs0 ORDER BY id LIMIT 1")
is "$first" "$want" "the first run after the reload had the whole history (not a part: it waited for the catch-up)"
is "$(pbc_sql "SELECT COUNT(*) FROM runs WHERE id > $runs0")" 1 "one run for the new key"
pbc_stop; is "$CRC" 0 "exit 0"
# --- notify: one still going when the next run ends is skipped; at a stop
# it gets SIGTERM, then SIGKILL 2 s later, and never delays the stop
cat >"$T/hang.sh" <<EOT
#!/bin/sh
trap '' TERM
echo "notify \$PROVBUS_RUN_ID \$\$" >>"$T/hang.log"
while :; do sleep 0.1; done
EOT
chmod +x "$T/hang.sh"
pbc_init web-02 us-east-1 "\"notify\": [\"$T/hang.sh\"], \"quiet_ms\": 100"
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start notif
pbc_wait_ends 1; ok $? "startup run"
wait_for 10 grep -q '^notify 1 ' "$T/hang.log"; ok $? "its notify started (and hangs, ignoring SIGTERM)"
kill -USR1 "$CPID"
pbc_wait_ends 2; ok $? "a second run ended while the first notify still hangs"
pbc_wait_eq 10 1 pbc_sql "SELECT COUNT(*) FROM notes WHERE kind = 'notify-skipped' AND run_id = 2"
ok $? "its notify is skipped, audited as skipped"
is "$(grep -c '^notify 2 ' "$T/hang.log")" 0 "and it did not run"
npid=$(awk '$2 == 1 {print $3}' "$T/hang.log")
t0=$(date +%s%N)
pbc_stop
ms=$((($(date +%s%N) - t0) / 1000000))
is "$CRC" 0 "stopped with a hanging notify: exit 0"
ok "$([ "$ms" -ge 1500 ] && [ "$ms" -lt $((6000 * PB_SLOW)) ]; echo $?)" "the stop took about the 2 s to SIGKILL, not 60 s ($ms ms)"
kill -0 "$npid" 2>/dev/null; is "$?" 1 "the notify is gone (SIGKILL)"
like "$(cat "$T/notif.log")" "notify of run 1 ignored SIGTERM: SIGKILL" "the log says the notify was killed"
# --- a run that ends during the stop starts no notify: the stop signals
# only the notify it found, so one started after it would be waited for
# without bound (this notify ignores SIGTERM and never ends)
pbc_init web-05 us-east-1 "\"notify\": [\"$T/hang.sh\"], \"quiet_ms\": 100"
pbc_manifest app '{"API_URL": "{API_URL}"}'
: >"$T/hang.log"
pbc_start notif2
pbc_wait_ends 1; ok $? "startup run"
wait_for 10 grep -q '^notify 1 ' "$T/hang.log"; ok $? "its notify started (and hangs)"
: >"$T/web-05.hold"
kill -USR1 "$CPID"
wait_for 10 sh -c "[ \$(grep -c '^start ' '$RUNS') -ge 2 ]"; ok $? "a second run started and is held open"
kill -TERM "$CPID"
wait_for 10 grep -q 'notify of run 1 ignored SIGTERM: SIGKILL' "$T/notif2.log"
ok $? "at the stop, the first notify got SIGTERM, then SIGKILL"
rm -f "$T/web-05.hold"	# the run ends while the daemon is stopping
if wait_for 15 sh -c "! kill -0 $CPID 2>/dev/null"; then
	wait "$CPID"; CRC=$?
	ok 0 "the daemon stopped once the run ended"
else
	ok 1 "the daemon stopped once the run ended (still waiting: killed)"
	kill -KILL "$CPID" 2>/dev/null; wait "$CPID"; CRC=$?
	npid2=$(awk '$2 == 2 {print $3}' "$T/hang.log"); [ -n "$npid2" ] && kill -KILL "$npid2" 2>/dev/null
fi
is "$CRC" 0 "exit 0"
is "$(grep -c '^notify 2 ' "$T/hang.log")" 0 "the notify of the run that ended during the stop did not start"
is "$(pbc_sql "SELECT COUNT(*) FROM notes WHERE kind = 'notify-skipped' AND run_id = 2 AND text LIKE '%stopping%'")" 1 \
	"it is audited as skipped: the daemon is stopping"
# --- a value over 128 KiB; systemd's variables not passed on
pbc_init web-03
pbc_manifest app '{"API_URL": "{API_URL}"}'
NOTIFY_SOCKET=$T/notify.sock JOURNAL_STREAM=1:2 pbc_start e2big
pbc_wait_ends 1; ok $? "startup run"
big=$(head -c 4000 /dev/zero | tr '\0' v)
provbus-consumer -c "$C" pause >/dev/null	# one run for all 40
for i in $(seq -w 1 40); do pbc_ev provides us-east-1 "big-$i" api API_URL "http://$i/$big" 1; done | pbc_pub
pbc_wait_rows 40 "node LIKE 'big-%'"; ok $? "40 providers of 4 KB"
provbus-consumer -c "$C" resume >/dev/null
pbc_wait_ends 2 30; ok $? "a run with a 160 KB API_URL ended"
# the script's last line is written before it exits, so before the
# daemon reaps it and finishes the run's row
pbc_wait_eq 10 "ok:0" pbc_sql "SELECT status || ':' || exit_status FROM runs WHERE id = 2"
is "$(pbc_sql "SELECT status || ':' || exit_status FROM runs WHERE id = 2")" "ok:0" "it ran (no E2BIG), exit 0"
is "$(grep -c "^export API_URL='http://01/v" "$T/web-03/app.env")" 1 "the value is in the env file"
tr '\0' '\n' <"$RUNS.2.env" >"$T/env2"
is "$(grep -c '^API_URL=' "$T/env2")" 0 "... and not in the provision's environment"
is "$(grep '^PROVBUS_ENV_FILE=' "$T/env2")" "PROVBUS_ENV_FILE=$T/web-03/app.env" "PROVBUS_ENV_FILE names the env file"
like "$(cat "$T/e2big.log")" "warning: run id=2: API_URL is [0-9]+ bytes.*left out" "a warning in the log"
is "$(pbc_sql "SELECT COUNT(*) FROM notes WHERE kind = 'env-too-long' AND run_id = 2")" 1 "an audit note"
is "$(grep -c -e '^NOTIFY_SOCKET=' -e '^JOURNAL_STREAM=' -e '^WATCHDOG_' "$T/env2")" 0 \
	"NOTIFY_SOCKET and JOURNAL_STREAM are not passed to the provision"
is "$(grep -c '^<[0-9]>' "$T/e2big.log")" 0 "JOURNAL_STREAM is not stderr: no journald prefixes"
pbc_stop; is "$CRC" 0 "exit 0"

# --- an exec failure: its errno at the default log level and in the audit log
pbc_init web-04 us-east-1 '"provision": ["/nonexistent/provision"]'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pb_bg nox provbus-consumer -c "$C" run
CPID=$BG_PID
wait_for 30 pbc_connected; ok $? "started (default log level)"
wait_for 20 grep -q 'cannot execute' "$T/nox.log"
like "$(cat "$T/nox.log")" "error: run id=1: cannot execute /nonexistent/provision: No such file or directory" \
	"the default log says why the exec failed"
pbc_wait_eq 10 1 pbc_sql "SELECT COUNT(*) FROM notes WHERE kind = 'exec-failed' AND run_id = 1 AND text LIKE '%No such file%'"
ok $? "and so does the run's audit note"
like "$(pbc_sql "SELECT output_tail FROM runs WHERE id = 1")" "No such file" "and the run's output"
pbc_stop; is "$CRC" 0 "exit 0"
# --- -n: what a run would need
pbc_init web-05 us-east-1 '"public_only": true, "regions": ["us-east-1"]'
pbc_manifest app '{"API_URL": "{API_URL}"}'
out=$(provbus-consumer -c "$C" -n 2>&1); is "$?:$out" "0:configuration OK" "-n: configuration OK"
jq '.broker.password_file = "/nonexistent/password"' "$C" >"$T/nopw.json"
out=$(provbus-consumer -c "$T/nopw.json" -n 2>&1); is "$?" 78 "-n, password file missing: 78"
like "$out" "password_file /nonexistent/password" "... naming it"
jq '.consumer.env_file = "/nonexistent/dir/app.env"' "$C" >"$T/noenv.json"
out=$(provbus-consumer -c "$T/noenv.json" -n 2>&1); is "$?" 78 "-n, env file directory missing: 78"
like "$out" "env_file /nonexistent/dir/app.env" "... naming it"
pbc_manifest bad '{"API_URL": "{API_URL}"}' '"provides": {"BAD_URL": "http://{NOSUCH}:1"}'
out=$(provbus-consumer -c "$C" -n 2>&1); is "$?" 65 "-n, a provides template with an unknown placeholder: 65"
like "$out" "NOSUCH" "... naming the placeholder"
rm "$SD/bad.json"

# --- public_only: a private provider changes nothing, the log agrees
pbc_start pub
pbc_wait_ends 1; ok $? "startup run"
pbc_ev provides us-east-1 priv-1 api API_URL http://10.0.0.1:80 1 | pbc_pub
pbc_wait_rows 1 "node = 'priv-1'"; ok $? "a private provider's event"
is "$(pbc_sql "SELECT verdict || ':' || changed FROM events WHERE node = 'priv-1'")" "applied:0" "audited: applied, changed nothing"
wait_for 5 grep -q 'node=priv-1 .*changed=' "$T/pub.log"
like "$(grep 'node=priv-1 ' "$T/pub.log")" "changed=0" "the log says changed=0 too"

# --- a reload that only adds a region: no key added, the keys caught up
jq '.consumer.regions = ["us-east-1", "eu-west-1"]' "$C" >"$C.new" && mv "$C.new" "$C"
kill -HUP "$CPID"
wait_for 10 grep -q 'reloaded (SIGHUP)' "$T/pub.log"
like "$(grep 'reloaded (SIGHUP)' "$T/pub.log")" "added=0 dropped=0 catch_up=1 regions=2" "the reload log: no key added, one caught up, 2 regions"
pbc_stop; is "$CRC" 0 "exit 0"
# --- a throttle wait is logged and shown, with until when
pbc_init web-06 us-east-1 '"throttle": {"runs": 1, "per_s": 600}'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start thr
pbc_wait_ends 1; ok $? "startup run (the one run the throttle allows per 600 s)"
provbus-consumer -c "$C" provision-now >/dev/null
wait_for 10 grep -q 'run held by the throttle' "$T/thr.log"
like "$(grep 'run held by the throttle' "$T/thr.log")" "\(1 runs per 600 s\) until 20[0-9-]+T" "the log says the run waits for the throttle, until when"
like "$(pbc_status -r .throttled_until)" '^20[0-9-]+T' "status: throttled_until"
pbc_stop; is "$CRC" 0 "exit 0"
pb_done
