#!/usr/bin/env bash
# tests/mutation/run.sh [PATTERN]   (make mutation)
#
# Mutation testing of the unit suites: each line of
# tests/mutation/mutations.txt breaks one rule of the code on purpose (a
# sed substitution on one file). For each, one at a time, in a copy of the
# tree (the working tree is never touched): apply it, rebuild the unit
# suites, run the suites the line names first, then, if they all pass, the
# others. A mutant is killed when a suite fails (or times out); it
# survived when every suite passes. Prints one line per mutation and a
# summary with the kill rate.
#
# mutations.txt: FILE <TAB> SUITES <TAB> SED-SCRIPT <TAB> WHAT IT BREAKS
#   SUITES       the unit suites to run first (test_x,test_y)
#   SED-SCRIPT   for sed -E; it must change FILE (else the list is stale,
#                and the run fails)
#   WHAT         a description; "equivalent: WHY" marks a mutant no test
#                can kill (it does not change behaviour), listed with its
#                reason and counted apart
# PATTERN: only the lines containing it. MUT_JOBS (default 2): make -j.
# Exit 0 when every mutant not marked equivalent is killed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
LIST=$ROOT/tests/mutation/mutations.txt
pattern=${1:-}
JOBS=${MUT_JOBS:-2}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/provbus-mutation.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

tar -C "$ROOT" --exclude=./build --exclude=./build-san --exclude=./bin --exclude=./.git \
	--exclude='./fuzz/out*' -cf - . | tar -C "$WORK" -xf -
all_suites=$(cd "$WORK" && ls tests/unit/test_*.c | sed 's|tests/unit/\(.*\)\.c|\1|' | tr '\n' ' ')

build() { # build SUITE...: links build/tests/SUITE in the copy
	local t targets=()
	for t in "$@"; do targets+=("build/tests/$t"); done
	make -C "$WORK" -s -j"$JOBS" "${targets[@]}" >"$WORK/build.log" 2>&1
}
run_suite() { # run_suite SUITE: 0 when it passes
	(cd "$WORK" && CK_DEFAULT_TIMEOUT=20 timeout 300 "build/tests/$1" >"$WORK/suite.log" 2>&1)
}

echo "building the unit suites (unmutated) in $WORK ..."
# shellcheck disable=SC2086
build $all_suites || { echo "mutation: the unmutated tree does not build:"; tail -n 20 "$WORK/build.log"; exit 1; }
for t in $all_suites; do
	run_suite "$t" || { echo "mutation: $t fails unmutated: fix that first"; tail -n 20 "$WORK/suite.log"; exit 1; }
done

n=0 killed=0 survived=0 equiv=0 equiv_killed=0 stale=0 stillborn=0 survivors=()
while IFS=$'\t' read -r file suites script what; do
	case $file in '' | '#'*) continue ;; esac
	[ -z "$pattern" ] || [[ "$file $suites $script $what" == *"$pattern"* ]] || continue
	n=$((n + 1))
	f=$WORK/$file
	cp -p "$f" "$WORK/orig"
	if ! sed -E -e "$script" "$WORK/orig" >"$f" || cmp -s "$f" "$WORK/orig"; then
		echo "STALE    $file: $what (the sed script changes nothing)"
		stale=$((stale + 1))
		cp -p "$WORK/orig" "$f"
		continue
	fi
	first=${suites//,/ }
	verdict="" by=""
	# shellcheck disable=SC2086
	if ! build $first; then
		verdict=stillborn
	else
		for t in $first; do run_suite "$t" || { verdict=killed by=$t; break; }; done
		if [ -z "$verdict" ]; then
			rest=""
			for t in $all_suites; do [[ " $first " == *" $t "* ]] || rest="$rest $t"; done
			# shellcheck disable=SC2086
			if ! build $rest; then verdict=stillborn; fi
			for t in $rest; do
				[ -z "$verdict" ] || break
				run_suite "$t" || { verdict=killed by=$t; }
			done
		fi
	fi
	[ -n "$verdict" ] || verdict=survived
	case $verdict in
	killed)
		if [[ $what == equivalent:* ]]; then equiv_killed=$((equiv_killed + 1)); fi
		killed=$((killed + 1)); echo "killed   $file: $what (by $by)" ;;
	survived)
		if [[ $what == equivalent:* ]]; then
			equiv=$((equiv + 1)); echo "equiv    $file: ${what#equivalent: }"
		else
			survived=$((survived + 1)); survivors+=("$file: $what")
			echo "SURVIVED $file: $what"
		fi ;;
	stillborn) stillborn=$((stillborn + 1)); echo "BUILD    $file: $what (the mutant does not compile: fix the line)" ;;
	esac
	cp -p "$WORK/orig" "$f"
	touch "$f"
done <"$LIST"

live=$((n - stale - stillborn))
echo
echo "$n mutations: $killed killed, $survived survived, $equiv equivalent (survive by design), $stale stale, $stillborn not compiling"
if [ "$live" -gt 0 ]; then
	echo "kill rate: $((100 * killed / live))% of $live; $((100 * killed / (live - equiv > 0 ? live - equiv : 1)))% of the $((live - equiv)) not equivalent"
fi
[ "$equiv_killed" -eq 0 ] || echo "note: $equiv_killed mutant(s) marked equivalent were killed: drop the mark"
[ ${#survivors[@]} -eq 0 ] || printf 'survivor: %s\n' "${survivors[@]}"
[ "$n" -gt 0 ] || { echo "mutation: no mutation matches '$pattern'"; exit 1; }
[ "$survived" -eq 0 ] && [ "$stale" -eq 0 ] && [ "$stillborn" -eq 0 ]
