#!/usr/bin/env bash
# make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="event config"]: builds each
# libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) and runs
# it for N seconds on its corpus (fuzz/corpus/TARGET, seeded from the
# tests). A finding (crash-*, leak-*, timeout-*, oom-* in fuzz/out/TARGET/)
# is copied to fuzz/regressions/TARGET/, where `make check` replays it
# (tests/integration/t-fuzz-regressions.sh), and fails the run: exit 1
# when any target found something (commit the file with the fix), or
# when a fuzzer stopped with an error of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"event config manifest template envquote"}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found: apt-get install clang" >&2; exit 1; }
OUT=build-fuzz
mkdir -p "$OUT"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DPB_VERSION=\"fuzz\" -Ilib $(pkg-config --cflags librabbitmq jansson uuid sqlite3 libcrypto)"
LIBS="$(pkg-config --libs librabbitmq jansson uuid sqlite3 libcrypto) -lm"
# the lib without the fuzzer's main
libsrc=$(ls lib/*.c)
summary=()
found=0
for t in $TARGETS; do
	"$CC" $CFLAGS -o "$OUT/fuzz_$t" "fuzz/fuzz_$t.c" $libsrc $LIBS
	mkdir -p "fuzz/corpus/$t" "fuzz/out/$t/corpus"
	# findings of an earlier run are in fuzz/regressions already
	find "fuzz/out/$t" -maxdepth 1 -type f \( -name "crash-*" -o -name "leak-*" -o -name "timeout-*" -o -name "oom-*" \) -delete
	log="fuzz/out/$t/fuzz.log"
	set +e
	"$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=70000 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="fuzz/out/$t/" "fuzz/out/$t/corpus" "fuzz/corpus/$t" >"$log" 2>&1 < /dev/null
	rc=$?
	set -e
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
	[ -n "$execs" ] || execs=$(grep -Eo '#[0-9]+' "$log" | tail -n1 | tr -d '#')
	crashes=0
	mkdir -p "fuzz/regressions/$t"
	while IFS= read -r f; do
		crashes=$((crashes + 1))
		cp "$f" "fuzz/regressions/$t/$(basename "$f")"
		echo "fuzz: $t: finding $f, kept as fuzz/regressions/$t/$(basename "$f")" >&2
	done < <(find "fuzz/out/$t" -maxdepth 1 -type f \( -name "crash-*" -o -name "leak-*" -o -name "timeout-*" -o -name "oom-*" \))
	summary+=("$t: ${SECONDS_EACH}s, ${execs:-?} executions, $crashes findings (rc=$rc)")
	if [ "$crashes" -gt 0 ]; then
		found=1
		tail -n 30 "$log" | sed 's/^/    /' >&2
	elif [ "$rc" -ne 0 ]; then
		found=1
		echo "fuzz: $t: the fuzzer stopped with exit $rc and no finding: $log" >&2
		tail -n 20 "$log" | sed 's/^/    /' >&2
	fi
done
printf '%s\n' "${summary[@]}"
[ "$found" -eq 0 ] || { echo "fuzz: FAILED: findings kept under fuzz/regressions/ (make check replays them)" >&2; exit 1; }
