#!/usr/bin/env bash
# t-walkthrough: docs/operations.md section 6 ("A test fleet from nothing")
# run as written. Every ```sh block after a "<!-- run on HOST... -->" line
# runs, in order, once per HOST, under `bash -e`, with only these changes
# for one machine:
#   - each host's /etc/provbus, /var/lib/provbus and /root/lab live under
#     $T/HOST; rmq-1:5672 is the test broker; PROVBUS_CONFIG names the
#     host's configuration (the default path on a real node)
#   - dpkg -i creates the folders the package would (the programs are this
#     build's: t-deb installs the real package), apt-get is a no-op (the
#     broker is installed), make deb is checked with make -n (t-deb builds
#     it), hostname says HOST, rabbitmqctl is the test broker's
#   - systemctl enable --now provbus-consumer starts the daemon in the
#     background (stopped by PID at the end)
# Then each consumer's env file holds the provider's API_URL.
# Before provbus-schema has export --credentials, a stand-in makes the
# passwords (openssl rand) and sets them after the import.
# A dozen rabbitmqctl runs (each starts an Erlang VM) are slow on a busy
# machine:
# pb-timeout: 600
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup walk
DOC=$PB_ROOT/docs/operations.md

lab_cleanup() {
	local u
	for u in lab-api-01 lab-www-01 lab-www-02; do pb_ctl delete_user "$u" >/dev/null 2>&1; done
	pb_ctl delete_vhost /lab >/dev/null 2>&1
}
pb_ctl delete_vhost /lab >/dev/null 2>&1	# left by an earlier run that was killed
trap '_pb_cleanup_walk' EXIT
_pb_cleanup_walk() {
	local f
	for f in "$T"/*/consumer.pid; do [ -f "$f" ] && _pb_pids+=("$(cat "$f")"); done
	_pb_cleanup
	lab_cleanup
}

SHIM=0
provbus-schema --help 2>&1 | grep -q -- --credentials || SHIM=1
[ $SHIM -eq 0 ] || diag "provbus-schema has no export --credentials yet: a stand-in makes the passwords"

# --- the blocks: HOSTS<TAB>first line number, bodies in $T/block.N
awk -v dir="$T" '
	/^## 6\. / { on = 1 }
	on && /^## [0-9]/ && !/^## 6\. / { on = 0 }
	!on { next }
	/^<!-- run on / { hosts = $0; sub(/^<!-- run on /, "", hosts); sub(/ -->$/, "", hosts); next }
	/^```sh$/ && hosts != "" { n++; f = dir "/block." n; printf "%s\t%d\n", hosts, NR > (dir "/blocks"); inb = 1; next }
	/^```$/ && inb { inb = 0; hosts = ""; close(f); next }
	inb { print > f }
' "$DOC"
nblocks=$(wc -l <"$T/blocks")
[ "$nblocks" -ge 6 ]; ok $? "section 6 has its command blocks ($nblocks)"

# the stand-ins, sourced by every block
cat >"$T/prelude.sh" <<EOT
PB_ROOT='$PB_ROOT'; PB_BROKER='$PB_BROKER'; PB_BROKER_DIR='$PB_BROKER_DIR'; SHIM=$SHIM; T='$T'
EOT
cat >>"$T/prelude.sh" <<'EOT'
dpkg() { mkdir -p "$ETC/services.d" "$STATE"; echo "(dpkg $*: the programs of this build are used)"; }
apt-get() { echo "(apt-get $*: the test broker is installed)"; }
hostname() { echo "$HOST"; }
make() { [ "$*" = deb ] || return 64; command make -s -n -C "$PB_ROOT" deb >/dev/null && echo "(make deb: checked with make -n)"; }
systemctl() {
	[ "$*" = "enable --now provbus-consumer" ] || { echo "unexpected: systemctl $*" >&2; return 1; }
	provbus-consumer -c "$PROVBUS_CONFIG" run >"$T/$HOST/consumer.log" 2>&1 &
	echo $! >"$T/$HOST/consumer.pid"
}
rabbitmqctl() {
	local a args=()
	for a in "$@"; do if [ -f "$a" ]; then args+=("$(realpath "$a")"); else args+=("$a"); fi; done
	"$PB_BROKER" ctl "$PB_BROKER_DIR" "${args[@]}" || return
	if [ "$SHIM" = 1 ] && [ "$1" = import_definitions ]; then
		for a in "$T"/rmq-1/lab/credentials/*; do
			"$PB_BROKER" ctl "$PB_BROKER_DIR" change_password "$(basename "$a")" "$(cat "$a")" >/dev/null || return
		done
	fi
}
if [ "$SHIM" = 1 ]; then
	provbus-schema() {
		if [ "$1" = export ] && [ "$2" = --credentials ]; then
			local dir=$3 n; shift 3
			mkdir -p "$dir"
			for n in $(jq -r '.nodes[].name' "$1"); do
				[ -e "$dir/$n" ] || (umask 077; openssl rand -base64 32 >"$dir/$n")
			done
			command provbus-schema export "$@"; return
		fi
		command provbus-schema "$@"
	}
fi
EOT

PORT_URL="127.0.0.1:$PORT"
# the walkthrough's export gives the broker-wide provbus-observer the
# password of the tests that run beside it (lib.sh, pb_observer_creds)
pb_observer_creds "$T/rmq-1/lab/credentials"
i=0
while IFS=$'\t' read -r hosts line; do
	i=$((i + 1))
	for h in $hosts; do
		mkdir -p "$T/$h"
		{
			echo "HOST=$h ETC=$T/$h/etc/provbus STATE=$T/$h/var/lib/provbus"
			echo "export PROVBUS_CONFIG=$T/$h/etc/provbus/provbus.json"
			echo ". '$T/prelude.sh'"
			echo "cd '$T/$h'"
			echo "set -e"
			sed -e "s|/etc/provbus|$T/$h/etc/provbus|g" -e "s|/var/lib/provbus|$T/$h/var/lib/provbus|g" \
				-e "s|/root/lab|$T/rmq-1/lab|g" -e "s|rmq-1:5672|$PORT_URL|g" "$T/block.$i"
		} >"$T/run.$i.$h.sh"
		# the build block runs in the source tree (deploy/install-deps.sh, make deb)
		[ "$h" != build ] || sed -i "s|^cd '$T/build'|cd '$PB_ROOT'|" "$T/run.$i.$h.sh"
		timeout "$(pb_slow 60)" bash "$T/run.$i.$h.sh" >"$T/out.$i.$h" 2>&1 </dev/null; rc=$?
		is "$rc" 0 "block $i (line $line) on $h"
		[ $rc -eq 0 ] || sed 's/^/#   /' "$T/out.$i.$h" | tail -n 20
	done
done <"$T/blocks"

for h in lab-www-01 lab-www-02; do
	is "$(grep -v '^#' "$T/$h/etc/provbus/app.env" 2>/dev/null)" "export API_URL='http://10.0.0.11:8080'" \
		"$h: the env file holds the provider's API_URL"
	[ -s "$T/$h/etc/provbus/password" ] && [ "$(stat -c %a "$T/$h/etc/provbus/password")" = 600 ]
	ok $? "$h: its own password file, mode 0600"
done
is "$(cat "$T/lab-api-01/etc/provbus/password")" "$(cat "$T/rmq-1/lab/credentials/lab-api-01")" \
	"lab-api-01 logs in with its own credential"
pb_done
