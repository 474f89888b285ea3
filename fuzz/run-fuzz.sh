#!/usr/bin/env bash
# make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="event config"]: builds each
# libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) and runs
# it for N seconds on its corpus (fuzz/corpus/TARGET, seeded from the
# tests). Crashers land in fuzz/out/TARGET/ — keep each one as a
# regression file under fuzz/regressions/TARGET/ (replayed by `make check`
# through tests/integration/t-fuzz-regressions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"event config manifest template envquote"}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found: apt-get install clang" >&2; exit 1; }
OUT=build-fuzz
mkdir -p "$OUT"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DPB_VERSION=\"fuzz\" -Ilib $(pkg-config --cflags librabbitmq jansson uuid sqlite3)"
LIBS="$(pkg-config --libs librabbitmq jansson uuid sqlite3) -lm"
# the lib without the fuzzer's main
libsrc=$(ls lib/*.c)
summary=()
for t in $TARGETS; do
	"$CC" $CFLAGS -o "$OUT/fuzz_$t" "fuzz/fuzz_$t.c" $libsrc $LIBS
	mkdir -p "fuzz/corpus/$t" "fuzz/out/$t/corpus"
	log="fuzz/out/$t/fuzz.log"
	set +e
	"$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=70000 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="fuzz/out/$t/" "fuzz/out/$t/corpus" "fuzz/corpus/$t" >"$log" 2>&1 < /dev/null
	rc=$?
	set -e
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
	[ -n "$execs" ] || execs=$(grep -Eo '#[0-9]+' "$log" | tail -n1 | tr -d '#')
	crashes=$(find "fuzz/out/$t" -maxdepth 1 \( -name "crash-*" -o -name "leak-*" -o -name "timeout-*" \) | wc -l)
	summary+=("$t: ${SECONDS_EACH}s, ${execs:-?} executions, $crashes findings (rc=$rc)")
done
printf '%s\n' "${summary[@]}"
