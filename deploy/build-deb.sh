#!/bin/sh
# make deb: builds the Debian package from a copy of the tree, so that
# dpkg-buildpackage (which writes its results to the parent folder of the
# source) never writes beside the checkout, then runs lintian on it.
#   deploy/build-deb.sh OUTDIR    the .deb, .buildinfo, .changes and
#                                 lintian.txt land in OUTDIR
# DEB_BUILD_OPTIONS is passed on (default parallel=2).
set -eu
out=${1:?usage: deploy/build-deb.sh OUTDIR}
cd "$(dirname "$0")/.."
version=$(dpkg-parsechangelog -S Version)
[ "$version" = "$(cat VERSION)" ] || {
	echo "build-deb: debian/changelog is at $version but VERSION says $(cat VERSION): add a changelog entry (dch -v $(cat VERSION))" >&2
	exit 65
}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/provbus-$version
rm -rf "$src" "$out"/provbus_*
mkdir -p "$src"
# the tree without build output: what git tracks (and new files it does
# not ignore), or, outside a git checkout, everything but the build folders
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard |
		while IFS= read -r f; do [ ! -e "$f" ] || printf '%s\n' "$f"; done |
		xargs -d '\n' cp -P --parents -t "$src"
else
	tar -c --exclude=./build --exclude=./build-san --exclude=./build-fuzz --exclude=./build-dev \
		--exclude=./bin --exclude=./demo-out --exclude=./bench/out . | tar -x -C "$src"
fi
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed; the log is $out/build.log" >&2
	exit 1
}
rm -rf "$src"
changes=$(ls "$out"/provbus_"$version"_*.changes)
# lintian: errors fail the build; warnings must be overridden in debian/
# with a reason (debian/provbus.lintian-overrides)
lintian --fail-on error,warning "$changes" >"$out/lintian.txt" 2>&1 || {
	cat "$out/lintian.txt" >&2
	echo "build-deb: lintian found errors or warnings (above)" >&2
	exit 1
}
ls "$out"/*.deb
