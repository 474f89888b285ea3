#!/bin/sh
# Installs the Debian packages provbus needs, by group, so that building
# the programs never brings a broker or a browser onto a node.
#   deploy/install-deps.sh [GROUP...]           install what is missing (root)
#   deploy/install-deps.sh --check-or-install [GROUP...]  used by make:
#       nothing to do if all is there; as root install what is missing;
#       otherwise print the exact command and fail
#   deploy/install-deps.sh --print [GROUP...]   print the package list
# Groups (none given: every group):
#   --build  the compiler, pkg-config and the -dev libraries: `make`
#   --check  what `make check` needs besides --build: the Check library,
#            the broker the tests start, the tools their assertions use,
#            the bench peers of the quick bench, and what the package,
#            Ansible and completion tests drive
#   --demo   `make demo`: the broker and the tools the demo uses
#   --bench  `make bench`: the broker and the peers provbus is measured
#            against (amqp-tools, Serf, etcd)
#   --fuzz   `make fuzz`: clang (libFuzzer)
#   --deb    `make deb`: debhelper and lintian
#   --partition  `make partition`: the broker, iproute2 and nftables
set -eu

# build: compiler, pkg-config and the libraries
BUILD_PKGS="build-essential pkg-config librabbitmq-dev libssl-dev libjansson-dev uuid-dev libsqlite3-dev"
# the broker the tests, demo and bench start privately; procps (ps),
# util-linux (flock, setsid), sqlite3 CLI and jq (assertions)
RUN_PKGS="rabbitmq-server sqlite3 procps util-linux jq"
# nginx-light, curl: the load balancer of make demo and t-lb-nginx
LB_PKGS="nginx-light curl"
BENCH_PKGS="amqp-tools serf etcd-server etcd-client"
DEB_PKGS="debhelper dpkg-dev lintian"
# check: the Check library (unit suites), openssl (TLS test certificates),
# ruby (the Chef handler test), chromium (the timeline page is opened
# headless), the quick bench's peers, the package test (debhelper,
# lintian, man-db for man, systemd for systemd-analyze verify), ansible
# (the role's test), shellcheck (the completion's test), strace (the
# publisher's fsync-order checks), the load balancer's nginx and curl
CHECK_PKGS="check socat $RUN_PKGS $LB_PKGS openssl ruby chromium strace $BENCH_PKGS $DEB_PKGS man-db systemd ansible shellcheck"
FUZZ_PKGS="clang"
# make partition (and make reliability's short form of it): iproute2 (ip
# netns, tc), nftables (cut links, drop packets)
PARTITION_PKGS="openssl iproute2 nftables"

add() { for p in "$@"; do case " $PACKAGES " in *" $p "*) ;; *) PACKAGES="$PACKAGES $p" ;; esac; done; }

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

usage() { echo "usage: $0 [--check-or-install|--print] [--build|--check|--demo|--bench|--fuzz|--deb|--partition]..." >&2; exit 64; }

mode=install
PACKAGES=""
groups=0
gargs=""
# the lists are split on purpose (word splitting: one package a word)
# shellcheck disable=SC2086
for a in "$@"; do
	case $a in
	--print) mode=print ;;
	--check-or-install) mode=check-or-install ;;
	--build) add $BUILD_PKGS; groups=1 ;;
	--check) add $BUILD_PKGS $CHECK_PKGS; groups=1 ;;
	--demo) add $BUILD_PKGS $RUN_PKGS $LB_PKGS; groups=1 ;;
	--bench) add $BUILD_PKGS $RUN_PKGS $BENCH_PKGS; groups=1 ;;
	--fuzz) add $BUILD_PKGS $FUZZ_PKGS; groups=1 ;;
	--deb) add $BUILD_PKGS $DEB_PKGS; groups=1 ;;
	--partition) add $BUILD_PKGS $RUN_PKGS $PARTITION_PKGS; groups=1 ;;
	*) usage ;;
	esac
	case $a in --build|--check|--demo|--bench|--fuzz|--deb|--partition) gargs="$gargs $a" ;; esac
done
# shellcheck disable=SC2086
[ $groups = 1 ] || add $BUILD_PKGS $CHECK_PKGS $RUN_PKGS $LB_PKGS $BENCH_PKGS $FUZZ_PKGS $DEB_PKGS $PARTITION_PKGS
PACKAGES=${PACKAGES# }

case $mode in
print) echo "$PACKAGES" ;;
check-or-install)
	m=$(missing)
	[ -n "$m" ] || exit 0
	if [ "$(id -u)" = 0 ]; then install; exit 0; fi
	echo "provbus: missing packages: $m" >&2
	echo "run as root:  apt-get update && apt-get install -y --no-install-recommends $m" >&2
	echo "(or: sudo $0$gargs)" >&2
	exit 1 ;;
install)
	[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (or: sudo $0$gargs)" >&2; exit 1; }
	install ;;
esac
