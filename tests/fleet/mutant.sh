#!/usr/bin/env bash
# tests/fleet/mutant.sh PATCH [SCENARIO...]   (root)
#
# Shows that the partition checker fails a broken build: copies the tree
# (sources and objects, not .git) to a temp dir, applies PATCH there (one
# of tests/fleet/mutants/*.patch), builds the programs and runs
# tests/fleet/run.sh (default scenario: minority) with them. Exit 0 when
# the checker caught the mutant (the run failed), 1 when the mutant passed
# unnoticed, 2 when it could not be built. The tree itself is not touched.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
patch=$(readlink -f "${1:?usage: mutant.sh PATCH [SCENARIO...]}"); shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/provbus-mutant.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -C "$ROOT" --exclude=.git -cf - . | tar -C "$tmp" -xf -
if ! (cd "$tmp" && git apply "$patch" && make -j2 all >"$tmp/build.log" 2>&1); then
	echo "mutant.sh: $patch does not apply or build:"; tail -n 20 "$tmp/build.log"
	exit 2
fi
echo "mutant: $(basename "$patch") built in $tmp/bin"
PB_BIN=$tmp/bin "$tmp/tests/fleet/run.sh" "${@:-minority}"
rc=$?
if [ $rc -ne 0 ]; then echo "mutant $(basename "$patch"): CAUGHT (the checker failed the run, exit $rc)"; exit 0; fi
echo "mutant $(basename "$patch"): NOT caught (every check passed)"
exit 1
