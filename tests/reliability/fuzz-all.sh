#!/usr/bin/env bash
# tests/reliability/fuzz-all.sh [SECONDS]: runs every libFuzzer target, one
# at a time, niced and pinned to one core, for SECONDS each (default 600),
# through fuzz/run-fuzz.sh, then reads each target's fuzz/out/TARGET/fuzz.log
# itself (run-fuzz.sh's own summary line is not relied on). A target whose
# build failed (a lib file being edited) is retried a few times a minute
# apart. Prints one line per target: executions, findings, and the files.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-600}
targets=${FUZZ_TARGETS:-"event config manifest template envquote"}
core=${FUZZ_CORE:-$(( $(nproc) - 1 ))}
for t in $targets; do
	for try in 1 2 3 4 5; do
		rm -f "fuzz/out/$t/fuzz.log"
		FUZZ_TARGETS=$t FUZZ_SECONDS=$secs nice -n 10 taskset -c "$core" fuzz/run-fuzz.sh \
			>"/tmp/fuzz-all-$t.out" 2>&1
		if grep -q 'stat::number_of_executed_units\|Test unit written\|ERROR: ' "fuzz/out/$t/fuzz.log" 2>/dev/null; then
			break
		fi
		echo "fuzz-all: $t: run $try did not fuzz: $(tail -n3 "/tmp/fuzz-all-$t.out" | tr '\n' ' ')" >&2
		sleep 60
	done
	log=fuzz/out/$t/fuzz.log
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
	[ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" 2>/dev/null | tail -n1 | tr -d '#')
	found=$(find "fuzz/out/$t" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null)
	echo "$t: ${secs}s, ${execs:-?} executions, $(echo -n "$found" | grep -c .) findings ${found:+($(echo $found))}"
done
