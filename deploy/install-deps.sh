#!/bin/sh
# Installs the Debian packages provbus needs to build, test and demo.
#   deploy/install-deps.sh                     install what is missing (root)
#   deploy/install-deps.sh --check-or-install  used by make: nothing to do if
#       all is there; as root install what is missing; otherwise print the
#       exact command and fail
#   deploy/install-deps.sh --print             print the package list
set -eu

# build: compiler, pkg-config and the libraries; tests: check, the broker,
# sqlite3 CLI (test assertions), procps (ps), util-linux (flock, setsid),
# openssl (TLS test certificates), jq (JSON in test assertions), ruby (the Chef handler test), chromium (the timeline page is opened
# headless), clang (libFuzzer targets); bench peers: amqp-tools, serf,
# etcd-server, etcd-client (make bench and its quick form in make check);
# make partition: iproute2 (ip netns, tc netem), nftables (cut links)
PACKAGES="build-essential pkg-config librabbitmq-dev libssl-dev libjansson-dev uuid-dev libsqlite3-dev check \
rabbitmq-server sqlite3 procps util-linux openssl jq chromium clang ruby amqp-tools serf etcd-server etcd-client iproute2 nftables"

missing() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || printf '%s ' "$p"
	done
}

install() {
	m=$(missing)
	[ -n "$m" ] || return 0
	echo "install-deps: installing $m" >&2
	export DEBIAN_FRONTEND=noninteractive
	# the package lists of a fresh machine are empty or old
	apt-get update -q >&2
	# rabbitmq-server's postinst tries to start the system service; where
	# there is no init system that fails harmlessly, but do not let it
	# leave a node running: policy-rc.d refuses service starts.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $m >&2
}

case ${1:-} in
--print) echo "$PACKAGES" ;;
--check-or-install)
	m=$(missing)
	[ -n "$m" ] || exit 0
	if [ "$(id -u)" = 0 ]; then install; exit 0; fi
	echo "provbus: missing packages: $m" >&2
	echo "run as root:  apt-get update && apt-get install -y $m" >&2
	echo "(or: sudo deploy/install-deps.sh)" >&2
	exit 1 ;;
"")
	[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (or: sudo $0)" >&2; exit 1; }
	install ;;
*) echo "usage: $0 [--check-or-install|--print]" >&2; exit 64 ;;
esac
