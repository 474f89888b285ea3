#!/usr/bin/env bash
# t-deploy-rabbitmq: the sample broker of deploy/rabbitmq/ boots as shipped
# (docs/protocol.md) on the RabbitMQ deploy/install-deps.sh installs; only its
# paths, ports and node names are changed here. Then, the way
# docs/operations.md walks an operator through it:
#   - the definitions exported with --credentials are loaded at boot; the
#     administrator is made once with rabbitmqctl; apply sets the retention
#     policies through the management API, and changes them;
#   - a node logs in with its password file (over TLS, with its client
#     certificate), another with its certificate alone (SASL EXTERNAL, the
#     CN is the node name); a certificate for an unknown CN is refused (78);
#   - a node is added to the topology, the export written again, and the
#     broker restarted for real (stopped by PID, started again): every node
#     still logs in, and the consumer reconnects by itself.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"

rl_tmpdir
C=$RL_TMPDIR
SAMPLE=$PB_ROOT/deploy/rabbitmq
mkca() { # NAME CN
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.pem" -days 2 \
		-subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
}
mkcert() { # NAME CN SAN EKU
	openssl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$2" >/dev/null 2>&1 &&
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=%s\n' "$3" "$4" >"$C/$1.ext" &&
	openssl x509 -req -in "$C/$1.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
		-out "$C/$1.pem" -days 2 -extfile "$C/$1.ext" >/dev/null 2>&1
}
PUB=dep-pub CON=dep-con EXT=dep-ext NEW=dep-new
mkca ca "provbus deploy test CA" && mkcert server localhost DNS:localhost serverAuth &&
for n in $PUB $CON $EXT $NEW stranger; do mkcert "$n" "$n" "DNS:$n" clientAuth || exit 1; done
certs_ok=$?

topo() { # topo NODE...
	local nodes="" n
	for n in "$@"; do nodes="$nodes${nodes:+, }{\"name\": \"$n\", \"federation\": \"dep\", \"region\": \"r1\"}"; done
	cat >"$C/topology.json" <<EOT
{"vhost": "/provbus", "history_max_age": "${HIST_AGE:-7D}",
 "federations": {"dep": {"regions": ["r1"]}}, "nodes": [$nodes]}
EOT
}
topo $PUB $CON $EXT
"$PB_BIN/provbus-schema" export --credentials "$C/credentials" "$C/topology.json" >"$C/provbus-definitions.json"
export_ok=$?

# the sample, with this machine's paths, ports and node name
SP=$(rl_free_port) MP=$(rl_free_port)
TAG=pbdep$$ NODE1=pbdep$$-1@localhost
sed -e "s|rabbit@rmq-1|$NODE1|" -e '/classic_config\.nodes\.[23] /d' \
	-e "s|^listeners\.ssl\.default = 5671\$|listeners.ssl.default = 127.0.0.1:$SP|" \
	-e "s|/etc/rabbitmq/tls/|$C/|" -e "s|/etc/rabbitmq/provbus-definitions\.json|$C/provbus-definitions.json|" \
	-e "s|^management\.tcp\.port = 15672\$|management.tcp.port = $MP\nmanagement.tcp.ip = 127.0.0.1|" \
	"$SAMPLE/rabbitmq.conf" >"$C/rabbitmq.conf"
plugins=$(tr -d '[].\n ' <"$SAMPLE/enabled_plugins")
export PB_BROKER_TAG=$TAG
rl_own_broker --conf "$C/rabbitmq.conf" --plugins "$plugins"
unset PB_BROKER_TAG
rl_setup deploy
ok $certs_ok "CA, broker and node certificates made with openssl"
ok $export_ok "provbus-schema export --credentials"
is "$(diff <(sed 's/ *=.*//' "$SAMPLE/rabbitmq.conf" | grep -v '^#' | sort -u) \
	<(sed 's/ *=.*//' "$C/rabbitmq.conf" | grep -v '^#' | sort -u) | grep '^[<>]' | tr '\n' ' ')" \
	"< cluster_formation.classic_config.nodes.2 < cluster_formation.classic_config.nodes.3 > management.tcp.ip " \
	"the test's copy of the sample changes values only (and names one cluster node)"
pb_ctl status >/dev/null 2>&1; ok $? "the sample configuration boots ($NODE1)"
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SP"; ok $? "its amqps listener is up"
pb_ctl list_users 2>/dev/null | grep -q "^$PUB"; ok $? "the definitions were loaded at boot"
pb_ctl list_users 2>/dev/null | grep -q '^guest'; is $? 1 "no guest user"

# --- the administrator, made once (docs/operations.md)
ADMPW=adm-$RANDOM$RANDOM$RANDOM
echo "$ADMPW" | pb_ctl add_user admin >/dev/null 2>&1 && pb_ctl set_user_tags admin administrator >/dev/null &&
	pb_ctl set_permissions -p /provbus admin '.*' '.*' '.*' >/dev/null
ok $? "rabbitmqctl add_user admin, set_user_tags, set_permissions"
printf '%s\n' "$ADMPW" >"$C/admin.pw"; chmod 600 "$C/admin.pw"
TLS() { printf '{"ca": "%s/ca.pem", "cert": "%s/%s.pem", "key": "%s/%s.key"}' "$C" "$C" "$1" "$C" "$1"; }
nodecfg() { # nodecfg NAME USER-IN-URL PASSWORD-FILE CERT [CONSUMER]
	local pwf="" cons="" user=""
	[ -z "$2" ] || user="$2@"
	[ -z "$3" ] || pwf="\"password_file\": \"$3\","
	[ -z "${5:-}" ] || cons=", \"consumer\": $5"
	mkdir -p "$C/$1/services.d" "$C/$1/state"
	cat >"$C/$1.json" <<EOT
{"node": "$1", "federation": "dep", "region": "r1", "host": "127.0.0.1",
 "broker": {"urls": ["amqps://${user}localhost:$SP/%2Fprovbus"], $pwf
            "tls": $(TLS "$4"), "heartbeat_s": 5},
 "services_dir": "$C/$1/services.d", "state_dir": "$C/$1/state"$cons}
EOT
}
nodecfg admin admin "$C/admin.pw" $PUB
provbus-schema -c "$C/admin.json" --management-url "http://127.0.0.1:$MP" apply "$C/topology.json" >"$C/apply.out" 2>&1
is $? 0 "provbus-schema apply as admin, over TLS"
like "$(cat "$C/apply.out")" "policy provbus-history: max-age 7D" "... it sets the history retention policy"
provbus-schema -c "$C/admin.json" verify "$C/topology.json" >/dev/null 2>&1
is $? 0 "provbus-schema verify: everything is there"
HIST_AGE=3D topo $PUB $CON $EXT
provbus-schema -c "$C/admin.json" --management-url "http://127.0.0.1:$MP" apply "$C/topology.json" >"$C/apply2.out" 2>&1
is $? 0 "history_max_age changed to 3D: apply again"
like "$(pb_ctl list_policies -p /provbus 2>/dev/null | grep provbus-history)" '"max-age":"3D"' \
	"... the policy of the existing stream says 3D"

# --- nodes
svc() { printf '{"id": "svc", "environment": {"GEN": "%s"}, "provides": {"DEP_URL": "http://{NODE}/{GEN}"}}\n' "$2" >"$C/$1/services.d/svc.json"; }
nodecfg $PUB $PUB "$C/credentials/$PUB" $PUB; svc $PUB 1
nodecfg $EXT "" "" $EXT; svc $EXT 1
mkdir -p "$C/$CON/services.d"
printf '{"id": "app", "requires": {"DEP_URL": "{DEP_URL}"}}\n' >"$C/$CON/services.d/app.json"
nodecfg $CON $CON "$C/credentials/$CON" $CON "{\"provision\": [\"$T/provision.sh\"], \"quiet_ms\": 200, \"env_file\": \"$C/$CON/app.env\", \"lock_file\": \"$C/$CON/lock\"}"
DB=$C/$CON/state/audit.db
pb_bg consumer provbus-consumer -c "$C/$CON.json" -f run
CPID=$BG_PID
wait_for 40 rl_connected "$C/$CON.json"; ok $? "the consumer logs in with its password file"
applied() { [ "$(rl_count_rows "$DB" "verdict='applied' AND value='$1'")" -ge 1 ]; }
provbus-publish -c "$C/$PUB.json" provides >"$C/pub1.log" 2>&1
is $? 0 "a node publishes with its password file over TLS"
provbus-publish -c "$C/$EXT.json" provides >"$C/ext1.log" 2>&1
is $? 0 "a node publishes with its certificate alone (SASL EXTERNAL)"
wait_for 20 applied "http://$PUB/1"; ok $? "the consumer (verify_sender on) applies the password node's event"
wait_for 20 applied "http://$EXT/1"; ok $? "... and the certificate node's: its user_id is its node"
cp "$C/$EXT.json" "$C/stranger.json"
sed -i "s|$C/$EXT\.pem|$C/stranger.pem|; s|$C/$EXT\.key|$C/stranger.key|" "$C/stranger.json"
svc $EXT 2
provbus-publish -c "$C/stranger.json" provides >"$C/stranger.log" 2>&1
is $? 78 "a certificate whose CN is not a broker user: refused at login, exit 78"
like "$(cat "$C/stranger.log")" "SASL EXTERNAL.*CN" "... the message says to check the certificate's CN"
like "$(cat "$C/stranger.log")" "spooled to" "... the events spooled"

# --- a node added, the export written again, the broker restarted for real
topo $PUB $CON $EXT $NEW
provbus-schema export --credentials "$C/credentials" "$C/topology.json" >"$C/provbus-definitions.json"
ok $? "a node added: the definitions exported again (the file loaded at boot)"
"$PB_BROKER" stopnode "$PB_BROKER_DIR" 1
wait_for 30 bash -c "! '$PB_BIN/provbus-consumer' -c '$C/$CON.json' status 2>/dev/null | grep -q '\"connected\":true'"
ok $? "the consumer sees the broker gone"
"$PB_BROKER" restart "$PB_BROKER_DIR" 1 >"$C/restart.log" 2>&1
ok $? "the broker starts again, loading the new definitions"
svc $PUB 2
provbus-publish -c "$C/$PUB.json" provides >"$C/pub2.log" 2>&1
is $? 0 "after the restart, the old node still publishes with its password file"
nodecfg $NEW $NEW "$C/credentials/$NEW" $NEW; svc $NEW 1
provbus-publish -c "$C/$NEW.json" provides >"$C/new1.log" 2>&1
is $? 0 "... and the new node too"
provbus-publish -c "$C/$EXT.json" flush >"$C/ext2.log" 2>&1
is $? 0 "... and the certificate node"
wait_for 60 rl_connected "$C/$CON.json"; ok $? "the consumer reconnected by itself"
wait_for 30 applied "http://$PUB/2"; ok $? "... and applies what was published after the restart"
kill -0 "$CPID" 2>/dev/null; ok $? "... the same consumer process"
pb_done
