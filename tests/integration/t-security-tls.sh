#!/usr/bin/env bash
# t-security-tls: AMQP over TLS with verification on (provbus.json(5) broker.tls).
# Makes a CA, a broker certificate for localhost, a client certificate, a
# server certificate for another host name (same CA) and a second CA;
# starts a private broker with an amqps listener on loopback that requires
# a client certificate, and shows:
#   - provbus-publish (and provbus-consumer) connect over amqps://localhost
#     with the CA, the client certificate and hostname verification;
#   - 127.0.0.1 (a name the certificate does not carry) is refused, and
#     accepted only with verify_hostname false — the refusal was the name;
#   - a server certificate for another host name is refused;
#   - a wrong CA is refused; no client certificate is refused by the broker;
#   - nothing falls back to plain text: given amqps:// the programs only
#     ever send TLS records (recorded by a listener), and amqps:// aimed at
#     the broker's plain AMQP port fails instead of talking plain AMQP.
#   - provbus-fleet given amqps:// never uses the stream protocol (plain
#     TCP): nothing reaches the stream port it was given.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"

rl_tmpdir
C=$RL_TMPDIR
mkca() { # NAME CN
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.pem" -days 2 \
		-subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
}
mkcert() { # NAME CN CA SAN EKU
	openssl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$2" >/dev/null 2>&1 &&
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=%s\n' "$4" "$5" >"$C/$1.ext" &&
	openssl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" -CAcreateserial \
		-out "$C/$1.pem" -days 2 -extfile "$C/$1.ext" >/dev/null 2>&1
}
mkca ca "provbus test CA" && mkca otherca "another CA" &&
mkcert server localhost ca DNS:localhost serverAuth &&
mkcert client tls-pub ca DNS:tls-pub clientAuth &&
mkcert otherhost otherhost.example ca DNS:otherhost.example serverAuth
certs_ok=$?

SP=$(rl_free_port)
cat >"$C/ssl.conf" <<EOT
listeners.ssl.default = 127.0.0.1:$SP
ssl_options.cacertfile = $C/ca.pem
ssl_options.certfile = $C/server.pem
ssl_options.keyfile = $C/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
EOT
rl_own_broker --conf-extra "$C/ssl.conf"
rl_setup sec-tls
ok $certs_ok "CA, broker (localhost), client and other-host certificates made with openssl"
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SP"
ok $? "the broker listens for amqps on 127.0.0.1:$SP"

rl_topology fed r1
rl_apply
pbtest-amqp "$URL" queue rl-check --durable --bind provbus.fed:'#' >/dev/null
V=$(urlenc "$VHOST")

# tls_pub NAME URL TLS-JSON: a publisher node config $T/NAME.json
tls_pub() {
	rl_publisher "$1" r1 "TLS_KEY" "[\"$2\"]"
	if [ -n "$3" ]; then
		sed -i "s|\"heartbeat_s\"|\"tls\": $3, \"heartbeat_s\"|" "$T/$1.json"
	fi
}
good_tls="{\"ca\": \"$C/ca.pem\", \"cert\": \"$C/client.pem\", \"key\": \"$C/client.key\", \"verify_hostname\": true}"
checked=0
check_count() { pbtest-amqp "$URL" count rl-check 2>/dev/null; }

# --- verification on, right name: it works
tls_pub p-good "amqps://guest:guest@localhost:$SP/$V" "$good_tls"
provbus-publish -c "$T/p-good.json" --timeout 5 provides >"$T/p-good.log" 2>&1
is "$?" 0 "provbus-publish over amqps://localhost with CA, client certificate and hostname check: exit 0"
like "$(cat "$T/p-good.log")" "amqps://guest@localhost:$SP" "it names the amqps broker it used (no password)"
checked=$((checked + 1))
is "$(check_count)" "$checked" "the event reached the broker"

# shown FILE: FILE's text on one line, without the temp dir and the vhost
# (their names hold "tls": a pattern must not match them by accident)
shown() { tr '\n' ' ' <"$1" | sed "s|$T||g; s|$V||g; s|$VHOST||g"; }
HOSTNAME_RE='SSL hostname verification failed'
PEER_RE='SSL peer cert verification failed'
# refused NAME DESC ERE: the run must fail with 78 (provbus-publish(1): a
# TLS setup that cannot work does not heal by waiting), keep the events
# spooled, deliver nothing, and say why and what to fix
refused() {
	local name=$1 desc=$2 re=$3 rc
	provbus-publish -c "$T/$name.json" --timeout 5 provides >"$T/$name.log" 2>&1
	rc=$?
	is "$rc" 78 "$desc: refused as a configuration error (exit 78)"
	like "$(shown "$T/$name.log")" "$re" "$desc: the message names the TLS verification that failed"
	like "$(shown "$T/$name.log")" "fix (the URL's host|broker\.tls\.ca)" "$desc: ... and what to fix"
	like "$(shown "$T/$name.log")" "spooled to" "$desc: the events are still spooled"
	is "$(check_count)" "$checked" "$desc: nothing delivered"
}

# --- 127.0.0.1 is not a name in the broker's certificate
tls_pub p-ip "amqps://guest:guest@127.0.0.1:$SP/$V" "$good_tls"
refused p-ip "a certificate that does not name the host (127.0.0.1 vs localhost)" "$HOSTNAME_RE"
tls_pub p-ip-noverify "amqps://guest:guest@127.0.0.1:$SP/$V" \
	"{\"ca\": \"$C/ca.pem\", \"cert\": \"$C/client.pem\", \"key\": \"$C/client.key\", \"verify_hostname\": false}"
provbus-publish -c "$T/p-ip-noverify.json" --timeout 5 provides >"$T/p-ip-noverify.log" 2>&1
is "$?" 0 "the same with verify_hostname false succeeds: the refusal above was the host name"
checked=$((checked + 1))

# --- a server certificate (signed by the right CA) for another host name
OP=$(rl_free_port)
openssl s_server -accept "127.0.0.1:$OP" -cert "$C/otherhost.pem" -key "$C/otherhost.key" \
	-CAfile "$C/ca.pem" -quiet </dev/null >"$T/s_server.log" 2>&1 &
rl_track_pid $!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$OP"
tls_pub p-other "amqps://guest:guest@localhost:$OP/$V" "$good_tls"
refused p-other "a server certificate for otherhost.example" "$HOSTNAME_RE"

# --- a wrong CA
tls_pub p-ca "amqps://guest:guest@localhost:$SP/$V" \
	"{\"ca\": \"$C/otherca.pem\", \"cert\": \"$C/client.pem\", \"key\": \"$C/client.key\", \"verify_hostname\": true}"
refused p-ca "a CA that did not sign the broker's certificate" "$PEER_RE"

# --- no client certificate: the broker requires one
tls_pub p-nocert "amqps://guest:guest@localhost:$SP/$V" "{\"ca\": \"$C/ca.pem\", \"verify_hostname\": true}"
provbus-publish -c "$T/p-nocert.json" --timeout 5 provides >"$T/p-nocert.log" 2>&1
rc=$?
is $rc 78 "no client certificate: refused by the broker, a configuration error (exit 78)"
like "$(tr '\n' ' ' <"$T/p-nocert.log")" "client certificate.*spooled to" "... saying so, and the events spooled"
is "$(check_count)" "$checked" "... nothing delivered"

# --- no fall back to plain text
# (a) amqps:// aimed at the broker's plain AMQP port
tls_pub p-plainport "amqps://guest:guest@localhost:$PORT/$V" "$good_tls"
provbus-publish -c "$T/p-plainport.json" --timeout 5 provides >"$T/p-plainport.log" 2>&1
rc=$?
[ $rc -ne 0 ]; ok $? "amqps:// to the plain AMQP port fails (exit $rc) instead of speaking plain AMQP"
is "$(check_count)" "$checked" "... nothing delivered"
# (b) what goes on the wire: a listener records every byte each connection sends
RP=$(rl_free_port)
mkdir -p "$T/wire"
socat "TCP-LISTEN:$RP,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"timeout 5 cat >$T/wire/c.\$\$" >/dev/null 2>&1 &
rl_track_pid $!
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RP"
# two amqps URLs on the recorder: every attempt is seen; a plain-text
# fallback would send "AMQP" + 0 0 9 1
tls_pub p-wire "amqps://guest:guest@localhost:$RP/$V" "$good_tls"
sed -i "s|\"urls\": \[|\"urls\": [\"amqps://guest:guest@127.0.0.1:$RP/$V\", |" "$T/p-wire.json"
timeout 30 provbus-publish -c "$T/p-wire.json" --timeout 2 provides >"$T/p-wire.log" 2>&1
rc=$?
[ $rc -ne 0 ]; ok $? "amqps:// to a silent listener fails (exit $rc)"
sleep 1
conns=$(ls "$T/wire" | wc -l)
[ "$conns" -ge 1 ]; ok $? "the listener saw $conns connection(s)"
tlsrec=0 plain=0
for f in "$T"/wire/c.*; do
	[ -s "$f" ] || continue
	[ "$(head -c 2 "$f" | od -An -tx1 | tr -d ' ')" = 1603 ] && tlsrec=$((tlsrec + 1))
	grep -qa 'AMQP' "$f" && plain=$((plain + 1))
done
[ $tlsrec -ge 1 ]; ok $? "each attempt opened with a TLS handshake record ($tlsrec)"
is "$plain" 0 "no AMQP protocol header in plain text on the wire"

# --- provbus-fleet: with an amqps:// URL, never the stream protocol (its
# SASL PLAIN would carry the password in clear): --stream-port aimed at
# the recorder, which must see no connection; with a plain amqp:// URL the
# same call does connect there (the check can fail), then falls back
if [ -x "$PB_BIN/provbus-fleet" ]; then
	n0=$(ls "$T/wire" | wc -l)
	XDG_CACHE_HOME=$T/fleet-cache timeout 60 provbus-fleet -v -c "$T/p-good.json" --stream-port "$RP" \
		--no-cache nodes >"$T/fleet-tls.out" 2>"$T/fleet-tls.err"
	is "$?" 0 "provbus-fleet nodes over amqps://localhost (the config's CA and client certificate): exit 0"
	like "$(cat "$T/fleet-tls.err")" "stream protocol not used with an amqps:// URL" \
		"... saying it reads over AMQP 0-9-1, not the stream protocol"
	sleep 1
	is "$(ls "$T/wire" | wc -l)" "$n0" "... and nothing connected to the stream port given"
	XDG_CACHE_HOME=$T/fleet-cache timeout 60 provbus-fleet -c "$T/p-good.json" --url "$URL" \
		--stream-port "$RP" --no-cache nodes >/dev/null 2>"$T/fleet-plain.err"
	is "$?" 0 "the same over amqp:// (plain): exit 0, after falling back"
	sleep 1
	[ "$(ls "$T/wire" | wc -l)" -gt "$n0" ]
	ok $? "... having tried the stream port first (the recorder saw it)"
else
	for d in exit saying nothing plain tried; do ok 1 "provbus-fleet not built: amqps rule not tested ($d)"; done
fi

# --- the consumer over amqps
if [ -x "$PB_BIN/provbus-consumer" ]; then
	rl_consumer c-tls r1 "TLS_KEY" "" "[\"amqps://guest:guest@localhost:$SP/$V\"]"
	sed -i "s|\"heartbeat_s\"|\"tls\": $good_tls, \"heartbeat_s\"|" "$T/c-tls.json"
	pb_bg c-tls provbus-consumer -c "$T/c-tls.json" -f run
	wait_for 30 rl_connected "$T/c-tls.json"
	ok $? "provbus-consumer connects over amqps with verification"
	st=$(rl_status "$T/c-tls.json")
	like "$st" "amqps://guest@localhost:$SP" "its status names the amqps broker"
	rl_set_gen p-good 2
	provbus-publish -c "$T/p-good.json" --timeout 5 provides >/dev/null 2>&1
	wait_for 20 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$T/c-tls/state/audit.db' \"SELECT count(*) FROM events WHERE verdict='applied' AND value LIKE '%/2'\")\" -ge 1 ]"
	ok $? "an event sent over amqps is received and applied by the consumer over amqps"
	# the same consumer with a wrong CA never connects, and says why
	rl_consumer c-badca r1 "TLS_KEY" "" "[\"amqps://guest:guest@localhost:$SP/$V\"]"
	sed -i "s|\"heartbeat_s\"|\"tls\": {\"ca\": \"$C/otherca.pem\", \"cert\": \"$C/client.pem\", \"key\": \"$C/client.key\"}, \"heartbeat_s\"|" "$T/c-badca.json"
	# -v: a repeated failure is logged at info level (the first one, and then
	# one a minute, at warning level)
	pb_bg c-badca provbus-consumer -v -c "$T/c-badca.json" -f run
	# two refused attempts (the second after a backoff): it keeps trying
	wait_for 20 bash -c "[ \$(grep -c '$PEER_RE' '$T/c-badca.log') -ge 2 ]"
	ok $? "a consumer with a wrong CA keeps trying, and its log names the TLS verification that failed"
	is "$(rl_json_get "$(rl_status "$T/c-badca.json")" .connected)" false "... and stays disconnected"
else
	ok 1 "provbus-consumer not built: consumer over amqps not tested"
fi
pb_done
