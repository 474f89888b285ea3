#!/usr/bin/env bash
# t-deb: the Debian package. deploy/build-deb.sh (make deb) builds it from
# a copy of the tree with dpkg-buildpackage and lintian (no error, no
# warning without an override in debian/); then it is installed on this
# machine with dpkg -i: every program of the Makefile's PROGRAMS list runs
# from /usr/bin, the binaries are hardened, systemd-analyze verify accepts
# the units, which are neither enabled nor started, the man pages resolve,
# the completion loads; dpkg --purge leaves nothing behind.
# Needs root and dpkg-buildpackage; skipped (and said so) otherwise, or
# when a provbus package is already installed here (it is not ours to
# remove). dpkg runs are serialised with other runs of this test.
# Building and lintian take a minute on an idle machine, far more on a
# busy one:
# pb-timeout: 1500
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"

skip() { echo "ok 1 - # SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root: dpkg -i needs root"
command -v dpkg-buildpackage >/dev/null || skip "no dpkg-buildpackage (deploy/install-deps.sh --deb)"
command -v lintian >/dev/null || skip "no lintian (deploy/install-deps.sh --deb)"

VERSION=$(cat "$PB_ROOT/VERSION")
mapfile -t PROGS < <(make -s -C "$PB_ROOT" print-programs)
[ "${#PROGS[@]}" -ge 4 ]; ok $? "the Makefile lists the programs (${PROGS[*]})"

# --- build (lintian inside: it fails on an error or an unexplained warning)
start=$(date +%s)
"$PB_ROOT/deploy/build-deb.sh" "$T/deb" >"$T/build.out" 2>&1; rc=$?
is "$rc" 0 "make deb: dpkg-buildpackage and lintian succeed ($(($(date +%s) - start)) s)"
[ $rc -eq 0 ] || { sed 's/^/# /' "$T/build.out" | tail -n 30; exit 1; }
is "$(grep -c '^[EW]: ' "$T/deb/lintian.txt")" 0 "lintian: no error, no warning"
DEB=$(ls "$T"/deb/provbus_"$VERSION"_*.deb)
[ -f "$DEB" ]; ok $? "the package is provbus_${VERSION}_ARCH.deb"

# --- what the package holds
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s| ->.*||' >"$T/contents"
has() { grep -qx -- "$1" "$T/contents"; }
missing=""
for p in "${PROGS[@]}"; do
	has "/usr/bin/$p" || missing="$missing /usr/bin/$p"
	has "/usr/share/bash-completion/completions/$p" || missing="$missing completion:$p"
done
has /usr/bin/provbus-chef-solo || missing="$missing /usr/bin/provbus-chef-solo"
for m in "$PB_ROOT"/docs/man/*.1 "$PB_ROOT"/docs/man/*.5; do
	[ -e "$m" ] || continue
	s=${m##*.}
	has "/usr/share/man/man$s/$(basename "$m").gz" || missing="$missing $(basename "$m").gz"
done
for f in /lib/systemd/system/provbus-consumer.service /lib/systemd/system/provbus-publish.service \
	/lib/systemd/system/provbus-publish.timer /usr/share/provbus/chef/provbus_handler.rb \
	/usr/share/bash-completion/completions/provbus /usr/share/doc/provbus/copyright \
	/usr/share/doc/provbus/examples/provbus.json /usr/share/doc/provbus/examples/app-www.json; do
	has "$f" || missing="$missing $f"
done
is "$missing" "" "the package holds every program, compressed man page, unit, completion, example and the Chef files"
has /etc/provbus/provbus.json; is $? 1 "no configuration in /etc: the units wait for one"

# --- hardening: full RELRO, BIND_NOW, PIE, stack protector, FORTIFY
mkdir -p "$T/x" && dpkg-deb -x "$DEB" "$T/x"
bad=""
for p in "${PROGS[@]}"; do
	f=$T/x/usr/bin/$p
	readelf -lW "$f" | grep -q GNU_RELRO || bad="$bad $p:relro"
	readelf -dW "$f" | grep -q 'BIND_NOW\|FLAGS.*NOW' || bad="$bad $p:now"
	readelf -hW "$f" | grep -q 'DYN' || bad="$bad $p:pie"
	readelf -sW --dyn-syms "$f" | grep -q __stack_chk_fail || bad="$bad $p:stack-protector"
	readelf -sW --dyn-syms "$f" | grep -q '__[a-z]*_chk@' || bad="$bad $p:fortify"
done
is "$bad" "" "every program: full RELRO, BIND_NOW, PIE, stack protector, FORTIFY"
is "$(grep -c "'/usr/bin/provbus-publish'" "$T/x/usr/share/provbus/chef/provbus_handler.rb")" 1 \
	"the Chef handler's default is the installed /usr/bin/provbus-publish"

# --- install (one dpkg run at a time: dpkg's own lock fails instead of
# waiting, and another helper's apt-get may hold it for a while)
if dpkg-query -W -f='${Status}' provbus 2>/dev/null | grep -q 'ok installed'; then
	diag "a provbus package is already installed here: not touching it"
	pb_done; exit
fi
exec 8>/run/lock/provbus-t-deb.lock
flock -w "$(pb_slow 600)" 8 || { ok 1 "the t-deb lock"; exit 1; }
dpkg_retry() { # dpkg ARGS..., again while the dpkg lock is held elsewhere

	for _ in $(seq 1 "$(pb_slow 120)"); do
		dpkg "$@" >"$T/dpkg.out" 2>&1 && return 0
		grep -q 'lock' "$T/dpkg.out" || return 1
		sleep 1
	done
	return 1
}
installed=0
purge() { [ $installed -eq 0 ] || dpkg_retry --purge provbus; installed=0; }
trap 'purge; ! pb_done || rm -rf "$T"' EXIT
trap 'exit 143' TERM INT
dpkg_retry -i "$DEB"; rc=$?
installed=1
is "$rc" 0 "dpkg -i installs it"
[ $rc -eq 0 ] || { sed 's/^/# /' "$T/dpkg.out"; exit 1; }

like "$(/usr/bin/provbus-consumer --version 2>&1)" "$VERSION" "/usr/bin/provbus-consumer --version says $VERSION"
for p in "${PROGS[@]}"; do
	/usr/bin/"$p" --version >/dev/null 2>&1; ok $? "/usr/bin/$p --version runs"
done
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify --man=no /lib/systemd/system/provbus-consumer.service \
		/lib/systemd/system/provbus-publish.service /lib/systemd/system/provbus-publish.timer 2>&1)
	is "$out" "" "systemd-analyze verify accepts the installed units"
else
	ok 1 "systemd-analyze is installed (deploy/install-deps.sh --check)"
fi
is "$(find /etc/systemd/system -name 'provbus*' | wc -l)" 0 "the units are not enabled (no configuration yet)"
is "$(man -w provbus-consumer 2>&1)" /usr/share/man/man1/provbus-consumer.1.gz "man provbus-consumer resolves"
is "$(man -w 5 provbus.json 2>&1)" /usr/share/man/man5/provbus.json.5.gz "man 5 provbus.json resolves"
w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings provbus-consumer 2>&1 >/dev/null)
is "$w" "" "man provbus-consumer renders without a warning"
out=$(bash -c '. /usr/share/bash-completion/completions/provbus-consumer && complete -p provbus-consumer' 2>&1)
like "$out" "-F _provbus provbus-consumer" "the completion loads from the completions folder"

# --- purge: nothing left (the daemon's state too)
dpkg -L provbus >"$T/files"
mkdir -p /var/lib/provbus && echo x >/var/lib/provbus/audit.db
dpkg_retry --purge provbus; rc=$?
installed=0
is "$rc" 0 "dpkg --purge removes it"
left=""
while IFS= read -r f; do
	case $f in /.|/etc|/usr|/usr/bin|/usr/share|/usr/share/man|/usr/share/man/man?|/usr/share/doc|\
		/lib|/lib/systemd|/lib/systemd/system|/usr/share/bash-completion|\
		/usr/share/bash-completion/completions) continue ;; esac
	[ ! -e "$f" ] && [ ! -L "$f" ] || left="$left $f"
done <"$T/files"
for f in /var/lib/provbus /etc/provbus /usr/share/provbus /usr/share/doc/provbus; do
	[ ! -e "$f" ] || left="$left $f"
done
is "$left" "" "dpkg --purge leaves nothing behind"
dpkg-query -W provbus >/dev/null 2>&1; is $? 1 "dpkg knows nothing of provbus any more"
pb_done
