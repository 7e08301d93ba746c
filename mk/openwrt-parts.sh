#!/bin/sh
# Builds OpenWrt's own tools (opkg-lede, apk-tools 3, uci, jshn, ucode,
# firewall4, rc.common and its shell libraries) from the parts kit into a
# cache outside the clone, once, and prints the directory they are in.
#
# usage: mk/openwrt-parts.sh KIT CACHE
#   KIT    the parts kit (../shared/openwrt-parts): sources/ and build.sh; only read
#   CACHE  e.g. ~/.cache/camtls/openwrt-parts
#
# The build goes to CACHE/HASH, HASH taken over build.sh and sources/, so a
# changed kit builds afresh next to the old one (removed once the new one is
# built). An up-to-date build costs one hash of the kit (~1.3 MB) and
# build.sh's stamp checks; a half-finished one is resumed, as build.sh keeps a
# stamp per part. build.sh's line for each part it builds goes to stderr, so that stdout
# is only the directory.
set -eu

[ $# = 2 ] || {
	echo "usage: $0 KIT CACHE" >&2
	exit 2
}
kit=$(cd "$1" && pwd)
cache=$2
if [ ! -x "$kit/build.sh" ] || [ ! -d "$kit/sources" ]; then
	echo "$0: no parts kit at $kit (build.sh and sources/)" >&2
	exit 1
fi
# What is built: build.sh and sources/ (lib.sh is read from the kit itself).
hash=$(cd "$kit" && find build.sh sources -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
prefix=$cache/$hash
mkdir -p "$prefix"
out=$(mktemp)
if ! "$kit/build.sh" "$prefix" >"$out"; then
	cat "$out" >&2
	rm -f "$out"
	echo "$0: building the OpenWrt parts into $prefix failed (logs in $prefix/.logs)" >&2
	exit 1
fi
grep -v ': up to date$' "$out" >&2 || :
rm -f "$out"
# Older builds, from a kit that has changed since.
for old in "$cache"/*; do
	[ "$old" = "$prefix" ] || [ ! -d "$old" ] || rm -rf "$old"
done
echo "$prefix"
