#!/usr/bin/env bash
# t-docs: the documentation stands on its own. No file of the repository
# refers to the contract outside it (../shared, SPEC.md); every repository
# path that README.md, docs/, the man pages, deploy/ READMEs, the Makefile
# and debian/rules cite exists (output folders that a run creates, and
# paths with a placeholder such as TARGET or NAME, excepted). No broker.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
cd "$PB_ROOT" || exit 1

out=$(grep -rIl --exclude-dir=.git --exclude-dir=build --exclude-dir=build-san --exclude-dir=bin \
	-e '\.\./shared' -e 'SPEC\.md' -e 'SPEC §' . 2>/dev/null | grep -v '^./tests/integration/t-docs.sh$')
is "$out" "" "no file refers to a contract outside the repository"

missing=""
n=0
for f in README.md docs/*.md docs/man/* deploy/*/README.md fuzz/regressions/README.md Makefile debian/rules; do
	[ -f "$f" ] || continue
	while read -r p; do
		n=$((n + 1))
		case $p in
		bench/out/*|fuzz/out/*|build/*|build-san/*|debian/provbus/*|debian/tmp/*) continue ;;
		*/T/*|*/T|*/TARGET/*|*/TARGET|*/NAME*|*/sN-*|*_TARGET*) continue ;;
		esac
		compgen -G "$p" >/dev/null || missing="$missing $f:$p"
	done < <(grep -oE '(^|[^A-Za-z0-9_./-])(\.ci|docs|deploy|tests|lib|bench|fuzz|consumer|publisher|audit|broker-schema|debian)/[A-Za-z0-9_./*-]*[A-Za-z0-9_*]' "$f" |
		sed -E 's/^[^A-Za-z0-9_.]//' | sort -u)
done
is "$missing" "" "every repository path the docs and the Makefile cite exists ($n cited)"
pb_done
