#!/usr/bin/env bash
# Checks are functions and eval strings that check/within run later:
# shellcheck disable=SC2317,SC2016
# Tomato tests: the scripts in tomato-scripts/ under busybox ash in a
# Tomato-shaped root with real iptables in a network namespace, and the
# binary's kernel floor under a seccomp filter that hides newer system calls.
#
#   tests/tomato/run.sh BINARY [MIPSEL_BINARY]
#
# BINARY: the x86_64 static (musl) build; MIPSEL_BINARY: the mipsel one,
# bundled beside BINARY for the installer's choice and, under
# qemu-mipsel-static, run through the end-to-end suite.
# Needs root (namespaces, mounts, iptables), gcc, busybox, iptables (legacy,
# as Tomato uses), openssl, curl, shellcheck, qemu-user-static.
# CAMTLS_E2E=0 leaves out the end-to-end, process and proxy suites on the
# 2.6.22 and 2.6.36 floors (they run cargo).
#
# Stand-ins, because these only exist on a Tomato router: `nvram` (a file of
# key=value) and Entware's /opt/bin/opkg (an empty marker file; only its
# presence is looked at). Everything else is real: Debian's busybox applets
# (only those a FreshTomato busybox has), iptables-legacy, busybox syslogd.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scripts=$repo/tomato-scripts

# Applets of FreshTomato's busybox that the scripts may use; anything else
# (GNU options, pgrep, flock, timeout, mktemp ...) fails as it would there.
APPLETS="ash sh awk basename cat chmod cp cut date dd df dirname echo env expr
false find grep gunzip gzip head id kill killall ln logger ls mkdir mv od
pidof printf ps rm rmdir sed sleep sort sync syslogd tail tar test touch tr
true uname wc ["

ok() { echo "ok   $*"; echo ok >>"$RESULTS"; }
bad() { echo "FAIL $*"; echo fail >>"$RESULTS"; }
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
# Polls a condition for up to $1 seconds.
within() {
	local t=$(($1 * 5))
	shift
	while ! "$@"; do
		t=$((t - 1))
		[ $t -gt 0 ] || return 1
		sleep 0.2
	done
}

lint() {
	local f
	for f in "$scripts"/camtls.init "$scripts"/camtls.fire "$scripts"/camtls.shut \
		"$scripts"/install.sh "$scripts"/mkbundle.sh; do
		check "shellcheck ${f#"$repo"/}" shellcheck -s sh "$f"
		check "busybox ash parses ${f#"$repo"/}" busybox ash -n "$f"
	done
	check "shellcheck tests/tomato/run.sh" shellcheck "$here/run.sh"
	# Tomato's Scripts tabs hold at most this many bytes.
	size_ok() { [ "$(wc -c <"$scripts/$1")" -le "$2" ]; }
	check "camtls.init fits the Init tab (4096 bytes)" size_ok camtls.init 4096
	check "camtls.fire fits the Firewall tab (8192 bytes)" size_ok camtls.fire 8192
	check "camtls.shut fits the Shutdown tab (4096 bytes)" size_ok camtls.shut 4096
}

# The ENOSYS filter itself: its table against the kernel headers, and the
# calls it answers.
filter() {
	# Outside /tmp: some suites mount over /tmp and must still find it.
	mkdir -p "$repo/target/tomato"
	check "enosys.c compiles" gcc -O2 -Wall -Wextra -Werror -o "$ENOSYS" "$here/enosys.c" ||
		return
	local hdr=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
	table_matches_header() {
		local nr name bad=0 hmax
		hmax=$(awk '/^#define __NR_/ { if ($3 > m) m = $3 } END { print m }' "$hdr")
		while read -r nr name; do
			if grep -q "^#define __NR_$name $nr\$" "$hdr"; then continue; fi
			# Calls newer than these headers cannot be checked against them,
			# but their number must be free there.
			[ "$nr" -gt "$hmax" ] && continue
			grep -Eq "^#define __NR_[a-z0-9_]+ $nr\$" "$hdr" || continue
			echo "  table: $nr $name is not in $hdr" >&2
			bad=1
		done < <("$ENOSYS" --table)
		while read -r _ name nr; do
			name=${name#__NR_}
			[ "$nr" -ge 273 ] || continue
			"$ENOSYS" --table | grep -q "^$nr $name\$" && continue
			echo "  header: $nr $name is missing from the table" >&2
			bad=1
		done < <(grep '^#define __NR_' "$hdr")
		return $bad
	}
	check "syscall table agrees with <asm/unistd_64.h>" table_matches_header

	# calls FLOOR "NR..." "EXPECTED..." (ENOSYS or present, in order)
	calls() {
		local out want
		# shellcheck disable=SC2086 # word lists
		out=$("$ENOSYS" --floor "$1" -- "$ENOSYS" --call $2 | awk '{ print $2 }' | xargs)
		want=$(xargs <<<"$3")
		[ "$out" = "$want" ] || { echo "  floor $1, calls $2: got $out, want $want" >&2; return 1; }
	}
	# Without the filter, getrandom and statx are there on this kernel.
	no_filter() { [ "$("$ENOSYS" --call 318 332 | awk '{ print $2 }' | xargs)" = "present present" ]; }
	check "without the filter getrandom and statx answer" no_filter
	old_uname() { [[ "$("$ENOSYS" --floor 2.6.36 -- busybox uname -r)" == 2.6.* ]]; }
	check "2.6.36 floor: uname reports a 2.6 kernel" old_uname
	check "2.6.36 floor: name_to_handle_at, sendmmsg, getrandom, statx, clone3 get ENOSYS" \
		calls 2.6.36 "303 307 318 332 435 4242" "ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS"
	check "2.6.36 floor: prlimit64, epoll_create1, accept4, pipe2, recvmmsg still answer" \
		calls 2.6.36 "302 291 288 293 299" "present present present present present"
	check "2.6.22 floor: epoll_create1, eventfd2, pipe2, dup3, accept4, signalfd4, timerfd_create, fallocate get ENOSYS" \
		calls 2.6.22 "291 290 293 292 288 289 283 285" \
		"ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS ENOSYS"
	check "2.6.22 floor: eventfd, signalfd, epoll_create, epoll_pwait still answer" \
		calls 2.6.22 "284 282 213 281" "present present present present"
	# Flags inside older calls: NR:ARG... makes the call with those
	# arguments (p: a pointer to two ints). socket(AF_INET, SOCK_STREAM |
	# flags), socketpair(AF_UNIX, ...), fcntl(0, F_DUPFD_CLOEXEC, 10).
	local flagged="41:2:0x80001 41:2:0x801 53:1:0x80801:0:p 72:0:1030:10"
	local plain="41:2:1 53:1:1:0:p 72:0:0:10"
	check "2.6.22 floor: SOCK_CLOEXEC, SOCK_NONBLOCK (socket, socketpair), F_DUPFD_CLOEXEC get EINVAL" \
		calls 2.6.22 "$flagged" "EINVAL EINVAL EINVAL EINVAL"
	check "2.6.22 floor: the same calls without those flags answer" \
		calls 2.6.22 "$plain" "ok ok ok"
	check "2.6.24 floor: F_DUPFD_CLOEXEC answers, the socket flags still get EINVAL" \
		calls 2.6.24 "$flagged" "EINVAL EINVAL EINVAL ok"
	check "2.6.36 floor: all of those flags are accepted" \
		calls 2.6.36 "$flagged" "ok ok ok ok"
	denied() {
		[ "$("$ENOSYS" --floor 2.6.22 --deny 213 -- "$ENOSYS" --call 213 41 | awk '{ print $2 }' | xargs)" = "ENOSYS present" ]
	}
	check "--deny 213: epoll_create answers ENOSYS, socket still answers" denied
}

# Runs inside new mount, network and pid namespaces (see main).
router() {
	set -u
	mount --make-rprivate /
	ip link set lo up
	local R=$WORK/root cam=$WORK/www token
	mkdir -p "$R" "$cam"
	mount -t tmpfs -o size=64m,mode=755 tomato-root "$R"
	mkdir -p "$R"/{bin,sbin,usr,proc,dev,run,jffs,opt,tmp/etc,tmp/var/run,tmp/var/log,tmp/home/root}
	# Tomato: /etc and /var live in RAM under /tmp.
	ln -s tmp/etc "$R/etc"
	ln -s tmp/var "$R/var"
	ln -s usr/lib "$R/lib"
	ln -s usr/lib64 "$R/lib64"
	mount --bind /usr "$R/usr" && mount -o remount,bind,ro "$R/usr"
	mount -t proc proc "$R/proc"
	local n
	for n in null zero random urandom tty; do
		touch "$R/dev/$n" && mount --bind "/dev/$n" "$R/dev/$n"
	done
	mount -t tmpfs -o size=32m jffs "$R/jffs"
	for n in $APPLETS; do ln -s /usr/bin/busybox "$R/bin/$n"; done
	for n in iptables ip6tables iptables-save ip6tables-save; do
		ln -s /usr/sbin/xtables-legacy-multi "$R/sbin/$n"
	done
	# Stand-in for Tomato's nvram command.
	cat >"$R/sbin/nvram" <<-'EOF'
		#!/bin/sh
		# Multi-line values (the Scripts tabs) are files in /tmp/.nvram.d.
		[ "$1" = get ] || exit 0
		if [ -f "/tmp/.nvram.d/$2" ]; then cat "/tmp/.nvram.d/$2"; else sed -n "s/^$2=//p" /tmp/.nvram-standin; fi
	EOF
	chmod 755 "$R/sbin/nvram"
	echo "https_crt_save=1" >"$R/tmp/.nvram-standin"
	printf 'root:x:0:0:root:/tmp/home/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$R/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$R/etc/group"
	echo "127.0.0.1 localhost" >"$R/etc/hosts"

	# in_root CMD...: a command in the router's root with a clean environment.
	in_root() { env -i PATH=/bin:/sbin HOME=/tmp/home/root chroot "$R" "$@"; }
	in_root /bin/syslogd -O /var/log/messages

	# The camera: plain HTTP on the router's loopback.
	token=camera-$RANDOM$RANDOM
	echo "$token" >"$cam/index.html"
	busybox httpd -p 127.0.0.1:8080 -h "$cam"

	local cert=$R/tmp/etc/cert.pem key=$R/tmp/etc/key.pem
	# The router's certificate as Tomato makes it: RSA-2048, PKCS#1 key.
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=router \
		-keyout "$WORK/key8.pem" -out "$WORK/router-cert.pem" 2>/dev/null
	openssl rsa -in "$WORK/key8.pem" -traditional -out "$WORK/router-key.pem" 2>/dev/null

	floor_smoke "$R" "$token"

	# A second namespace stands for the Internet side, linked by a veth pair.
	unshare -n sleep 600 &
	local wan=$!
	sleep 0.2
	ip link add wan0 type veth peer name wan1 netns "$wan"
	ip addr add 10.99.0.1/24 dev wan0 && ip link set wan0 up
	nsenter -t "$wan" -n sh -c 'ip link set lo up; ip addr add 10.99.0.2/24 dev wan1; ip link set wan1 up'
	from_wan() { nsenter -t "$wan" -n curl -sk --max-time 3 "https://10.99.0.1:$1/"; }

	# What Tomato's firewall leaves before user scripts: loopback and LAN
	# allowed, the rest dropped.
	tomato_firewall() {
		local ipt
		for ipt in iptables-legacy ip6tables-legacy; do
			$ipt-restore <<-'EOF'
				*filter
				:INPUT DROP [0:0]
				:FORWARD DROP [0:0]
				:OUTPUT ACCEPT [0:0]
				-A INPUT -m state --state INVALID -j DROP
				-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
				-A INPUT -i lo -j ACCEPT
				-A INPUT -i br0 -j ACCEPT
				COMMIT
			EOF
		done
	}
	tomato_firewall
	local base4 base6
	base4=$(iptables-legacy -S)
	base6=$(ip6tables-legacy -S)

	"$scripts/mkbundle.sh" "$R/tmp/camtls-tomato.sh" "x86_64-unknown-linux-musl=$BIN" >/dev/null

	camtls_pids() {
		local p
		for p in /proc/[0-9]*; do
			tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qx "$1" && echo "${p#/proc/}"
		done
	}
	count_is() { [ "$(camtls_pids "$1" | wc -l)" -eq "$2" ]; }
	serves() { [ "$(curl -sk --max-time 3 "https://127.0.0.1:$1/")" = "$token" ]; }

	# 1. Install before the certificate exists, as at first boot.
	local out rc
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 \
		--route 8444=localhost:8080 2>&1)
	rc=$?
	printf '  | %s\n' "$out"
	check "install exits 0" [ $rc = 0 ]
	check "install puts the binary in /jffs/bin" cmp -s "$BIN" "$R/jffs/bin/camtls"
	exe_scripts() {
		local f
		for f in camtls.init camtls.fire camtls.shut; do [ -x "$R/jffs/etc/config/$f" ] || return 1; done
	}
	check "install writes executable camtls.init/.fire/.shut in /jffs/etc/config" exe_scripts
	check "the Init script carries the routes" \
		grep -qx 'ROUTES="8443=127.0.0.1:8080 8444=localhost:8080"' "$R/jffs/etc/config/camtls.init"
	check "the Firewall script has no routes of its own (it reads the Init script's)" \
		eval '! grep -q "^ROUTES=" "$R/jffs/etc/config/camtls.fire"'
	check "camtls.init names the installed binary" grep -qx 'BIN="/jffs/bin/camtls"' "$R/jffs/etc/config/camtls.init"
	check "install says HTTPS admin must be on" grep -q "enable HTTPS" <<<"$out"
	check "no temporary files left in /tmp" [ -z "$(find "$R/tmp" -maxdepth 1 -name 'camtls-install.*')" ]
	# Time a fresh Init (the installer's own run already started a loop).
	in_root /jffs/etc/config/camtls.shut
	local start end
	start=$(date +%s%N)
	in_root /jffs/etc/config/camtls.init
	rc=$?
	end=$(date +%s%N)
	in_root /jffs/etc/config/camtls.fire
	check "Init returns at once without a certificate ($(((end - start) / 1000000)) ms)" \
		eval '[ $rc = 0 ] && [ $(((end - start) / 1000000)) -lt 2000 ]'
	check "no camtls runs while the certificate is missing" count_is /jffs/bin/camtls 0
	check "one Init loop waits" [ -n "$(cat "$R/var/run/camtls.loop/pid" 2>/dev/null)" ]

	# 2. The web server writes the certificate late.
	sleep 2
	cp "$WORK/router-key.pem" "$key"
	cp "$WORK/router-cert.pem" "$cert"
	check "camtls starts once the certificate appears" within 15 count_is /jffs/bin/camtls 1
	check "https://127.0.0.1:8443/ returns the camera's page" within 10 serves 8443
	check "https://127.0.0.1:8444/ (a backend by name) returns the camera's page" within 5 serves 8444
	served_fp() {
		openssl s_client -connect 127.0.0.1:8443 </dev/null 2>/dev/null |
			openssl x509 -noout -fingerprint -sha256
	}
	check "it serves the router's certificate" \
		[ "$(served_fp)" = "$(openssl x509 -in "$cert" -noout -fingerprint -sha256)" ]
	local pid
	pid=$(camtls_pids /jffs/bin/camtls)
	check "camtls runs as nobody" grep -Eq '^Uid:[[:space:]]+65534[[:space:]]' "/proc/$pid/status"
	check "camtls writes its pid file" eval '[ -n "$pid" ] && [ "$(cat "$R/var/run/camtls.pid")" = "$pid" ]'
	check "camtls logs to syslog" within 5 grep -q camtls "$R/var/log/messages"

	# 3. Init run again (a second boot event, a user) starts nothing more.
	in_root /jffs/etc/config/camtls.init
	in_root /jffs/etc/config/camtls.init
	sleep 1
	check "running Init twice more keeps one camtls, the same process" \
		eval '[ -n "$pid" ] && [ "$(camtls_pids /jffs/bin/camtls)" = "$pid" ]'

	# 4. A crash: the loop restarts it.
	kill -9 "$pid"
	restarted() { local p; p=$(camtls_pids /jffs/bin/camtls); [ -n "$p" ] && [ "$p" != "$pid" ] && count_is /jffs/bin/camtls 1; }
	check "after kill -9 camtls is restarted, one copy" within 15 restarted
	check "and serves again" within 10 serves 8443
	check "the restart is logged" grep -q "camtls exited" "$R/var/log/messages"

	# 5. Firewall: Tomato runs the script at every firewall restart.
	rules_ok() {
		local ipt=$1 p
		[ "$($ipt -S INPUT | grep -c -- '-j camtls$')" -eq 1 ] || return 1
		[ "$($ipt -S camtls | grep -c -- '-A camtls')" -eq $(($# - 1)) ] || return 1
		for p in "${@:2}"; do
			[ "$($ipt -S camtls | grep -c -- "--dport $p -j ACCEPT")" -eq 1 ] || return 1
		done
	}
	in_root /jffs/etc/config/camtls.fire
	in_root /jffs/etc/config/camtls.fire
	check "three Firewall runs: one rule per port, one jump (IPv4)" rules_ok iptables-legacy 8443 8444
	check "three Firewall runs: one rule per port, one jump (IPv6)" rules_ok ip6tables-legacy 8443 8444
	check "the port is open from the WAN side" within 5 eval '[ "$(from_wan 8443)" = "$token" ]'
	tomato_firewall
	check "after a firewall restart the port is closed again (test sanity)" eval '! from_wan 8443 >/dev/null'
	in_root /jffs/etc/config/camtls.fire
	check "the Firewall script reopens it" eval '[ "$(from_wan 8443)" = "$token" ]'
	check "and again exactly one rule per port" rules_ok iptables-legacy 8443 8444
	# Pasted into the Scripts tabs: no camtls.init beside the Firewall
	# script; it reads the routes from the Init tab (nvram script_init).
	mkdir -p "$R/tmp/.nvram.d" "$R/tmp/tab"
	sed 's/^ROUTES=.*/ROUTES="8445=127.0.0.1:8080"/' "$R/jffs/etc/config/camtls.init" \
		>"$R/tmp/.nvram.d/script_init"
	cp "$R/jffs/etc/config/camtls.fire" "$R/tmp/tab/fire"
	in_root /bin/sh /tmp/tab/fire
	check "pasted Firewall script: the ports of the pasted Init script" rules_ok iptables-legacy 8445
	rm "$R/tmp/.nvram.d/script_init"
	tomato_firewall
	in_root /bin/sh /tmp/tab/fire
	check "no Init script to read: no port opened, the reason logged" \
		eval '! iptables-legacy -S INPUT | grep -q -- "-j camtls$" && grep -q "no ROUTES line in the Init script" "$R/var/log/messages"'
	in_root /jffs/etc/config/camtls.fire
	check "the installed scripts again: their ports" rules_ok iptables-legacy 8443 8444

	# 5b. The cap per client address: the installer writes it into the Init
	#     script's OPTS beside the options already there, camtls gets it.
	local init=$R/jffs/etc/config/camtls.init
	check "the Init script starts with an empty OPTS" grep -qx 'OPTS=""' "$init"
	sed -i 's/^OPTS=""$/OPTS="--preserve-host"/' "$init"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --max-per-address 2 2>&1)
	rc=$?
	printf '  | %s\n' "$out"
	check "--max-per-address 2: the installer exits 0" [ $rc = 0 ]
	check "--max-per-address 2: in OPTS, after the option already there" \
		grep -qx 'OPTS="--preserve-host --max-per-address 2"' "$init"
	check "--max-per-address alone: the routes are kept" \
		grep -qx 'ROUTES="8443=127.0.0.1:8080 8444=localhost:8080"' "$init"
	running_with() {
		local p
		p=$(camtls_pids /jffs/bin/camtls)
		[ "$(wc -w <<<"$p")" = 1 ] && [[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" == *" $1 "* ]]
	}
	check "camtls runs with --preserve-host --max-per-address 2" \
		within 15 running_with "--preserve-host --max-per-address 2"
	check "and serves" within 10 serves 8443
	# Two connections from 127.0.0.1 that never start TLS hold the cap. Both
	# on one port, whose backlog camtls accepts in order, and a moment for it
	# to take them: across two listeners a third connection could be
	# accepted first and one of the two refused instead.
	exec 7<>/dev/tcp/127.0.0.1/8443 8<>/dev/tcp/127.0.0.1/8443
	sleep 0.5
	check "a third connection from the same address is closed" eval '! serves 8443'
	check "the refusal is logged, naming the option" \
		within 5 grep -q "already has 2 connections open (--max-per-address)" "$R/var/log/messages"
	check "another address is still served" eval '[ "$(from_wan 8443)" = "$token" ]'
	exec 7>&-
	check "once one of the two closes, the address is served again" within 5 serves 8443
	exec 8>&-
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 \
		--route 8444=localhost:8080 --max-per-address 0040 2>&1)
	rc=$?
	check "a new --max-per-address replaces the old one, leading zeros dropped" \
		eval '[ $rc = 0 ] && grep -qx "OPTS=\"--preserve-host --max-per-address 40\"" "$init"'
	check "and says it keeps the other options, not the replaced value" \
		grep -qx "camtls: keeping the installed options: --preserve-host" <<<"$out"
	check "camtls runs with --max-per-address 40" within 15 running_with "--max-per-address 40"
	refused_value() {
		local v=$1 out
		out=$(in_root /bin/sh /tmp/camtls-tomato.sh --max-per-address "$v" 2>&1) && return 1
		grep -q "needs a whole number of 1 or more, not '$v'" <<<"$out" &&
			grep -qx 'OPTS="--preserve-host --max-per-address 40"' "$init"
	}
	for n in 0 000 -1 8x "" " 8"; do
		check "--max-per-address '$n' is refused and changes nothing" refused_value "$n"
	done
	check "--max-per-address with no value: usage, exit 2" \
		eval 'in_root /bin/sh /tmp/camtls-tomato.sh --max-per-address >/dev/null 2>&1; [ $? = 2 ]'
	sed -i 's/^OPTS="/OPTS="--no-such-option /' "$init"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh 2>&1)
	rc=$?
	check "a bad option in the installed OPTS stops an upgrade, and is named" \
		eval '[ $rc != 0 ] && grep -q "options were not accepted: .* --no-such-option" <<<"$out"'
	sed -i 's/^OPTS="--no-such-option /OPTS="/' "$init"
	check "camtls still runs with --max-per-address 40" running_with "--max-per-address 40"

	# 6. Upgrade in place, no --route: the routes are kept.
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh 2>&1)
	check "upgrade without --route exits 0" [ $? = 0 ]
	check "upgrade keeps the routes" \
		grep -qx 'ROUTES="8443=127.0.0.1:8080 8444=localhost:8080"' "$R/jffs/etc/config/camtls.init"
	check "upgrade prints the certificate fingerprint" grep -q "SHA-256" <<<"$out"
	check "upgrade keeps OPTS with --max-per-address" \
		grep -qx 'OPTS="--preserve-host --max-per-address 40"' "$init"
	check "upgrade says so" grep -q "keeping the installed options: --preserve-host --max-per-address 40" <<<"$out"
	check "after the upgrade one camtls serves" within 15 eval 'count_is /jffs/bin/camtls 1 && serves 8443'

	# 7. Reinstall with one route fewer: its rule goes.
	in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 >/dev/null 2>&1
	check "a dropped route's port is closed" rules_ok iptables-legacy 8443
	check "a bad route is refused and changes nothing" \
		eval '! in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=nocolon >/dev/null 2>&1 &&
			grep -qx "ROUTES=\"8443=127.0.0.1:8080\"" "$R/jffs/etc/config/camtls.init"'
	check "one camtls serves after reinstall" within 15 eval 'count_is /jffs/bin/camtls 1 && serves 8443'

	# 8. Shutdown: nothing running, no rules.
	in_root /jffs/etc/config/camtls.shut
	check "Shutdown stops camtls and its loop" eval 'count_is /jffs/bin/camtls 0 && [ ! -e "$R/var/run/camtls.loop" ]'
	check "Shutdown removes the pid file" [ ! -e "$R/var/run/camtls.pid" ]
	check "Shutdown removes the IPv4 rules" [ "$(iptables-legacy -S)" = "$base4" ]
	check "Shutdown removes the IPv6 rules" [ "$(ip6tables-legacy -S)" = "$base6" ]
	sleep 5
	check "and nothing restarts it" count_is /jffs/bin/camtls 0

	# 9. Uninstall: nothing left.
	in_root /jffs/etc/config/camtls.init
	in_root /jffs/etc/config/camtls.fire
	within 15 serves 8443
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "uninstall: /jffs is empty again" [ -z "$(ls -A "$R/jffs")" ]
	check "uninstall: no camtls, no loop" eval 'count_is /jffs/bin/camtls 0 && [ ! -e "$R/var/run/camtls.loop" ]'
	check "uninstall: no rules" eval '[ "$(iptables-legacy -S)" = "$base4" ] && [ "$(ip6tables-legacy -S)" = "$base6" ]'

	# 10. With Entware the binary goes to /opt, the scripts still to /jffs.
	mount -t tmpfs -o size=32m opt "$R/opt"
	mkdir -p "$R/opt/bin" && touch "$R/opt/bin/opkg" && chmod 755 "$R/opt/bin/opkg"
	cp "$WORK/router-cert.pem" "$cert"
	in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 >/dev/null 2>&1
	check "Entware: binary in /opt/bin" cmp -s "$BIN" "$R/opt/bin/camtls"
	check "install after uninstall: OPTS empty again, as in the template" grep -qx 'OPTS=""' "$init"
	check "Entware: camtls serves from /opt/bin" within 15 eval 'count_is /opt/bin/camtls 1 && serves 8443'
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "Entware uninstall: only opkg is left in /opt, /jffs empty" \
		eval '[ "$(cd "$R/opt" && find . -type f)" = ./bin/opkg ] && [ -z "$(ls -A "$R/jffs")" ]'

	# 11. Neither JFFS nor Entware: RAM only, with a warning.
	umount "$R/opt" "$R/jffs"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 2>&1)
	check "no JFFS: installs to /tmp/camtls and /etc/config" \
		eval '[ -x "$R/tmp/camtls/camtls" ] && [ -x "$R/tmp/etc/config/camtls.init" ]'
	check "no JFFS: warns that it is lost at reboot" grep -q "lost at reboot" <<<"$out"
	check "no JFFS: camtls serves" within 15 eval 'count_is /tmp/camtls/camtls 1 && serves 8443'
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "no JFFS uninstall: nothing left" \
		eval '[ ! -e "$R/tmp/camtls" ] && [ ! -e "$R/tmp/etc/config" ] && count_is /tmp/camtls/camtls 0'

	# 11b. A small JFFS (MIPS routers with 8 MB of flash have a few hundred
	#      kB), too small for the binary.
	local binkb pid0 big=$R/tmp/camtls-big
	binkb=$(($(stat -c %s "$BIN") / 1024))
	mount -t tmpfs -o size=512k jffs "$R/jffs"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 2>&1)
	rc=$?
	printf '  | %s\n' "$out"
	check "small JFFS (512 kB), no Entware: installs, exit 0" [ $rc = 0 ]
	says_room() {
		local n
		n=$(sed -n 's|^camtls: warning: /jffs has [0-9]* kB free for camtls, it needs \([0-9]*\) kB$|\1|p' <<<"$out")
		[ -n "$n" ] && [ "$n" -gt "$binkb" ]
	}
	check "small JFFS: says how much room /jffs has and how much camtls needs" says_room
	check "small JFFS: the binary and the scripts go to RAM together (/tmp/camtls, /etc/config)" \
		eval '[ -x "$R/tmp/camtls/camtls" ] && [ -x "$R/tmp/etc/config/camtls.init" ]'
	check "small JFFS: nothing is left in /jffs" [ -z "$(ls -A "$R/jffs")" ]
	check "small JFFS: warns it is lost at reboot, and to make room in /jffs or use Entware" \
		grep -q "lost at reboot: JFFS has too little room .* Make room in /jffs, or use Entware" <<<"$(tr '\n' ' ' <<<"$out")"
	check "small JFFS: camtls serves" within 15 eval 'count_is /tmp/camtls/camtls 1 && serves 8443'
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "small JFFS uninstall: nothing left" \
		eval '[ ! -e "$R/tmp/camtls" ] && [ ! -e "$R/tmp/etc/config" ] && [ -z "$(ls -A "$R/jffs")" ]'

	# With Entware as well: the binary on the USB drive, the scripts (5 kB)
	# in the small JFFS, where the boot-time Init finds them.
	mount -t tmpfs -o size=32m opt "$R/opt"
	mkdir -p "$R/opt/bin" && touch "$R/opt/bin/opkg" && chmod 755 "$R/opt/bin/opkg"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 2>&1)
	check "small JFFS with Entware: binary in /opt/bin, scripts in /jffs/etc/config" \
		eval '[ $? = 0 ] && cmp -s "$BIN" "$R/opt/bin/camtls" && [ -x "$R/jffs/etc/config/camtls.init" ]'
	check "small JFFS with Entware: camtls serves" within 15 eval 'count_is /opt/bin/camtls 1 && serves 8443'
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	# A JFFS with no room even for the scripts: they go to the USB drive,
	# with the warnings that say so.
	umount "$R/jffs"
	mount -t tmpfs -o size=8k jffs "$R/jffs"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 2>&1)
	check "full JFFS with Entware: binary and scripts on the USB drive, JFFS untouched" \
		eval '[ $? = 0 ] && [ -x "$R/opt/bin/camtls" ] && [ -x "$R/opt/etc/config/camtls.init" ] && [ -z "$(ls -A "$R/jffs")" ]'
	check "full JFFS with Entware: warns that /jffs has no room for the scripts, and of the USB drive at boot" \
		eval 'grep -q "/jffs has no room for the scripts" <<<"$out" && grep -q "mounted after boot" <<<"$out"'
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "full JFFS with Entware uninstall: only opkg is left in /opt" \
		eval '[ "$(cd "$R/opt" && find . -type f)" = ./bin/opkg ]'
	umount "$R/opt" "$R/jffs"

	# A JFFS with room for one binary only: the first install fits; an
	# upgrade counts the old binary's room and replaces it in place (the
	# copy beside it would not fit).
	mount -t tmpfs -o size=$((binkb + 160))k jffs "$R/jffs"
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --route 8443=127.0.0.1:8080 2>&1)
	check "JFFS with room for one binary: installs there" \
		eval '[ $? = 0 ] && cmp -s "$BIN" "$R/jffs/bin/camtls" && [ -x "$R/jffs/etc/config/camtls.init" ]'
	check "and serves" within 15 eval 'count_is /jffs/bin/camtls 1 && serves 8443'
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh 2>&1)
	rc=$?
	printf '  | %s\n' "$out"
	check "an upgrade in that JFFS succeeds in place" \
		eval '[ $rc = 0 ] && cmp -s "$BIN" "$R/jffs/bin/camtls" && [ ! -e "$R/tmp/camtls" ]'
	check "and leaves no .new file" [ -z "$(find "$R/jffs" -name '*.new')" ]
	check "and camtls serves again" within 15 eval 'count_is /jffs/bin/camtls 1 && serves 8443'
	# A larger binary that fits neither beside the old one nor in its place:
	# refused in one message, nothing changed, the installed one still runs.
	cp "$BIN" "$big" && head -c 307200 /dev/zero >>"$big"
	# shellcheck disable=SC2034 # read by the eval below
	pid0=$(camtls_pids /jffs/bin/camtls)
	out=$(in_root /bin/sh /tmp/camtls-tomato.sh --bin /tmp/camtls-big 2>&1)
	rc=$?
	printf '  | %s\n' "$out"
	check "a binary too large for that JFFS: refused, saying the installed one is left as it was" \
		eval '[ $rc != 0 ] && grep -q "not upgraded: /jffs/bin has no room .* left as it was" <<<"$(tr "\n" " " <<<"$out")"'
	check "and nothing changed: the same binary and scripts, nothing in RAM, no .new file" \
		eval 'cmp -s "$BIN" "$R/jffs/bin/camtls" && grep -qx "BIN=\"/jffs/bin/camtls\"" "$R/jffs/etc/config/camtls.init" &&
			[ ! -e "$R/tmp/camtls" ] && [ ! -e "$R/tmp/etc/config" ] && [ -z "$(find "$R/jffs" -name "*.new")" ]'
	check "and the installed camtls still runs, the same process" \
		eval '[ -n "$pid0" ] && [ "$(camtls_pids /jffs/bin/camtls)" = "$pid0" ] && serves 8443'
	rm -f "$big"
	in_root /bin/sh /tmp/camtls-tomato.sh --uninstall >/dev/null 2>&1
	check "uninstall from that JFFS: /jffs empty" [ -z "$(ls -A "$R/jffs")" ]
	umount "$R/jffs"

	# 12. Which binary: uname and the ELF header of /bin/busybox as a MIPS or
	#     an ARM Tomato router has them (MIPS ones say "mips" although they
	#     are little-endian). The bundle holds the x86_64 build, the mipsel
	#     one and a file standing for the ARM one; those two do not run here,
	#     so the installer refuses the one it picked, naming it.
	printf '\177ELF\001\001\001' >"$WORK/not-armv7"
	printf '\177ELF\001\001\001' >"$WORK/not-mipsel"
	"$scripts/mkbundle.sh" "$R/tmp/camtls-multi.sh" "x86_64-unknown-linux-musl=$BIN" \
		"mipsel-unknown-linux-musl=${MIPSEL_BIN:-$WORK/not-mipsel}" \
		"armv7-unknown-linux-musleabi=$WORK/not-armv7" >/dev/null
	as_router() { # MACHINE RELEASE EI_DATA (1 little-, 2 big-endian)
		rm -f "$R/bin/uname" "$R/bin/busybox"
		printf '#!/bin/sh\ncase "$1" in -m) echo %s ;; -r) echo %s ;; *) exec /usr/bin/busybox uname "$@" ;; esac\n' \
			"$1" "$2" >"$R/bin/uname"
		chmod 755 "$R/bin/uname"
		printf '\177ELF\001%b\001' "\\00$3" >"$R/bin/busybox"
		out=$(in_root /bin/sh /tmp/camtls-multi.sh --route 8443=127.0.0.1:8080 2>&1)
		printf '  | %s %s: %s\n' "$1" "$2" "$out"
	}
	as_router mips 2.6.22.19 1
	check "MIPS router (uname mips, little-endian busybox), 2.6.22.19: the mipsel build is picked" \
		grep -q "the mipsel-unknown-linux-musl binary does not run on this router (mips, 2.6.22.19)" <<<"$out"
	check "MIPS router, 2.6.22.19: no kernel refusal" eval '! grep -q "needs Linux" <<<"$out"'
	as_router mips 2.6.22.19 2
	check "big-endian MIPS: the mips build is looked for" \
		grep -q "has no camtls-mips-unknown-linux-musl inside" <<<"$out"
	as_router armv7l 2.6.36.4brcmarm 1
	check "ARM router (uname armv7l), 2.6.36: the armv7 soft-float build is picked" \
		grep -q "the armv7-unknown-linux-musleabi binary does not run on this router (armv7l, 2.6.36.4brcmarm)" <<<"$out"
	as_router mips 2.4.20 1
	check "a 2.4 kernel (Tomato's oldest builds): one line naming 2.6.22" \
		eval '[ "$(grep -c . <<<"$out")" = 1 ] && grep -q "needs Linux 2.6.22 or later; this router runs 2.4.20" <<<"$out"'
	check "nothing is installed by the refused runs" \
		eval '[ ! -e "$R/tmp/camtls" ] && [ ! -e "$R/tmp/etc/config" ] && [ -z "$(find "$R/tmp" -maxdepth 1 -name "camtls-install.*")" ]'
	rm -f "$R/bin/uname" "$R/bin/busybox"
	ln -s /usr/bin/busybox "$R/bin/uname"

	kill "$wan" 2>/dev/null
}

# The binary on a kernel floor, inside the router namespace (own loopback).
floor_smoke() {
	local R=$1 token=$2 out rc floor pid
	[ -x "$ENOSYS" ] || { bad "kernel floor checks (no enosys)"; return; }
	floor_serves() { [ "$(curl -sk --max-time 3 https://127.0.0.1:18443/)" = "$token" ]; }
	# 2.6.22, FreshTomato MIPS, and 2.6.36, FreshTomato ARM: it serves.
	for floor in 2.6.22 2.6.36; do
		"$ENOSYS" --floor $floor -- "$BIN" --route 127.0.0.1:18443=127.0.0.1:8080 \
			--cert "$WORK/router-cert.pem" --key "$WORK/router-key.pem" 2>"$WORK/floor.log" &
		pid=$!
		check "$floor: camtls serves HTTPS with the router's RSA key" within 10 floor_serves
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		sed 's/^/  | /' "$WORK/floor.log" | head -n 5
	done
	# A kernel without epoll at all (epoll_create answering ENOSYS too): one
	# line naming what is missing, exit 2 (retrying cannot help, so the Init
	# script's loop stops).
	out=$("$ENOSYS" --floor 2.6.22 --deny 213 -- "$BIN" --route 127.0.0.1:18443=127.0.0.1:8080 \
		--cert "$WORK/router-cert.pem" --key "$WORK/router-key.pem" 2>&1)
	rc=$?
	echo "  | no epoll: exit $rc: $out"
	check "a kernel without epoll: camtls exits 2, no crash" [ $rc = 2 ]
	one_line_naming() { [ "$(grep -c . <<<"$out")" = 1 ] && grep -q "needs epoll" <<<"$out"; }
	check "a kernel without epoll: one line saying it needs epoll" one_line_naming
}

# The end-to-end, process (--daemon, --pidfile, --user, SIGHUP, SIGTERM) and
# proxy suites, on the 2.6.22 and 2.6.36 floors: every call after the floor
# answering ENOSYS and, below 2.6.27, the socket flags EINVAL. The two syslog
# tests are left out: they give camtls a /dev holding only null and log, and
# without getrandom OpenSSL seeds from /dev/urandom, which every router has.
# One test at a time: in parallel, a port one test checks is closed can be
# taken by another test meanwhile.
suite_under() { # NAME RUNNER SUITE BINARY
	local log=$WORK/suite.log n
	(cd "$repo" && CAMTLS_BIN=$4 CAMTLS_RUNNER=$2 \
		cargo test --test "$3" -- --skip syslog_ --test-threads=1) >"$log" 2>&1
	n=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | grep -Eo '[0-9]+ passed')
	if grep -Eq '^test result: ok\. [1-9]' "$log"; then
		ok "tests/$3.rs $1 ($n)"
	else
		bad "tests/$3.rs $1"
		tail -n 30 "$log" | sed 's/^/  | /'
	fi
}
suites_on_floor() {
	[ -x "$ENOSYS" ] || { bad "test suites on old kernels (no enosys)"; return; }
	local floor suite
	for floor in 2.6.22 2.6.36; do
		for suite in e2e process proxy; do
			suite_under "on the $floor floor" "$ENOSYS --floor $floor" "$suite" "$BIN"
		done
	done
	[ -n "$MIPSEL_BIN" ] || return 0
	# Its CPU baseline, MIPS32 release 2: a 74K core (RT-N66U, RT-N16) runs
	# it, a release 1 core (4Kc here, BMIPS3300 in old routers) gets one line.
	local out rc
	out=$(qemu-mipsel-static -cpu 4Kc "$MIPSEL_BIN" --version 2>&1)
	rc=$?
	echo "  | MIPS32 release 1 (qemu -cpu 4Kc): exit $rc: $out"
	check "mipsel on a MIPS32 release 1 core: exit 2, one line naming release 2, no SIGILL" \
		eval '[ $rc = 2 ] && [ "$(grep -c . <<<"$out")" = 1 ] && grep -q "MIPS32 release 2" <<<"$out"'
	check "mipsel on a 74K core (qemu -cpu 74Kf): it runs" \
		eval '[[ "$(qemu-mipsel-static -cpu 74Kf "$MIPSEL_BIN" --version)" == "camtls "* ]]'
	# The mipsel build itself, its uname reporting FreshTomato MIPS's kernel.
	suite_under "with the mipsel build, uname 2.6.22.19 (qemu)" \
		"qemu-mipsel-static -r 2.6.22.19" e2e "$MIPSEL_BIN"
	# Its fallbacks, with MIPS o32 numbers: qemu passes the guest's calls to
	# the host under the floor. Only the start: qemu makes the guest's old
	# pipe a pipe2 on the host, which the floor refuses, so camtls stops
	# there (on a 2.6.22 router pipe is pipe).
	local trace=$WORK/mipsel.strace
	timeout 20 "$ENOSYS" --floor 2.6.22 -- qemu-mipsel-static -r 2.6.22.19 -strace "$MIPSEL_BIN" \
		--route 127.0.0.1:18446=127.0.0.1:8080 --cert "$WORK/router-cert.pem" \
		--key "$WORK/router-key.pem" >"$trace" 2>&1
	fell_back() { # NEW-CALL ERRNO OLD-CALL: the old call follows the refused one
		grep -A1 -E "^[0-9]+ $1\(.*errno=$2 " "$trace" | grep -Eq "^[0-9]+ $3\(.*\) = [0-9]+\$"
	}
	check "mipsel on the 2.6.22 floor: epoll_create1 (ENOSYS) falls back to epoll_create" \
		fell_back epoll_create1 89 epoll_create
	check "mipsel on the 2.6.22 floor: socket with SOCK_CLOEXEC (EINVAL) falls back to a plain socket" \
		fell_back socket 22 socket
}

ENOSYS=$repo/target/tomato/enosys
if [ "${1:-}" = --router ]; then
	BIN=$2 MIPSEL_BIN=$3 WORK=$4 RESULTS=$5
	router
	exit 0
fi

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -x "$1" ] || { [ $# = 2 ] && [ ! -x "$2" ]; }; then
	echo "usage: $0 BINARY [MIPSEL_BINARY] (the x86_64 and mipsel static builds)" >&2
	exit 2
fi
BIN=$(realpath "$1")
MIPSEL_BIN=
[ $# = 2 ] && MIPSEL_BIN=$(realpath "$2")
WORK=$(mktemp -d /tmp/camtls-tomato.XXXXXX)
RESULTS=$WORK/results
trap 'rm -rf "$WORK"' EXIT
: >"$RESULTS"

lint
filter
unshare --mount --net --pid --fork --mount-proc \
	bash "$0" --router "$BIN" "$MIPSEL_BIN" "$WORK" "$RESULTS"
[ "${CAMTLS_E2E:-1}" = 0 ] || suites_on_floor

passed=$(grep -c '^ok$' "$RESULTS")
failed=$(grep -c '^fail$' "$RESULTS")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
