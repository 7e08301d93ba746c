#!/bin/bash
# make bench-mips, step 1: what the MIPS benchmark runs on, in a cache folder
# (default ~/.cache/camtls/bench-mips), each part made once and kept:
#
#   apt/         a private apt state for Debian 12's mipsel archive: its own
#                sources list, package lists and status file, so the host's
#                apt configuration is left as it is (no dpkg
#                --add-architecture, no change to /etc/apt)
#   sysroot/     Debian 12's mipsel nginx and stunnel4 and every library they
#                load, each .deb unpacked with dpkg -x; qemu-mipsel -L runs
#                them from there
#   qemu-src/    include/qemu/qemu-plugin.h from the Debian source package
#                of the installed qemu-user (the plugin API of that exact
#                version), taken from its orig tarball
#   insn.so      tests/bench/insn-count.c built against that header
#
#   tests/bench/mips-setup.sh [CACHE]
#
# Prints nothing on a second run. Needs apt-get, dpkg-deb, gcc, xz.
set -euo pipefail

cache=${1:-${CAMTLS_CACHE:-$HOME/.cache/camtls}/bench-mips}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Debian packages whose mipsel build is measured, and how far dependencies are
# followed: only to packages named lib* (and zlib1g), which is where shared
# libraries live (the others, nginx-common, adduser, systemd and so on, hold
# no code the two programs load). Each program is started once under qemu at
# the end, so a library this misses fails here, by name.
MEASURED="nginx stunnel4"

# Root downloads into the cache itself (apt's _apt user may not reach it).
apt_dir=$cache/apt
apt_opts=(-o APT::Architecture=mipsel -o "APT::Architectures::=mipsel"
          -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
          -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
          -o APT::Sandbox::User=root -qq)

sysroot=$cache/sysroot
if [ ! -f "$sysroot/.complete" ]; then
  echo "bench-mips: Debian 12 mipsel $MEASURED and their libraries into $sysroot"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  cat >"$apt_dir/sources.list" <<'EOF'
deb [arch=mipsel signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=mipsel signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=mipsel signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
  : >"$apt_dir/status"
  apt-get "${apt_opts[@]}" update
  # Breadth-first over Depends and PreDepends, keeping lib* packages.
  want=" $MEASURED " todo="$MEASURED"
  while [ -n "$todo" ]; do
    next=""
    for dep in $(apt-cache "${apt_opts[@]}" depends --no-recommends --no-suggests \
                   --no-conflicts --no-breaks --no-replaces --no-enhances $todo |
                 sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([a-z0-9][^ <>:]*\).*/\2/p' | sort -u); do
      case $dep in lib* | zlib1g) ;; *) continue ;; esac
      case $want in *" $dep "*) continue ;; esac
      want="$want$dep " next="$next $dep"
    done
    todo=$next
  done
  echo "bench-mips: packages:$want"
  (cd "$apt_dir/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download $want)
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  # Debian 12 is merged-/usr: the loader looks in /lib, the packages ship
  # some files under /usr/lib.
  for d in lib bin sbin; do
    if [ -d "$sysroot/$d" ] && [ ! -L "$sysroot/$d" ]; then
      mkdir -p "$sysroot/usr/$d"
      cp -a "$sysroot/$d/." "$sysroot/usr/$d/" && rm -rf "${sysroot:?}/$d"
    fi
    [ -e "$sysroot/$d" ] || ln -s "usr/$d" "$sysroot/$d"
  done
  for cmd in "usr/sbin/nginx -v" "usr/bin/stunnel4 -version"; do
    qemu-mipsel -L "$sysroot" "$sysroot"/$cmd >/dev/null 2>"$cache/check.log" ||
      { echo "bench-mips: $cmd does not run from the sysroot:" >&2; cat "$cache/check.log" >&2; exit 1; }
  done
  touch "$sysroot/.complete"
fi

# The TCG plugin API of the installed qemu-user, from its own source package.
src_version=$(dpkg-query -W -f='${source:Version}' qemu-user)
header=$cache/qemu-src/$src_version/qemu-plugin.h
if [ ! -f "$header" ]; then
  echo "bench-mips: qemu-plugin.h of qemu $src_version from Debian's source package"
  src=$cache/qemu-src/apt
  mkdir -p "$src/lists/partial" "$src/cache/archives/partial" "$src/download"
  cat >"$src/sources.list" <<'EOF'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
  : >"$src/status"
  src_opts=(-o "Dir::Etc::SourceList=$src/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o "Dir::State::Lists=$src/lists" -o "Dir::State::status=$src/status"
            -o "Dir::Cache=$src/cache" -o Debug::NoLocking=1
            -o APT::Sandbox::User=root -qq)
  apt-get "${src_opts[@]}" update
  (cd "$src/download" && apt-get "${src_opts[@]}" source --download-only "qemu=$src_version")
  orig=$(ls "$src"/download/qemu_*.orig.tar.xz | head -n 1)
  member=$(tar -tJf "$orig" | grep '/include/qemu/qemu-plugin.h$')
  mkdir -p "$(dirname "$header")"
  tar -xJOf "$orig" "$member" >"$header.tmp"
  mv "$header.tmp" "$header"
  rm -f "$src"/download/*
fi

plugin=$cache/insn.so
stamp=$cache/insn.so.src
if [ ! -f "$plugin" ] || ! cmp -s "$here/insn-count.c" "$stamp" || [ "$header" -nt "$plugin" ]; then
  gcc -O2 -shared -fPIC -Wall -Wextra -Werror -I "$(dirname "$header")" \
    -o "$plugin" "$here/insn-count.c"
  cp "$here/insn-count.c" "$stamp"
fi
