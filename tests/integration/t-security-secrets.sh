#!/usr/bin/env bash
# t-security-secrets: the broker password (from broker.password_file)
# never shows: not in the daemon's argv (/proc/PID/cmdline), its logs
# (debug level), `status` / `status --prometheus`, the audit db (and its
# WAL), state.json, the env file, the provision command's environment and
# output, the notify command's environment, the publisher's output and
# outbox, `provbus-audit export`, nor the broker's view of the connection;
# a group/world-readable password file is warned about; a wrong password is
# refused without printing either password.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup sec-secrets
U=ss-$$
PW="Sekr3t-$RANDOM$RANDOM-pw-$RANDOM"
rl_forget_user "$U"
pb_ctl add_user "$U" "$PW" >/dev/null && pb_ctl set_permissions -p "$VHOST" "$U" '.*' '.*' '.*' >/dev/null
ok $? "broker user $U with a random password"
V=$(urlenc "$VHOST")
UURL="amqp://$U@127.0.0.1:$PORT/$V"
printf '%s\n' "$PW" >"$T/password"; chmod 600 "$T/password"
printf '%s\n' "$PW" >"$T/password-open"; chmod 644 "$T/password-open"

rl_topology fed r1
rl_apply
# a provision command and a notify command that print their environment
cat >"$T/provision.sh" <<'EOT'
#!/bin/sh
env
EOT
chmod +x "$T/provision.sh"
rl_consumer c1 r1 "SEC_KEY" "\"notify\": [\"$T/provision.sh\"]" "[\"$UURL\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$T/password\", \"heartbeat_s\"|" "$T/c1.json"
pb_bg c1 provbus-consumer -c "$T/c1.json" -v -v -f run
pid=$BG_PID
rl_wait_idle c1 60
ok $? "the consumer connects with the password file"

rl_publisher p1 r1 "SEC_KEY" "[\"$UURL\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$T/password\", \"heartbeat_s\"|" "$T/p1.json"
provbus-publish -c "$T/p1.json" -v -v provides >"$T/p1.out" 2>"$T/p1.err"
is "$?" 0 "the publisher connects with the password file"
wait_for 20 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$T/c1/state/audit.db' \"SELECT count(*) FROM runs WHERE reason='change' AND status='ok'\")\" -ge 1 ]"
ok $? "an event went through and a provision run (printing its environment) finished"
sleep 1

# where the password must not be
has_pw() { grep -aqF -- "$PW" "$@" 2>/dev/null; }
tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline.txt"
! has_pw "$T/cmdline.txt"; ok $? "not in the daemon's argv: $(cat "$T/cmdline.txt" | cut -c1-120)"
provbus-consumer -c "$T/c1.json" status >"$T/status.json" 2>&1
provbus-consumer -c "$T/c1.json" status --prometheus >"$T/status.prom" 2>&1
like "$(cat "$T/status.json")" "\"connected\": *true" "status works"
! has_pw "$T/status.json" "$T/status.prom"; ok $? "not in status nor status --prometheus"
like "$(cat "$T/status.json")" "$U@127\.0\.0\.1" "status shows the broker URL with the user only"
! has_pw "$T/c1.log"; ok $? "not in the daemon's log (-v -v, $(wc -l <"$T/c1.log") lines)"
! has_pw "$T/p1.out" "$T/p1.err"; ok $? "not in the publisher's output (-v -v)"
! has_pw "$T"/c1/state/audit.db*; ok $? "not in the audit db files (db, -wal)"
sqlite3 "$T/c1/state/audit.db" .dump >"$T/audit.dump" 2>/dev/null
! has_pw "$T/audit.dump"; ok $? "not in the audit db's content (sqlite3 .dump, $(wc -c <"$T/audit.dump") bytes)"
# blobs are dumped in hex: look into the run output tails with SQL
blob_q() { rl_sql "$T/c1/state/audit.db" "SELECT count(*) FROM runs WHERE instr(output_tail, CAST('$1' AS BLOB)) > 0"; }
is "$(blob_q "$PW")" 0 "not in the provision runs' output tails"
[ "$(blob_q PROVBUS_RUN_ID)" -ge 1 ]; ok $? "... which do hold the printed environment"
! has_pw "$T/c1/state/state.json" "$T/c1/app.env"; ok $? "not in state.json nor the env file"
! has_pw "$T"/p1/state/outbox.db*; ok $? "not in the publisher's outbox"
provbus-audit -d "$T/c1/state/audit.db" export --jsonl >"$T/export.jsonl" 2>&1
! has_pw "$T/export.jsonl"; ok $? "not in provbus-audit export"
pb_ctl list_connections -p "$VHOST" user client_properties >"$T/conns.txt" 2>&1
! has_pw "$T/conns.txt"; ok $? "not in what the broker shows of the connections"
! grep -aqF -- "$PW" "/proc/$pid/environ"; ok $? "not in the daemon's environment"
! has_pw "$T"/c1/state/*.json "$T"/c1/state/*.sock 2>/dev/null; ok $? "no other state file holds it"
leaks=$(grep -rlaF --exclude=password --exclude=password-open -- "$PW" "$T" 2>/dev/null | tr '\n' ' ')
is "$leaks" "" "no file of the test tree holds it, but the password files"

# a world-readable password file is warned about
rl_consumer c2 r1 "SEC_KEY" "" "[\"$UURL\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$T/password-open\", \"heartbeat_s\"|" "$T/c2.json"
pb_bg c2 provbus-consumer -c "$T/c2.json" -f run
rl_wait_connected c2 30
ok $? "a consumer with a 0644 password file still connects"
like "$(grep -i 'password' "$T/c2.log" | tr '\n' ' ')" "password-open.*(readable|mode|permission)|(readable|mode|permission).*password-open" \
	"... and warns that the password file is readable by others"
rl_publisher p2 r1 "SEC_KEY" "[\"$UURL\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$T/password-open\", \"heartbeat_s\"|" "$T/p2.json"
provbus-publish -c "$T/p2.json" provides >"$T/p2.log" 2>&1
like "$(grep -i 'password' "$T/p2.log" | tr '\n' ' ')" "(readable|mode|permission)" "the publisher warns too"
! has_pw "$T/c2.log" "$T/p2.log"; ok $? "the warnings do not print the password"

# a wrong password: refused, neither password printed
printf 'wrong-%s\n' "$RANDOM$RANDOM" >"$T/password-bad"; chmod 600 "$T/password-bad"
rl_publisher p3 r1 "SEC_KEY" "[\"$UURL\"]"
sed -i "s|\"heartbeat_s\"|\"password_file\": \"$T/password-bad\", \"heartbeat_s\"|" "$T/p3.json"
provbus-publish -c "$T/p3.json" --timeout 5 provides >"$T/p3.log" 2>&1
rc=$?
[ $rc -ne 0 ]; ok $? "a wrong password is refused (exit $rc)"
! grep -aqF -- "$(tr -d '\n' <"$T/password-bad")" "$T/p3.log" && ! has_pw "$T/p3.log"
ok $? "... without printing a password: $(tr '\n' ' ' <"$T/p3.log" | cut -c1-160)"
pb_done
