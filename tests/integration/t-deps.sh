#!/usr/bin/env bash
# t-deps: a build that only builds. `make` asks deploy/install-deps.sh for
# the build group only (the compiler, pkg-config, the -dev libraries): no
# broker, no browser, no bench peers; check, demo, bench, fuzz and deb ask
# for their own groups. As a user who is not root and lacks a package,
# the script names the exact apt-get line and fails. No broker needed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
D=$PB_ROOT/deploy/install-deps.sh

build=$("$D" --print --build)
like "$build" "build-essential" "the build group has the compiler"
like "$build" "librabbitmq-dev" "and the -dev libraries"
bad=""
for p in rabbitmq-server chromium clang ruby serf etcd-server amqp-tools check ansible lintian; do
	[[ " $build " != *" $p "* ]] || bad="$bad $p"
done
is "$bad" "" "the build group brings no broker, browser, fuzzer or test tool"
like "$("$D" --print --check)" "rabbitmq-server" "the check group brings the broker"
like "$("$D" --print --deb)" "debhelper" "the deb group brings debhelper"
"$D" --print --bogus >/dev/null 2>&1; is $? 64 "an unknown group is a usage error"

# what each make target would run, from an empty BUILD folder
dry() { make -s -n -C "$PB_ROOT" BUILD="$T/b" "$@" 2>/dev/null | grep -o 'install-deps.sh --check-or-install --[a-z]*' | sort -u | tr '\n' ' '; }
is "$(dry all)" "install-deps.sh --check-or-install --build " "make all asks for the build group only"
like "$(dry tests-build)" "--check " "the unit suites ask for the check group"
like "$(dry demo)" "--demo" "make demo asks for the demo group"
like "$(dry bench)" "--bench" "make bench asks for the bench group"
like "$(dry deb)" "--deb" "make deb asks for the deb group"

# not root, a package missing: the exact command, and failure
# (a folder of its own that nobody can reach: the run's temp dir is 0700)
S=$(mktemp -d /tmp/pbtest-deps.XXXXXX) && chmod 755 "$S"
sed 's/^BUILD_PKGS="/BUILD_PKGS="no-such-package-pbtest /' "$D" >"$S/deps.sh"
chmod 755 "$S/deps.sh"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	out=$(su nobody -s /bin/sh -c "$S/deps.sh --check-or-install --build" 2>&1); rc=$?
else
	out=$("$S/deps.sh" --check-or-install --build 2>&1); rc=$?
fi
rm -rf "$S"
is "$rc" 1 "not root, a package missing: it fails"
like "$out" "apt-get install -y --no-install-recommends no-such-package-pbtest" "and names the exact apt-get line"
pb_done
