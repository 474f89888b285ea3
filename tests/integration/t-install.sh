#!/usr/bin/env bash
# make install DESTDIR=... puts programs, man pages, units, completion and
# an example config where they belong; make uninstall takes them away;
# the units pass systemd-analyze verify where it is available.
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
D="$T/root"
# the programs under test, as they are: -o keeps make from relinking them
# in the source tree while other scripts run them (PROGDIR is where they are)
keep=()
for p in provbus-schema provbus-publish provbus-consumer provbus-audit; do keep+=(-o "$PB_BIN/$p"); done
make -s -C "$PB_ROOT" "${keep[@]}" install PROGDIR="$PB_BIN" DESTDIR="$D" PREFIX=/usr SYSCONFDIR=/etc \
	>"$T/install.log" 2>&1
ok $? "make install DESTDIR succeeds"
is "$(grep -c 'LINK\|CC ' "$T/install.log")" 0 "and builds nothing in the source tree"
for p in provbus-schema provbus-publish provbus-consumer provbus-audit; do
	test -x "$D/usr/bin/$p"; ok $? "installs /usr/bin/$p"
	test -f "$D/usr/share/man/man1/$p.1"; ok $? "installs the man page $p.1"
done
for u in provbus-consumer.service provbus-publish.service provbus-publish.timer; do
	test -f "$D/usr/lib/systemd/system/$u"; ok $? "installs the unit $u"
done
grep -q '^ExecStart=/usr/bin/provbus-consumer ' "$D/usr/lib/systemd/system/provbus-consumer.service"
ok $? "the consumer unit runs the installed binary"
U=$D/usr/lib/systemd/system/provbus-consumer.service
like "$(grep '^TimeoutStartSec=' "$U")" '^TimeoutStartSec=[0-9]+$' "the consumer's start is bounded (READY=1 never waits for the broker)"
like "$(grep '^RestartPreventExitStatus=' "$U")" '[= ]78( |$)' "a configuration error (78) is not restarted in a loop"
test -f "$D/usr/share/bash-completion/completions/provbus"; ok $? "installs the bash completion"
test -f "$D/etc/provbus/provbus.json"; ok $? "installs an example config"
is "$(stat -c %a "$D/etc/provbus/provbus.json")" 640 "the example config is not world-readable"
bash -n "$D/usr/share/bash-completion/completions/provbus"; ok $? "the completion file is valid bash"
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(systemd-analyze verify --man=no "$D/usr/lib/systemd/system/provbus-consumer.service" 2>&1)
	# the verifier also complains that the binary path is missing on this
	# host (it checks /usr/bin/...); only unit syntax errors matter here
	bad=$(echo "$out" | grep -v -e "not executable" -e "No such file" -e "Command .* is not" -e '^$' || true)
	is "$bad" "" "systemd-analyze verify finds no error in the consumer unit"
	for u in provbus-publish.service provbus-publish.timer; do
		out=$(systemd-analyze verify --man=no "$D/usr/lib/systemd/system/$u" 2>&1)
		bad=$(echo "$out" | grep -v -e "not executable" -e "No such file" -e "Command .* is not" -e '^$' || true)
		is "$bad" "" "systemd-analyze verify finds no error in $u"
	done
else
	diag "systemd-analyze not installed: unit verification skipped"
fi
grep -q "'/usr/bin/provbus-publish'" "$D/usr/share/provbus/chef/provbus_handler.rb"
ok $? "the installed Chef handler defaults to the installed provbus-publish"
test -x "$D/usr/bin/provbus-chef-solo"; ok $? "installs the provbus-chef-solo wrapper"
for m in "$D"/usr/share/man/man1/*.1 "$D"/usr/share/man/man5/*.5; do
	w=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	is "$w" "" "man --warnings is clean for $(basename "$m")"
done
make -s -C "$PB_ROOT" "${keep[@]}" uninstall PROGDIR="$PB_BIN" DESTDIR="$D" PREFIX=/usr SYSCONFDIR=/etc >>"$T/install.log" 2>&1
ok $? "make uninstall succeeds"
left=$(find "$D/usr" -type f | wc -l)
is "$left" 0 "make uninstall removes every installed file"
test -f "$D/etc/provbus/provbus.json"; ok $? "make uninstall keeps the configuration"
pb_done
