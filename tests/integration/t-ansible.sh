#!/usr/bin/env bash
# t-ansible: deploy/ansible (the example playbook and roles/provbus) run by
# ansible-playbook -c local on this machine against the test broker. The
# programs are this build's (provbus_install: false, provbus_bin_dir: PB_BIN;
# t-deb covers the package), every path is under the test's temp dir, and
# services are not managed (provbus_manage_services: false: no systemd as
# PID 1 here), so nothing is left running. Checked: the first run writes the
# configuration and manifests and announces after the play; a second run
# changes nothing and announces nothing; a broker that is away is a warning
# (exit 75, spooled), a configuration the broker refuses fails the play.
# Four plays of ansible-playbook (a minute or more each on a busy
# machine, seconds on an idle one):
# pb-timeout: 1200
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
command -v ansible-playbook >/dev/null || { echo "ok 1 - # SKIP no ansible-playbook (deploy/install-deps.sh --check)"; exit 0; }
pb_setup ansible

F=ans R=us-east-1 NODE=web-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null

export ANSIBLE_LOCAL_TEMP=$T/ansible/tmp ANSIBLE_REMOTE_TEMP=$T/ansible/tmp ANSIBLE_NOCOLOR=1 \
	ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_ROLES_PATH=$PB_ROOT/deploy/ansible/roles \
	ANSIBLE_HOME=$T/ansible ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 \
	ANSIBLE_PYTHON_INTERPRETER=auto_silent
E=$T/etc
# vars FILE BROKER-URL FEDERATION PORT [STATE]: the playbook's variables as JSON
vars() {
	cat >"$1" <<EOT
{"provbus_hosts": "localhost", "ansible_become": false,
 "provbus_install": false, "provbus_bin_dir": "$PB_BIN", "provbus_manage_services": false,
 "provbus_config_dir": "$E",
 "provbus_config": {"node": "$NODE", "federation": "$3", "region": "$R", "host": "127.0.0.1",
   "broker": {"urls": ["$2"], "heartbeat_s": 10}, "state_dir": "${5:-$T/state}",
   "consumer": {"env_file": "$T/state/app.env", "quiet_ms": 100}},
 "provbus_manifests": [
   {"id": "app-www", "local_port": $4, "provides": {"WWW_URL": "http://{HOST}:{PORT}/"},
    "requires": {"DATABASE_URL": "{PRIMARY_DATABASE_URL}"}, "run_list": ["nginx::default"]},
   {"id": "api", "local_port": 9000, "provides": {"API_URL": "http://{HOST}:{PORT}"}}]}
EOT
}
play() { # play VARS-FILE LOG
	ansible-playbook -c local -i localhost, -e "@$1" "$PB_ROOT/deploy/ansible/playbook.yml" >"$2" 2>&1
}
recap() { grep -o 'changed=[0-9]* .*failed=[0-9]*' "$1" | head -n 1; }

# --- first run: everything written, announced after the play
mkdir -p "$T/state"
vars "$T/v1.json" "$URL" "$F" 8080
play "$T/v1.json" "$T/play1.log"; rc=$?
is "$rc" 0 "first run succeeds"
[ $rc -eq 0 ] || sed 's/^/# /' "$T/play1.log" | tail -n 40
like "$(recap "$T/play1.log")" "changed=[1-9]" "first run changes things"
provbus-consumer -c "$E/provbus.json" -n >/dev/null 2>&1; ok $? "the written configuration and manifests pass provbus-consumer -n"
is "$(stat -c %a "$E/provbus.json")" 640 "the configuration is mode 0640"
is "$(jq -r .services_dir "$E/provbus.json")" "$E/services.d" "services_dir defaults to the role's"
is "$(cd "$E/services.d" && echo *.json)" "api.json app-www.json" "one file per manifest, named by id"
is "$(jq -r '.run_list[0]' "$E/services.d/app-www.json")" "nginx::default" "a manifest keeps the members provbus does not use (Chef's)"
A get cap --count 2 --timeout-ms "$(pb_slow 5000)" | jq -r .routing_key | sort >"$T/got1"
is "$(tr '\n' ' ' <"$T/got1")" "$R.provides.API_URL $R.provides.WWW_URL " "the handler announced both services after the play"
grep -q 'RUNNING HANDLER \[provbus : provbus publish\]' "$T/play1.log"; ok $? "through the handler"

# --- second run: no change, no announcement
play "$T/v1.json" "$T/play2.log"; rc=$?
is "$rc" 0 "second run succeeds"
like "$(recap "$T/play2.log")" "changed=0 .*failed=0" "second run reports changed=0"
grep -q 'RUNNING HANDLER' "$T/play2.log"; is $? 1 "second run: no handler ran"
is "$(A get cap --count 1 --timeout-ms 1000 | wc -l)" 0 "second run announced nothing"

# --- the broker is away: exit 75 is a warning, the play succeeds; and a
# manifest dropped from the variables is removed
vars "$T/v3a.json" "amqp://guest:guest@127.0.0.1:1/x" "$F" 8081
jq '.provbus_manifests |= map(select(.id != "api"))' "$T/v3a.json" >"$T/v3.json"
play "$T/v3.json" "$T/play3.log"; rc=$?
is "$rc" 0 "broker away: the play still succeeds"
grep -q 'WARNING provbus-publish exit 75' "$T/play3.log"; ok $? "with a warning that the events are spooled"
[ ! -e "$E/services.d/api.json" ]; ok $? "the manifest dropped from the variables is removed"
[ -e "$E/services.d/app-www.json" ]; ok $? "the other one stays"

# --- the broker refuses (no such exchange: exit 78): the play fails
# (a state of its own: the refused events stay in that outbox)
vars "$T/v4.json" "$URL" nosuchfed 8082 "$T/state4"
play "$T/v4.json" "$T/play4.log"; rc=$?
is "$rc" 2 "exchange missing (exit 78): the play fails"
grep -q 'provbus.nosuchfed' "$T/play4.log"; ok $? "and says which exchange"

pb_done
