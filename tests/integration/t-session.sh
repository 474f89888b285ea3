#!/usr/bin/env bash
# lib/session.c against a real broker (through pbtest-amqp's "session"
# command and provbus-schema): failover over a URL list, redacted URLs,
# password files, refused logins, check_exchange and the channel after a
# 404, TLS configuration errors.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup session
pb_topology fs r1
pb_apply >/dev/null || { echo "not ok - provbus-schema apply"; exit 1; }

VH=$(urlenc "$VHOST")
CLOSED="amqp://guest:guest@127.0.0.1:1/$VH"        # port 1 on loopback: closed
GOOD="$URL"
S() { pbtest-amqp "$@" session --connect-timeout-ms 2000; }

# --- failover: the first URL is a closed port, the second works
out=$(S "$CLOSED,$GOOD" 2>"$T/err"); rc=$?
is $rc 0 "connects through the second URL when the first is closed"
is "$out" "connected amqp://guest@127.0.0.1:$PORT/$VH $VHOST" "reports the URL it connected to, redacted, and the vhost"
like "$(cat "$T/err")" "cannot connect url=amqp://guest@127\.0\.0\.1:1/$VH error=\"connection refused\"" "logs why the first URL failed, redacted"
grep -q 'guest:guest' "$T/err"; is $? 1 "no password in the log"

# --- every URL down: EX_UNAVAILABLE listing each
out=$(S "$CLOSED,amqp://guest:guest@127.0.0.1:2/$VH" 2>"$T/err"); rc=$?
is $rc 69 "no URL reachable: exit 69"
like "$(cat "$T/err")" "cannot connect to the broker: amqp://guest@127\.0\.0\.1:1/$VH: connection refused; amqp://guest@127\.0\.0\.1:2/$VH: connection refused" "lists each URL and its error"
grep -q 'guest:guest' "$T/err"; is $? 1 "no password in the error"

# --- refused login and vhost
S "amqp://guest:not-the-password@127.0.0.1:$PORT/$VH" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a refused login: exit 78 (a wrong password does not heal by waiting)"
like "$(cat "$T/err")" "login as guest to vhost $VHOST refused: 403 ACCESS_REFUSED" "the refusal names user, vhost and the broker's reply"
grep -q 'not-the-password' "$T/err"; is $? 1 "the password is not shown"
S "$BROKER_URL/$(urlenc "/no-such-$VHOST")" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a vhost that does not exist: exit 78 (a deployment error)"
like "$(cat "$T/err")" "530 NOT_ALLOWED - vhost /no-such-$VHOST not found" "the missing vhost is named"

# --- password file
printf 'guest\n' >"$T/pw"; chmod 600 "$T/pw"
NOPW="amqp://guest@127.0.0.1:$PORT/$VH"
out=$(S "$NOPW" --password-file "$T/pw" 2>"$T/err"); rc=$?
is $rc 0 "password from a password file"
grep -q 'warning' "$T/err"; is $? 1 "a 0600 password file gives no warning"
chmod 644 "$T/pw"
S "$NOPW" --password-file "$T/pw" >/dev/null 2>"$T/err"; rc=$?
is $rc 0 "a world-readable password file still works"
like "$(cat "$T/err")" "warning: password file $T/pw is accessible by group or others .*chmod 600 $T/pw" "but warns, naming the file and the fix"
S "$NOPW" --password-file "$T/missing-pw" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a missing password file: exit 78"
like "$(cat "$T/err")" "password file $T/missing-pw: No such file or directory" "names the missing file"
S "$NOPW" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a user without password and no password file: exit 78"

# --- check_exchange: present, missing (404 closes the channel), present again
out=$(S "$GOOD" --check-exchange provbus.fs --check-exchange provbus.nope --check-exchange provbus.dlx 2>"$T/err"); rc=$?
is $rc 78 "a missing exchange: exit 78"
like "$(cat "$T/err")" "exchange provbus\.nope not found: run provbus-schema apply" "the missing exchange is named with the fix"
is "$(echo "$out" | grep -c exists)" 2 "the channel works again after the 404 (re-opened)"

# --- channel 1 after the broker closed it: every way back works, no stray frames
out=$(S "$GOOD" --reopen-test 2>"$T/err"); rc=$?
is $rc 0 "reopen after a channel.close (read by the caller, unread, none)"
is "$(echo "$out" | grep -c '^reopen ok')" 3 "all three reopen cases pass"
[ $rc -eq 0 ] || diag "$(cat "$T/err")"

# --- provbus-schema through a node configuration with a password file
chmod 600 "$T/pw"
cat >"$T/provbus.json" <<EOT
{"node": "n1", "federation": "fs", "region": "r1", "host": "127.0.0.1",
 "broker": {"urls": ["amqp://guest@127.0.0.1:$PORT/$VH"], "password_file": "$T/pw", "heartbeat_s": 5},
 "services_dir": "$T/services.d", "state_dir": "$T/state"}
EOT
provbus-schema -c "$T/provbus.json" -vv verify "$T/topology.json" >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "provbus-schema verify with the broker and password of the node configuration"
grep -q 'guest:' "$T/err" "$T/out"; is $? 1 "no password in its verbose output"
PROVBUS_CONFIG="$T/provbus.json" provbus-schema verify "$T/topology.json" >/dev/null 2>&1
is $? 0 "the configuration from \$PROVBUS_CONFIG"

# an operator's --url without password, no configuration, no terminal
setsid -w provbus-schema --url "amqp://guest@127.0.0.1:$PORT" verify "$T/topology.json" </dev/null >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "--url without password, no config, no terminal: exit 78"
like "$(cat "$T/err")" "has no password: give -c FILE" "says where the password can come from"
PROVBUS_CONFIG="$T/provbus.json" provbus-schema --url "amqp://guest@127.0.0.1:$PORT" verify "$T/topology.json" >/dev/null 2>&1
is $? 0 "--url without password takes the configuration's password file"

# --- TLS: a missing CA file is a configuration error naming it
cat >"$T/tls.json" <<EOT
{"node": "n1", "federation": "fs", "region": "r1", "host": "127.0.0.1",
 "broker": {"urls": ["amqps://guest:guest@127.0.0.1:$PORT/$VH"], "tls": {"ca": "$T/no-ca.pem"}},
 "services_dir": "$T/services.d", "state_dir": "$T/state"}
EOT
provbus-schema -c "$T/tls.json" verify "$T/topology.json" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a missing TLS CA file: exit 78"
like "$(cat "$T/err")" "broker\.tls\.ca $T/no-ca\.pem" "names the CA file"
# amqps to a plain AMQP port: the handshake fails, the broker is unavailable
sed "s#$T/no-ca.pem#/etc/ssl/certs/ca-certificates.crt#" "$T/tls.json" >"$T/tls2.json"
provbus-schema -c "$T/tls2.json" verify "$T/topology.json" >/dev/null 2>"$T/err"; rc=$?
is $rc 69 "a TLS handshake with a plain port fails: exit 69"
grep -q 'guest:guest' "$T/err"; is $? 1 "no password in the TLS error"

# --- TLS against a broker with a TLS listener: peer and hostname checks
if ! command -v openssl >/dev/null; then
	diag "skipping the TLS broker checks: no openssl"
	pb_done; exit
fi
TD="$T/tls"; mkdir -p "$TD"
gen() { openssl "$@" >/dev/null 2>&1; }
gen req -x509 -newkey rsa:2048 -nodes -keyout "$TD/ca.key" -out "$TD/ca.pem" -days 2 -subj /CN=pbtest-ca &&
gen req -newkey rsa:2048 -nodes -keyout "$TD/server.key" -out "$TD/server.csr" -subj /CN=localhost &&
printf 'subjectAltName=DNS:localhost\n' >"$TD/ext.cnf" &&
gen x509 -req -in "$TD/server.csr" -CA "$TD/ca.pem" -CAkey "$TD/ca.key" -CAcreateserial \
	-out "$TD/server.pem" -days 2 -extfile "$TD/ext.cnf" &&
gen req -x509 -newkey rsa:2048 -nodes -keyout "$TD/other.key" -out "$TD/other-ca.pem" -days 2 -subj /CN=other-ca
ok $? "made a CA, a server certificate for localhost, and another CA"
chmod 644 "$TD"/*.key	# the broker runs as us; it reads them
TLS_PORT=$(pb_free_port)
cat >"$TD/tls.conf" <<EOT
listeners.ssl.default = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $TD/ca.pem
ssl_options.certfile = $TD/server.pem
ssl_options.keyfile = $TD/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOT
TB=""
cleanup_tls() { [ -z "$TB" ] || "$PB_BROKER" stop "$TB" >/dev/null 2>&1; _pb_cleanup; }
trap cleanup_tls EXIT
# (a start can fail on a busy machine, an Erlang distribution port taken
# meanwhile: try again, with a fresh directory)
for try in 1 2 3; do
	# (from $TD: a failed start leaves its erl_crash.dump in the cwd)
	(cd "$TD" && ERL_CRASH_DUMP="$TD/erl_crash.dump" "$PB_BROKER" start "$TD/broker$try" \
		--conf-extra "$TD/tls.conf" >/dev/null 2>"$T/tls-start.err") &&
		{ TB="$TD/broker$try"; break; }
	"$PB_BROKER" stop "$TD/broker$try" >/dev/null 2>&1
	diag "TLS broker start $try failed: $(grep -m1 -o 'nodistribution\|eaddrinuse\|[a-z_]*error[a-z_]*' "$T/tls-start.err")"
done
[ -n "${TB:-}" ]; ok $? "started a broker with a TLS listener"
"$PB_BROKER" ctl "$TB" add_vhost /tls >/dev/null &&
"$PB_BROKER" ctl "$TB" set_permissions -p /tls guest '.*' '.*' '.*' >/dev/null
printf '{"vhost": "/tls", "federations": {"ft": {"regions": ["r1"]}}}\n' >"$TD/topo.json"
tls_cfg() { # HOST TLS-JSON
	cat >"$TD/cfg.json" <<EOT
{"node": "n1", "federation": "ft", "region": "r1", "host": "127.0.0.1",
 "broker": {"urls": ["amqps://guest:guest@$1:$TLS_PORT/%2Ftls"], "tls": $2},
 "services_dir": "$TD/services.d", "state_dir": "$TD/state"}
EOT
}
tls_cfg localhost "{\"ca\": \"$TD/ca.pem\"}"
out=$(provbus-schema -c "$TD/cfg.json" apply "$TD/topo.json" 2>"$T/err"); rc=$?
is $rc 0 "amqps with the right CA and host name: apply works"
like "$out" "created exchange provbus\.ft" "apply over TLS created the objects"
tls_cfg 127.0.0.1 "{\"ca\": \"$TD/ca.pem\"}"
provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a certificate for another host name is refused: 78, a TLS setup that cannot work"
like "$(cat "$T/err")" "amqps://guest@127\.0\.0\.1:$TLS_PORT/%2Ftls: SSL hostname verification failed" "the hostname failure is named, redacted"
tls_cfg 127.0.0.1 "{\"ca\": \"$TD/ca.pem\", \"verify_hostname\": false}"
provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"
is $? 0 "verify_hostname false accepts it"
tls_cfg localhost "{\"ca\": \"$TD/other-ca.pem\"}"
provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a server certificate from another CA is refused: 78"
like "$(cat "$T/err")" "SSL peer cert verification failed" "the peer verification failure is named"
# without broker.tls.ca: the system's CA bundle (rabbitmq-c loads none by itself)
tls_cfg localhost '{"verify_hostname": true}'
SSL_CERT_FILE="$TD/ca.pem" provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"
is $? 0 "no tls.ca: the system bundle (here \$SSL_CERT_FILE) verifies the broker"
SSL_CERT_FILE="$TD/other-ca.pem" provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"
is $? 78 "no tls.ca: a bundle without the broker's CA refuses it: 78"
tls_cfg localhost "{\"ca\": \"$TD/ca.pem\", \"cert\": \"$TD/server.pem\", \"key\": \"$TD/server.key\"}"
provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"
is $? 0 "a client certificate and key are loaded and presented"
tls_cfg localhost "{\"ca\": \"$TD/ca.pem\", \"cert\": \"$TD/server.pem\", \"key\": \"$TD/no.key\"}"
provbus-schema -c "$TD/cfg.json" verify "$TD/topo.json" >/dev/null 2>"$T/err"; rc=$?
is $rc 78 "a missing client key: exit 78"
like "$(cat "$T/err")" "broker\.tls\.key $TD/no\.key" "names the key file"

pb_done
