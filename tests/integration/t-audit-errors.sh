#!/usr/bin/env bash
# provbus-audit on bad input: every failure names what is at fault and
# exits with its <sysexits.h> code (docs/protocol.md §6, provbus-audit(1)). No broker traffic.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup auditerr

A=provbus-audit
X=$T/ok.db
pbtest-auditgen -o "$X" --empty >/dev/null && sqlite3 "$X" <"$PB_ROOT/tests/data/audit/aba.sql"
ok $? "a good log to start from"

# runs CMD, sets $rc and $err (stderr), stdout to $T/out
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; err=$(cat "$T/err"); }

run $A -d "$T/missing.db" runs
is "$rc" 66 "missing db: exit 66"
like "$err" "$T/missing.db" "missing db: the message names the path"

head -c 8192 /dev/urandom >"$T/random.db"
run $A -d "$T/random.db" events
is "$rc" 66 "random bytes: exit 66"
like "$err" "$T/random.db: not an sqlite database" "random bytes: says what is wrong with which file"

sqlite3 "$T/other.db" "create table t(x); insert into t values(1);"
run $A -d "$T/other.db" runs
is "$rc" 66 "an sqlite file that is not an audit log: exit 66"
like "$err" "$T/other.db: not a provbus audit log" "not an audit log: says so, with the path"

cp "$X" "$T/newer.db"
sqlite3 "$T/newer.db" "pragma user_version = 99"
run $A -d "$T/newer.db" runs
is "$rc" 65 "a newer schema: exit 65"
like "$err" "schema version 99 is newer than this provbus knows.*use a newer provbus-audit" "a newer schema: a clear message"

# an audit log with a table missing (a damaged or half-made file)
cp "$X" "$T/damaged.db"
sqlite3 "$T/damaged.db" "drop table run_events"
run $A -d "$T/damaged.db" runs --json
is "$rc" 65 "a table missing: exit 65"
like "$err" "$T/damaged.db: damaged or incomplete audit log: no such table: run_events" "a table missing: names it"

run $A -d "$X" events --verdict nope
is "$rc" 64 "unknown verdict: exit 64"
like "$err" "--verdict 'nope': unknown verdict; want one of applied, duplicate, stale, foreign, expired, invalid" "unknown verdict: lists the valid ones"

run $A -d "$X" events --since yesterday
is "$rc" 64 "bad time: exit 64"
like "$err" "yesterday" "bad time: names the text"
run $A -d "$X" replay --until 2026-13-45T00:00:00Z
is "$rc" 64 "bad RFC 3339 time: exit 64"
like "$err" "2026-13-45T00:00:00Z" "bad RFC 3339 time: names the text"

run $A -d "$X" frobnicate
is "$rc" 64 "unknown verb: exit 64"
like "$err" "unknown verb 'frobnicate'" "unknown verb: names it"
run $A -d "$X"
is "$rc" 64 "no verb: exit 64"
run $A -d "$X" runs --key K
is "$rc" 64 "an option the verb does not take: exit 64"
like "$err" "runs does not take --key" "an option the verb does not take: says which"
run $A -d "$X" explain
is "$rc" 64 "explain without a run id: exit 64"
run $A -d "$X" explain abc
is "$rc" 64 "explain with a run id that is not a number: exit 64"
like "$err" "run id 'abc'" "explain: names the bad run id"
run $A -d "$X" replay --quiet-ms -5
is "$rc" 64 "negative --quiet-ms: exit 64"
run $A -d "$X" replay --throttle 6
is "$rc" 64 "--throttle without /SECONDS: exit 64"
like "$err" "want RUNS/SECONDS" "--throttle: says the form"
run $A -d "$X" timeline
is "$rc" 64 "timeline without --html: exit 64"
run $A -d "$X" export
is "$rc" 64 "export without --jsonl: exit 64"
# every usage error: exit 64, what is wrong, then the usage lines (the
# same shape as provbus-schema and provbus-publish)
cli_usage64 provbus-audit "unknown option --bogus" "unknown long option" -d "$X" events --bogus
cli_usage64 provbus-audit "unknown option -x" "unknown short option" -d "$X" -x events
cli_usage64 provbus-audit "option --since needs an argument" "--since without its argument" -d "$X" events --since
cli_usage64 provbus-audit "option --json takes no argument" "--json=1" -d "$X" events --json=1
cli_usage64 provbus-audit "a verb is needed" "no verb" -d "$X" -v
cli_usage64 provbus-audit "unknown verb 'frob'" "unknown verb" -d "$X" frob
cli_usage64 provbus-audit "--verdict 'bogus': unknown verdict" "events --verdict bogus" -d "$X" events --verdict bogus
cli_usage64 provbus-audit "--since: bad time 'yesterday'" "a bad --since" -d "$X" events --since yesterday
cli_usage64 provbus-audit "--quiet-ms '5x'" "a bad --quiet-ms" -d "$X" replay --quiet-ms 5x
cli_usage64 provbus-audit "events: unexpected argument 'extra'" "an extra argument" -d "$X" events extra
cli_usage64 provbus-audit "runs does not take --key" "an option of another verb" -d "$X" runs --key K
run $A -v -v -d "$X" events --since -2h --until -15m
is "$rc" 0 "-v repeatable before the verb, relative --since -2h --until -15m: exit 0"

run $A -d "$X" timeline --html "$T/no/such/dir/t.html"
is "$rc" 73 "timeline into a missing directory: exit 73"
like "$err" "cannot write the timeline: $T/no/such/dir/t.html" "timeline: names the file"
# a file system with no room: the file is made, its writing fails: 74
if mkdir -p "$T/full" && mount -t tmpfs -o size=64k,mode=0700 audit-full-tmpfs "$T/full" 2>/dev/null; then
	trap 'umount "$T/full" 2>/dev/null; _pb_cleanup' EXIT
	dd if=/dev/zero of="$T/full/filler" bs=4k count=15 >/dev/null 2>&1
	run $A -d "$X" timeline --html "$T/full/t.html"
	is "$rc" 74 "timeline on a full file system: exit 74"
	like "$err" "cannot write the timeline: $T/full/t.html: .*No space left on device" \
		"timeline: names the file and why"
	is "$(ls "$T/full")" filler "nothing of it is left behind"
	umount "$T/full"
	trap _pb_cleanup EXIT
else
	pb_skip 3 "cannot mount a tmpfs here (needs root and mount rights)"
fi

# a bad node config when no -d is given: provbus-audit needs only its
# state_dir (a broken file on disk must not blind an incident review), so
# it warns, naming the file and what is wrong, and reads the log there
echo '{"node": "BAD NAME", "state_dir": "'"$T"'/badstate"}' >"$T/bad.json"
run $A -c "$T/bad.json" runs
is "$rc" 66 "a bad node config whose state_dir holds no log: exit 66"
like "$err" "warning: $T/bad.json:1:10: field 'node'.*using state_dir $T/badstate" \
	"a bad node config: the warning names the file, the field and the state_dir used"
like "$err" "$T/badstate/audit.db: No such file" "... and the error names the log it looked for"
mkdir -p "$T/badstate" && cp "$X" "$T/badstate/audit.db"
run $A -c "$T/bad.json" runs
is "$rc" 0 "a bad node config whose state_dir holds a log: the log is read (exit 0)"
run $A -c "$T/none.json" runs
is "$rc" 66 "a missing node config: exit 66"

# read-only: the file is not changed, even its mtime
before=$(stat -c '%Y %s' "$X")
sleep 1
$A -d "$X" runs >/dev/null && $A -d "$X" replay >/dev/null && $A -d "$X" export --jsonl >/dev/null
is "$(stat -c '%Y %s' "$X")" "$before" "the db is only read"

# a log that a live daemon holds open (WAL): readers are fine
L=$T/live.db
pbtest-auditgen -o "$L" -n 500 --hours 1 --seed 3 >/dev/null
# a second process holds a write transaction for 2 s
{ echo "BEGIN IMMEDIATE;"; echo "insert into notes(at, kind, text) values(1, 'x', 'y');"; sleep 2; echo "COMMIT;"; } | sqlite3 "$L" &
writer=$!
sleep 0.5
run $A -d "$L" runs --json
is "$rc" 0 "runs while a writer holds a transaction (WAL): exit 0"
ok $(( $(wc -l <"$T/out") > 0 ? 0 : 1 )) "runs while a writer holds a transaction: rows come"
wait "$writer"

pb_done
