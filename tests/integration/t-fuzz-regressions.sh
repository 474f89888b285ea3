#!/usr/bin/env bash
# t-fuzz-regressions: every input the fuzzers once crashed on (kept under
# fuzz/regressions/TARGET/, see docs/RELIABILITY.md) and the seed corpus
# (fuzz/corpus/TARGET/) go through the same fuzz target code again, without
# libFuzzer (build/tools/pbtest-replay-fuzz). A fixed bug must stay fixed:
# a file that makes a target abort or crash fails here. Under
# `make SANITIZE=address,undefined check` the replays run with ASan/UBSan.
# No broker needed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"

REPLAY=$PB_TOOLS/pbtest-replay-fuzz
[ -x "$REPLAY" ] || { echo "not ok 1 - $REPLAY not built (make tests-build)"; exit 1; }

# an unknown target is a usage error, so a typo in a folder name shows
"$REPLAY" no-such-target /dev/null >/dev/null 2>&1
is "$?" 64 "an unknown target is refused (exit 64)"

# every fuzz target (fuzz/fuzz_TARGET.c) has its folders: a finding of
# fuzz/run-fuzz.sh lands in fuzz/regressions/TARGET/
targets=$(cd "$PB_ROOT/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//' | tr '\n' ' ')
missing=""
for target in $targets; do
	[ -d "$PB_ROOT/fuzz/regressions/$target" ] && [ -d "$PB_ROOT/fuzz/corpus/$target" ] || missing="$missing $target"
done
is "$missing" "" "each fuzz target ($targets) has fuzz/regressions/TARGET and fuzz/corpus/TARGET"

total=0
for target in $targets; do
	for kind in regressions corpus; do
		dir=$PB_ROOT/fuzz/$kind/$target
		[ -d "$dir" ] || continue
		n=0 bad=0
		for f in "$dir"/*; do
			[ -f "$f" ] || continue
			n=$((n + 1))
			out=$("$REPLAY" "$target" "$f" 2>&1)
			rc=$?
			if [ $rc -ne 0 ]; then
				bad=$((bad + 1))
				diag "$target: $f: exit $rc"
				echo "$out" | tail -n 20 | sed 's/^/#     /'
			fi
		done
		[ $n -gt 0 ] || continue
		total=$((total + n))
		is "$bad" 0 "$target: $n file(s) of fuzz/$kind/$target replay without a crash"
	done
done
# the seed corpus is there, so the replays above did run something
[ $total -gt 0 ]; ok $? "replayed $total file(s) in all"
pb_done
