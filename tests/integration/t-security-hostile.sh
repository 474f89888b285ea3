#!/usr/bin/env bash
# t-security-hostile: hostile values in events (shell metacharacters,
# quotes, command substitutions, a tab, a value of exactly
# 4096 bytes, non-ASCII) never reach a shell and never break the env file:
# no command in them ever runs; the env file is one `export NAME='...'`
# line per variable, parses with sh/dash/bash, and sourcing it gives back
# each value byte for byte; the provision command's environment holds the
# exact values; the audit log stores them exactly; a value of 4097 bytes
# is invalid (dead-lettered) and changes nothing.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup sec-hostile
P=$T/pwn
mkdir -p "$P" "$T/exp" "$T/got-env" "$T/got-sh" "$T/got-bash" "$T/got-dash"

# the values, one file each (exact bytes)
i=0
val() { i=$((i + 1)); printf '%s' "$1" >"$T/exp/$(printf 'H%02d' $i)"; }
val "\$(touch $P/p1)"
val "\`touch $P/p2\`"
val "'; touch $P/p3; echo '"
val "\"; touch $P/p4; echo \""
val "a|b&c;d>$P/p5<e *? [x] ~ # \$HOME \${PATH} \$((1+1)) \\ \\\\ !! %s %n"
val $'tab\there [31mred[0m (a tab is the one control a value may hold: t-security-terminal.sh)'
val "héllo ☃ 𝄞 — ünïcödé"
val "$(printf "'\$(touch $P/p8)'%.0s" $(seq 1 200) | head -c 4096)"
val "--flag=-x -- -"
val "''''"
val "' \"\$(touch $P/p11)\" '\\''"
val "x'; export EVIL=1; y='"
n=$i
keys=$(for k in $(seq 1 $n); do printf 'H%02d ' "$k"; done)
is "$(wc -c <"$T/exp/H08")" 4096 "one value is exactly 4096 bytes"

# the provision command writes each variable it was given to a file, and
# sources the env file with sh, dash and bash and does the same
cat >"$T/provision.sh" <<EOT
#!/bin/sh
for k in $keys; do
	eval "v=\\\${E_\$k-}"
	printf '%s' "\$v" >"$T/got-env/\$k"
done
for sh in sh dash bash; do
	command -v \$sh >/dev/null || continue
	\$sh -c '. "\$1"; for k in $keys; do eval "v=\\\${E_\$k-}"; printf "%s" "\$v" >"\$2/\$k"; done' \$sh "$T/c1/app.env" "$T/got-\$sh"
done
EOT
chmod +x "$T/provision.sh"

rl_topology fed r1
rl_apply
rl_consumer c1 r1 "$keys"
rl_consumer_start c1
rl_wait_idle c1 60
ok $? "consumer up and idle"
db=$T/c1/state/audit.db

seq=0
for k in $keys; do
	seq=$((seq + 1))
	id=$(cat /proc/sys/kernel/random/uuid)
	jq -cn --rawfile v "$T/exp/$k" --arg id "$id" --arg k "$k" --argjson s $seq \
		'{v:1, id:$id, kind:"provides", federation:"fed", region:"r1", node:"evil", service:"svc",
		  key:$k, value:$v, public:false, seq:$s, ttl_s:0, ts:"2026-01-01T00:00:00Z"}' >"$T/ev-$k.json"
	pbtest-amqp "$URL" publish provbus.fed "r1.provides.$k" --body-file "$T/ev-$k.json" \
		--persistent --confirm --content-type application/json --message-id "$id" >/dev/null || diag "publish $k failed"
done
# one over the limit: invalid, dead-lettered
head -c 4097 /dev/zero | tr '\0' "'" >"$T/too-long"
id=$(cat /proc/sys/kernel/random/uuid)
jq -cn --rawfile v "$T/too-long" --arg id "$id" '{v:1, id:$id, kind:"provides", federation:"fed", region:"r1",
	node:"evil", service:"svc", key:"H01", value:$v, public:false, seq:999, ttl_s:0, ts:"2026-01-01T00:00:00Z"}' >"$T/ev-long.json"
pbtest-amqp "$URL" publish provbus.fed r1.provides.H01 --body-file "$T/ev-long.json" --persistent --confirm >/dev/null

wait_for 30 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM events WHERE routing_key LIKE 'r1.provides.H%'\")\" -ge $((n + 1)) ]"
ok $? "all $((n + 1)) events audited"
is "$(rl_sql "$db" "SELECT count(*) FROM events WHERE node='evil' AND verdict='applied'")" "$n" "the $n hostile values are applied"
is "$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='invalid' AND detail LIKE '%4097%'")" 1 "the 4097-byte value is invalid"
wait_for 20 bash -c "[ \"\$(pbtest-amqp '$URL' count provbus.dead)\" = 1 ]"
ok $? "... and dead-lettered"
wait_for 30 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM runs WHERE reason != 'startup' AND status != 'running'\")\" -ge 1 ]"
rl_wait_idle c1 30
ok $? "a provision run with the hostile values finished"
is "$(rl_json_get "$(rl_status "$T/c1.json")" .last_run.status)" ok "... and succeeded"

is "$(ls "$P" | wc -l)" 0 "no command hidden in a value ever ran ($(ls "$P" | tr '\n' ' '))"
env=$T/c1/app.env
is "$(wc -l <"$env")" "$n" "the env file has exactly one line per variable (and nothing else)"
bad=$(grep -cvE "^export E_H[0-9]{2}='" "$env")
is "$bad" 0 "every line is export NAME='...'"
sh -n "$env" 2>/dev/null; ok $? "sh -n accepts the env file"
bash -n "$env" 2>/dev/null; ok $? "bash -n accepts the env file"
mode=$(stat -c %a "$env")
is "$mode" 640 "the env file's mode is 0640"
# byte-exact round trips
for where in env sh bash dash; do
	[ -d "$T/got-$where" ] && [ -n "$(ls "$T/got-$where")" ] || { [ $where = dash ] && continue; }
	bad=""
	for k in $keys; do cmp -s "$T/exp/$k" "$T/got-$where/$k" || bad="$bad $k"; done
	case $where in
	env) d="the provision command's environment holds every value byte for byte" ;;
	*) d="sourcing the env file with $where gives back every value byte for byte" ;;
	esac
	is "$bad" "" "$d"
done
bad=""
for k in $keys; do
	[ "$(rl_sql "$db" "SELECT hex(value) FROM events WHERE node='evil' AND key='$k' AND verdict='applied'")" = "$(od -An -tx1 -v "$T/exp/$k" | tr -d ' \n' | tr a-f A-F)" ] || bad="$bad $k"
done
is "$bad" "" "the audit log stores every value exactly"
provbus-audit -d "$db" events --json >"$T/events.jsonl" 2>&1
jq -e . "$T/events.jsonl" >/dev/null 2>&1; ok $? "provbus-audit events --json stays valid JSON"
rl_status "$T/c1.json" | jq -e .values >/dev/null; ok $? "status stays valid JSON"
is "$(rl_status "$T/c1.json" | jq -r '.values.E_H03')" "$(cat "$T/exp/H03")" "status shows a value exactly"
# raw control characters in the daemon's log would let a value rewrite a terminal or forge lines
ctl=$(LC_ALL=C grep -caP '[\x00-\x08\x0b-\x1f\x7f]' "$T/c1.log")
is "$ctl" 0 "the daemon's log holds no raw control characters from the values"
pb_done
