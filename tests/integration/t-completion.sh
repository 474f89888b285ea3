#!/usr/bin/env bash
# t-completion: deploy/completion/provbus.bash. Shellcheck-clean; for every
# program of the Makefile's PROGRAMS list, it offers every option the
# program's --help names; verbs are offered before a verb and never after
# one; provbus-publish provides/retire offer the "id" of each manifest in
# the configuration's services_dir (from -c, or $PROVBUS_CONFIG); --verdict
# offers the verdicts, exactly those provbus-audit knows (lib/vocab.h), and
# provbus-audit(1) lists the same.
# No broker needed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
T=${PB_TEST_TMP:-$(mktemp -d)}; mkdir -p "$T"
C=$PB_ROOT/deploy/completion/provbus.bash

if command -v shellcheck >/dev/null; then
	out=$(shellcheck -s bash "$C" 2>&1); is "$out" "" "shellcheck is clean on the completion"
else
	ok 1 "shellcheck is installed (deploy/install-deps.sh --check)"
fi
bash -n "$C"; ok $? "the completion is valid bash"
# shellcheck disable=SC1090
. "$C"

# comp WORD... : what the completion offers for the last word, sorted, one a line
comp() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_provbus
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u
}

mapfile -t PROGS < <(make -s -C "$PB_ROOT" print-programs)
for p in "${PROGS[@]}"; do
	[ -x "$PB_BIN/$p" ] || { ok 1 "$p is built ($PB_BIN)"; continue; }
	complete -p "$p" >/dev/null 2>&1; ok $? "$p has a completion"
	# the options --help names: a word starting with - or --, after the
	# start of a line, a space, [, |, ( or a comma
	"$PB_BIN/$p" --help 2>&1 | grep -oE '(^|[][ ,|(])--?[a-zA-Z][a-zA-Z0-9-]*' |
		sed 's/^[][ ,|(]//' | sort -u >"$T/$p.help"
	comp "$p" - >"$T/$p.comp"
	is "$(comm -23 "$T/$p.help" "$T/$p.comp" | tr '\n' ' ')" "" "$p: every option of --help is offered"
	extra=$(comm -13 "$T/$p.help" "$T/$p.comp" | tr '\n' ' ')
	[ -z "$extra" ] || diag "$p: offered but not in --help: $extra"
	[ "$(wc -l <"$T/$p.help")" -ge 4 ]; ok $? "$p: --help names its options ($(wc -l <"$T/$p.help"))"
done

# verbs: before a verb, all of them; after one, none
is "$(comp provbus-consumer "" | tr '\n' ' ')" "pause provision-now resume run status " "provbus-consumer: the verbs"
is "$(comp provbus-consumer -c /x/y.json "" | tr '\n' ' ')" "pause provision-now resume run status " \
	"the verbs after -c FILE (an option's argument is no verb)"
is "$(comp provbus-consumer status "")" "" "no verb offered after a verb"
is "$(comp provbus-audit runs --since -1h "")" "" "provbus-audit: no verb after runs --since T"
is "$(comp provbus-audit -v "" | tr '\n' ' ')" "events explain export replay runs timeline " "provbus-audit: the verbs after -v"
is "$(comp provbus-consumer status --p)" "--prometheus" "options are still offered after a verb"
is "$(comp provbus-audit events --verdict i | tr '\n' ' ')" "invalid " "--verdict offers the verdicts"
# the verdicts are one table (lib/vocab.h); provbus-audit names them when
# --verdict is wrong: the completion must offer exactly those
verdicts=$("$PB_BIN/provbus-audit" -d "$T/none.db" events --verdict '?' 2>&1 |
	sed -n 's/.*want one of //p' | tr -d ',' | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')
[ "$(wc -w <<<"$verdicts")" -ge 6 ]; ok $? "provbus-audit names the verdicts ($verdicts)"
is "$(comp provbus-audit events --verdict "" | tr '\n' ' ')" "$verdicts" \
	"--verdict offers exactly the verdicts of lib/vocab.h"
man=$(sed -n '/its verdict$/,/^kind, key/p' "$PB_ROOT/docs/man/provbus-audit.1" |
	sed -n 's/^\.R\{0,1\}BR\{0,1\} (\{0,1\} *\([a-z]*\).*/\1/p' | sort | tr '\n' ' ')
is "$man" "$verdicts" "provbus-audit(1) lists the same verdicts (events)"

# service ids: the manifests' "id", not their file names, from the configured services_dir
mkdir -p "$T/node/svc"
printf '{"node": "n1", "federation": "f", "region": "r", "broker": {"urls": ["amqp://u@h/v"]},\n "services_dir": "%s/node/svc"}\n' "$T" >"$T/node/provbus.json"
echo '{"id": "app-www", "provides": {"WWW_URL": "http://{HOST}/"}}' >"$T/node/svc/www.json"
printf '{\n  "id" : "api",\n  "run_list": ["x"]\n}\n' >"$T/node/svc/10-api.json"
echo 'not json' >"$T/node/svc/README"
is "$(comp provbus-publish -c "$T/node/provbus.json" provides "" | tr '\n' ' ')" "api app-www " \
	"provides: the ids of the manifests in services_dir of -c FILE"
is "$(comp provbus-publish -c "$T/node/provbus.json" retire ap | tr '\n' ' ')" "api app-www " "retire: the same, by prefix"
is "$(PROVBUS_CONFIG=$T/node/provbus.json comp provbus-publish provides a | tr '\n' ' ')" "api app-www " \
	"with \$PROVBUS_CONFIG"
is "$(comp provbus-publish -c "$T/node/provbus.json" flush "")" "" "flush takes no service id"
is "$(comp provbus-publish -c "$T/node/provbus.json" --ttl "")" "" "--ttl S: nothing to offer"
pb_done
