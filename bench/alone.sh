# bench/alone.sh — sourced by the measurements that run alone, outside
# bench/run.sh (idle-mem.sh, lost-queue.sh). Sourced with the program
# folders to compare as its arguments (bin when none): sets PROGS. Before
# sourcing: ROOT (the tree, the current folder), NAME (of the
# measurement), ALONE_TOOL (a tool of build/tools it needs).
# Checks them; makes the work folder OUT; uses the broker of $PB_BROKER_DIR
# or starts a private one; makes a vhost of its own (CTL runs rabbitmqctl
# on that broker); loads bench/lib.sh (SECTION=NAME) and sets its vhost;
# defines cleanup_all (stops what lib.sh started, deletes the vhost, stops
# a private broker) for the caller's EXIT trap. Loopback only.
# shellcheck shell=bash
export LC_ALL=C.UTF-8
PROGS=("$@")
[ ${#PROGS[@]} -gt 0 ] || PROGS=(bin)
# alone_bin FOLDER: the programs' folder, relative to the tree or absolute
alone_bin() { if [[ $1 == /* ]]; then echo "$1"; else echo "$ROOT/$1"; fi; }
for p in "${PROGS[@]}"; do
	[ -x "$p/provbus-consumer" ] || { echo "$p/provbus-consumer missing" >&2; exit 69; }
done
[ -x "${BUILD:-build}/tools/$ALONE_TOOL" ] || { echo "make tests-build first" >&2; exit 69; }

OUT=$(mktemp -d "${TMPDIR:-/tmp}/pb-$NAME.XXXXXX")
own=""
if [ -z "${PB_BROKER_DIR:-}" ] || [ ! -f "$PB_BROKER_DIR/broker.env" ]; then
	own=$OUT/broker
	echo "starting a private broker ..." >&2
	tests/broker/pb-broker start "$own" >/dev/null || exit 69
	PB_BROKER_DIR=$own
fi
VHOST=/$NAME-$$
CTL="tests/broker/pb-broker ctl $PB_BROKER_DIR"
if ! $CTL add_vhost "$VHOST" >/dev/null || ! $CTL set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null; then
	echo "cannot make vhost $VHOST" >&2
	exit 69
fi
export BENCH_ROOT=$ROOT BENCH_OUT=$OUT PB_BROKER_DIR BENCH_VHOST=$VHOST SECTION=$NAME
# shellcheck disable=SC1091
. "$ROOT/bench/lib.sh"
cleanup_all() {
	_bench_cleanup
	$CTL delete_vhost "$VHOST" >/dev/null 2>&1 || :
	[ -z "$own" ] || tests/broker/pb-broker stop "$own" >/dev/null 2>&1 || :
}
bench_vhost
