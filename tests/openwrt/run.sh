#!/usr/bin/env bash
# The OpenWrt package, with OpenWrt's own tools: shellcheck; the init script
# run under OpenWrt's real rc.common, functions.sh and procd.sh, with real uci
# and jshn, in a router-like chroot, on sample configurations; the firewall
# data it gives procd rendered by real firewall4; every .ipk and .apk
# unpacked and checked, then installed, edited, upgraded, reinstalled and
# removed with real opkg or apk-tools v3.
#
# usage: tests/openwrt/run.sh [PACKAGE.ipk|PACKAGE.apk...]
#   CAMTLS_BIN   a camtls binary that runs here (the init script calls its
#                --check, gen-cert and fingerprint); default target/release/camtls
#   VERSION      the version the packages must carry
#   OWRT_PREFIX  OpenWrt's tools, built by mk/openwrt-parts.sh (default: built
#                now into ~/.cache/camtls/openwrt-parts)
#   OPENWRT_PARTS_KIT  the parts kit (default ../shared/openwrt-parts)
#
# Stand-ins, because they cannot run off a router: ubus (procd's bus: the
# kit's stand-in records each call and its JSON; there is no procd, so
# nothing is started and respawn and triggers are only checked in what procd
# was told) and logd (logger records each message). The mocks of firewall4's
# own test harness stand in for the kernel's interfaces. Everything else is
# real: rc.common, functions.sh, procd.sh, uci, jshn, opkg, apk, fw4, ucode,
# busybox's ash and applets, the camtls binary, qemu-user for the packaged
# router binaries.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pkg=$repo/openwrt-package
init=$pkg/camtls/files/camtls.init
bin=$(realpath "${CAMTLS_BIN:-$repo/target/release/camtls}")
host_bin=$bin
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)}
kit=$(cd "${OPENWRT_PARTS_KIT:-$repo/../shared/openwrt-parts}" && pwd) || exit 1
if [ -z "${OWRT_PREFIX:-}" ]; then
	OWRT_PREFIX=$("$repo/mk/openwrt-parts.sh" "$kit" "${CAMTLS_CACHE:-$HOME/.cache/camtls}/openwrt-parts") || exit 1
fi
export OWRT_PREFIX
# shellcheck source=/dev/null # the kit's helpers (README.md in the kit)
. "$kit/lib.sh"
ucode=$OWRT_PREFIX/bin/ucode

pass=0
fail=0
ok() {
	echo "ok   ${prefix:-}$1"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL ${prefix:-}$1"
	fail=$((fail + 1))
}
# check NAME COMMAND...: one line per check.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
has_line() { grep -qxF -- "$2" "$1"; }
lacks_line() { ! grep -qxF -- "$2" "$1"; }
has_text() { grep -qF -- "$2" "$1"; }
lacks_text() { ! grep -qF -- "$2" "$1"; }
same() { [ "$1" = "$2" ] || { echo "     got:  $1" && echo "     want: $2" && false; }; }
mode_owner() { stat -c '%a %u:%g' "$1"; }

work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# --- shellcheck ------------------------------------------------------------
for f in "$init" "$pkg/ipk/postinst" "$pkg/ipk/prerm" "$pkg/ipk/build-ipk.sh" \
	"$pkg/apk/build-apk.sh" "$here/run.sh" "$repo/mk/openwrt-parts.sh"; do
	check "shellcheck ${f#"$repo"/}" shellcheck -x "$f"
done

# --- the init script -------------------------------------------------------
[ -x "$bin" ] || {
	echo "no camtls binary at $bin (set CAMTLS_BIN)"
	exit 1
}
why=$(unshare --mount --pid --fork true 2>&1) || {
	echo "the router-like chroot needs root (or user namespaces): $why"
	exit 1
}
# The accounts of OpenWrt's base-files (lib.sh's owrt_root).
nobody_ids=65534:65534

# A router-like root (lib.sh: busybox at OpenWrt's paths, real rc.common &
# co., uci, jshn, opkg, apk, the ubus stand-in) for each suite: the package's
# init script at /etc/init.d/camtls and the binary at /usr/sbin/camtls. A
# wrapper there runs a router binary under qemu-user.
# logger, as logd would: the message goes to the record with its priority
# (and to stderr with -s, as busybox's logger does).
logger_standin() {
	cat >"$1/usr/bin/logger" <<-'EOF'
		#!/bin/sh
		# logd stand-in: records each message in /tmp/ubus/calls
		tag="" prio=user.notice to_stderr=""
		while [ $# -gt 0 ]; do
			case "$1" in
			-s) to_stderr=1 ;;
			-t) tag=$2 && shift ;;
			-p) prio=$2 && shift ;;
			--) shift && break ;;
			*) break ;;
			esac
			shift
		done
		mkdir -p /tmp/ubus
		echo "log $prio $tag: $*" >>/tmp/ubus/calls
		[ -z "$to_stderr" ] || echo "$tag: $*" >&2
	EOF
	chmod 0755 "$1/usr/bin/logger"
}
make_root() { # R BINARY [QEMU]
	local r=$1
	owrt_root "$r" x86_64
	owrt_chroot_setup "$r" || exit 1
	rm -f "$r/usr/bin/logger"
	logger_standin "$r"
	install -m 0755 "$init" "$r/etc/init.d/camtls"
	if [ -n "${3:-}" ]; then
		install -m 0755 "$2" "$r/usr/sbin/camtls.bin"
		install -m 0755 "$3" "$r/usr/bin/$(basename "$3")"
		printf '#!/bin/sh\nexec /usr/bin/%s /usr/sbin/camtls.bin "$@"\n' "$(basename "$3")" >"$r/usr/sbin/camtls"
		chmod 0755 "$r/usr/sbin/camtls"
	else
		owrt_copy_elf "$r" "$2" /usr/sbin/camtls
	fi
}

# A case starts from the suite's root with no camtls state: config/camtls,
# acme.sh's directory, /etc/camtls, the run directory and /root are emptied.
# ACTION runs /etc/init.d/camtls ACTION in the chroot; what it told procd
# (record.uc reads the ubus stand-in's record) is kept in calls.ACTION.N so
# that each step can be read on its own.
new_case() {
	c=$work/$suite-case-$1
	mkdir -p "$c"
	rm -rf "$R/etc/ssl/acme" "$R/etc/camtls" "$R/var/run/camtls" "$R/etc/config/camtls" "$R/root" "$R/tmp/.uci"
	mkdir -p "$R/etc/ssl/acme" "$R/root"
	printf "config interface 'lan'\n\toption ipaddr '192.168.1.1'\n" >"$R/etc/config/network"
	n=0
}
run_init() {
	local rc
	n=$((n + 1))
	calls=$c/calls.$1.$n
	rm -rf "$R/tmp/ubus"
	mkdir -p "$R/tmp/ubus"
	owrt_chroot "$R" "/etc/init.d/camtls $1" >"$c/stdout.$n" 2>"$c/stderr.$n"
	rc=$?
	"$ucode" "$here/record.uc" "$R/tmp/ubus" >"$calls"
	# the last `service set`: what procd would run, and fw4 read
	set_json=$c/set.$1.$n.json
	rm -f "$set_json"
	s=$(awk '$4 " " $5 == "service set" { n = $1 } END { print n }' "$R/tmp/ubus/calls" 2>/dev/null)
	[ -z "$s" ] || cp "$R/tmp/ubus/$s.json" "$set_json"
	return $rc
}
acme_cert() { # DOMAIN: an ECDSA certificate and key as acme.sh leaves them
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=$1" -keyout "$R/etc/ssl/acme/$1.key" -out "$R/etc/ssl/acme/$1.fullchain.crt" 2>/dev/null
	chmod 600 "$R/etc/ssl/acme/$1.key"
}
cmdline() { # the expected command line, as the record joins it
	local IFS='|'
	echo "param command|/usr/sbin/camtls|$*"
}
triggers_ok() {
	has_line "$calls" "reload_trigger camtls" &&
		has_line "$calls" "raw_trigger acme.issue|5000|/etc/init.d/camtls|reload" &&
		has_line "$calls" "raw_trigger acme.renew|5000|/etc/init.d/camtls|reload"
}

# The cases, run once with the host binary and once with a router binary
# under qemu (the init script calls the binary for --check and gen-cert).
init_cases() {
	# 1. Several cameras from acme.sh's certificate, one route disabled, one not
	#    opened in the firewall; run as an unprivileged user.
	new_case several
	acme_cert cams.example.net
	cat >"$R/etc/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'
	option log_level 'info'
	option firewall_zone 'wan'
	option max_connections '32'
	option max_per_address '8'
	option shutdown_grace '3'

config route 'door'
	option listen '8443'
	option backend '192.168.1.20:80'
	option open_firewall '1'

config route 'garage'
	option listen '[::]:8444'
	option backend 'garage-cam.lan:8080'
	option open_firewall '1'

config route 'attic'
	option enabled '0'
	option listen '8445'
	option backend '192.168.1.21:80'
	option open_firewall '1'

config route 'yard'
	option listen '192.168.1.1:8446'
	option backend '[fd00::22]:80'
	option open_firewall '0'
EOF
	run_init start
	check "several: start succeeds" test $? = 0
	check "several: one instance named camtls" \
		same "$(grep -c '^instance ' "$calls") $(grep '^instance ' "$calls")" "1 instance camtls"
	check "several: command line from UCI, disabled route left out" has_line "$calls" "$(cmdline \
		--log-level info --max-connections 32 --max-per-address 8 --shutdown-grace 3 --user nobody \
		--cert /var/run/camtls/cert.pem --key /var/run/camtls/key.pem \
		--route 8443=192.168.1.20:80 --route '[::]:8444=garage-cam.lan:8080' \
		--route '192.168.1.1:8446=[fd00::22]:80')"
	check "several: firewall opens 8443 and 8444 in wan, not the disabled or closed routes" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8443 target=ACCEPT } { type=rule src=wan proto=tcp dest_port=8444 family=ipv6 target=ACCEPT } ]"
	procd_params() {
		has_line "$calls" "param respawn|3600|5|5" && has_line "$calls" "param stderr|1" &&
			has_line "$calls" "param term_timeout|5"
	}
	check "several: respawn, logs to logread, stop waits past the grace time" procd_params
	check "several: reload on config change and on acme.issue/acme.renew" triggers_ok
	check "several: firewall told to reload once ports are opened" has_line "$calls" "config_changed firewall"
	cp "$set_json" "$work/$suite-several.json"
	check "several: key copied for the user, 0600" same "$(mode_owner "$R/var/run/camtls/key.pem")" "600 $nobody_ids"
	check "several: key copy is acme.sh's key" cmp -s "$R/var/run/camtls/key.pem" "$R/etc/ssl/acme/cams.example.net.key"
	check "several: certificate copy is acme.sh's fullchain" cmp -s "$R/var/run/camtls/cert.pem" "$R/etc/ssl/acme/cams.example.net.fullchain.crt"
	check "several: run dir root-owned, group of the user, 0750" \
		same "$(mode_owner "$R/var/run/camtls")" "750 0:${nobody_ids#*:}"
	check "several: nothing logged as an error" lacks_text "$calls" "log daemon.err"

	# 2. Reloads: a renewed certificate with the same configuration is a SIGHUP
	#    to the running process; a changed configuration is a new command line.
	acme_cert cams.example.net
	run_init reload
	check "reload: renewed key copied before the signal" cmp -s "$R/var/run/camtls/key.pem" "$R/etc/ssl/acme/cams.example.net.key"
	# procd (a stand-in here) sends reload_signal to an instance that a
	# reload leaves as it was, and restarts one that changed.
	check "reload: procd is given SIGHUP as the reload signal" has_line "$calls" "param reload_signal|1"
	check "reload: same configuration, same instance (procd sends SIGHUP)" \
		cmp -s "$set_json" "$work/$suite-several.json"
	check "reload: firewall unchanged, not reloaded" lacks_line "$calls" "config_changed firewall"
	sed -i "/option backend '192.168.1.20:80'/{n;s/'1'/'0'/}" "$R/etc/config/camtls"
	run_init reload
	check "reload: open_firewall off closes 8443, 8444 stays open" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8444 family=ipv6 target=ACCEPT } ]"
	check "reload: firewall reloaded for the change" has_line "$calls" "config_changed firewall"
	cp "$set_json" "$work/$suite-one-closed.json"
	sed -i "s/garage-cam.lan:8080/garage-cam.lan:8081/" "$R/etc/config/camtls"
	run_init reload
	new_line_no_signal() {
		lacks_text "$calls" "signal " && has_text "$calls" "|--route|[::]:8444=garage-cam.lan:8081|"
	}
	check "reload: changed route gives procd a new command line (procd restarts)" new_line_no_signal
	sed -i "s/option user 'nobody'/option user 'root'/" "$R/etc/config/camtls"
	run_init reload
	as_root_now() {
		lacks_text "$calls" "|--user|" && has_text "$calls" "|--key|/etc/ssl/acme/" && test ! -e "$R/var/run/camtls/key.pem"
	}
	check "reload as root: no --user, no key copy left in RAM" as_root_now
	run_init stop
	check "stop: firewall reloaded to close the port" has_line "$calls" "config_changed firewall"
	check "stop: key copy removed" test ! -e "$R/var/run/camtls/key.pem"

	# 2b. Logins, allowed ranges and the device's login, per route: appended
	#     to the route as camtls's route options (--check reads the files).
	new_case guarded
	acme_cert cams.example.net
	echo pass | "$host_bin" hash-password --user viewer >"$R/root/users"
	echo admin:camera >"$R/root/door.pass"
	chmod 600 "$R/root/users" "$R/root/door.pass"
	cat >"$R/etc/config/camtls" <<EOF
config camtls 'main'
	option user 'root'

config route 'door'
	option listen '8443'
	option backend '192.168.1.20:80'
	option auth_file '/root/users'
	list allow '192.168.1.0/24'
	list allow '2001:db8::/32'
	option backend_auth_file '/root/door.pass'

config route 'bad'
	option listen '8444'
	option backend '192.168.1.21:80'
	list allow '10.0.0.0/8,evil'
EOF
	run_init start
	check "guarded: route options from UCI, in order" has_text "$calls" \
		"8443=192.168.1.20:80,auth=/root/users,allow=192.168.1.0/24,allow=2001:db8::/32,backend-auth-file=/root/door.pass"
	check "guarded: an option with a comma skips its route, named" has_text "$calls" \
		"route 'bad': option value '10.0.0.0/8,evil' is not a plain path or address range; route skipped"
	check "guarded: the bad route is not served" lacks_text "$calls" "8444=192.168.1.21:80"

	# 3. Bad values: the route is skipped with a message naming it, the others run.
	new_case badlisten
	acme_cert cams.example.net
	cat >"$R/etc/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'

config route 'typo'
	option listen 'http'
	option backend '192.168.1.20:80'
	option open_firewall '1'

config route 'short'
	option listen '1.2.3:8447'
	option backend '192.168.1.23:80'

config route 'noport'
	option listen '8448'
	option backend '192.168.1.24'

config route 'good'
	option listen '8449'
	option backend '192.168.1.25:80'
	option open_firewall '1'
EOF
	run_init start
	check "bad listen: logged with the section and value" has_line "$calls" \
		"log daemon.err camtls: route 'typo': listen 'http' is not PORT, IPv4:PORT or [IPv6]:PORT; route skipped"
	check "bad listen: malformed IPv4 address logged" has_text "$calls" "route 'short': listen '1.2.3:8447'"
	check "bad backend: logged" has_text "$calls" "route 'noport': backend '192.168.1.24' is not HOST:PORT"
	check "bad listen: the valid route still served" has_line "$calls" "$(cmdline --log-level info --user nobody \
		--cert /var/run/camtls/cert.pem --key /var/run/camtls/key.pem --route 8449=192.168.1.25:80)"
	check "bad listen: no firewall rule for the skipped route" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8449 target=ACCEPT } ]"
	check "bad listen: shown to a person starting it by hand" has_text "$c/stderr.$n" "route 'typo'"

	sed -i "/option listen '8449'/d" "$R/etc/config/camtls"
	run_init start
	check "no valid route: start fails" test $? != 0
	check "no valid route: no instance, so no respawn loop" lacks_text "$calls" "instance "
	check "no valid route: says why" has_text "$calls" "not started: no enabled, valid route"

	# The binary's own check: two routes on one port.
	new_case duplicate
	acme_cert cams.example.net
	cat >"$R/etc/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'

config route 'b'
	option listen '8443'
	option backend '192.168.1.21:80'
EOF
	run_init start
	check "refused by --check: no instance" lacks_text "$calls" "instance "
	check "refused by --check: the binary's reason is logged once" \
		same "$(grep -c 'not started, the configuration was refused: .*same port' "$calls")" 1

	new_case nocert
	cat >"$R/etc/config/camtls" <<'EOF'
config camtls 'main'
	option user 'root'
	option cert '/nonexistent/cert.pem'
	option key '/nonexistent/key.pem'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	# A certificate not there (yet) may pass on a retry: --check exits 1, the
	# instance is started and procd's respawn retries.
	check "missing certificate: started, for procd to retry" has_line "$calls" "instance camtls"
	check "missing certificate: one warning naming the file" \
		same "$(grep -c '^log daemon\.warn camtls: starting, though the check failed (status 1; .*/nonexistent/cert.pem' "$calls")" 1
	cp "$R/etc/config/camtls" "$work/$suite-nocert.camtls"
	new_case nocert_user
	sed "s/'root'/'nobody'/" "$work/$suite-nocert.camtls" >"$R/etc/config/camtls"
	run_init start
	check "missing certificate, unprivileged: the file is named" \
		has_line "$calls" "log daemon.err camtls: cannot read the certificate /nonexistent/cert.pem"

	new_case badlimit
	acme_cert cams.example.net
	printf "config camtls 'main'\n\toption idle_timeout '1m'\nconfig route 'a'\n\toption listen '8443'\n\toption backend 'cam:80'\n" >"$R/etc/config/camtls"
	run_init start
	bad_limit() {
		lacks_text "$calls" "instance " && has_text "$calls" "main.idle_timeout '1m' is not a whole number"
	}
	check "bad limit: refused with the option named" bad_limit
	sed -i "s/option idle_timeout '1m'/option max_per_address 'eight'/" "$R/etc/config/camtls"
	run_init start
	bad_per_address() {
		lacks_text "$calls" "instance " && has_text "$calls" "main.max_per_address 'eight' is not a whole number"
	}
	check "bad max_per_address: refused with the option named" bad_per_address
	sed -i "s/option max_per_address 'eight'/option max_per_address '0'/" "$R/etc/config/camtls"
	run_init start
	zero_per_address() {
		lacks_text "$calls" "instance " &&
			same "$(grep -c 'not started, the configuration was refused: .*--max-per-address must be at least 1' "$calls")" 1
	}
	check "max_per_address 0: refused by --check, the binary's reason logged once" zero_per_address

	# 4. No certificate anywhere: a self-signed one is made once, for the
	#    router's name and LAN address.
	new_case selfsigned
	cat >"$R/etc/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'
	list cert_name 'cams.example.org'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	check "self-signed: certificate and key made" test -s "$R/etc/camtls/camtls.crt" -a -s "$R/etc/camtls/camtls.key"
	check "self-signed: key is 0600" same "$(stat -c %a "$R/etc/camtls/camtls.key" 2>/dev/null)" 600
	names_ok() {
		local sans
		sans=$(openssl x509 -in "$R/etc/camtls/camtls.crt" -noout -ext subjectAltName 2>/dev/null)
		[[ $sans == *"DNS:OpenWrt"* && $sans == *"IP Address:192.168.1.1"* &&
			$sans == *"DNS:cams.example.org"* ]]
	}
	check "self-signed: names hostname, LAN address and cert_name" names_ok
	check "self-signed: served through the user's copy" has_line "$calls" "$(cmdline --log-level info --user nobody \
		--cert /var/run/camtls/cert.pem --key /var/run/camtls/key.pem --route 8443=192.168.1.20:80)"
	check "self-signed: fingerprint logged for the browser warning" has_text "$calls" "SHA-256"
	cp "$R/etc/camtls/camtls.crt" "$work/first.crt"
	run_init start
	check "self-signed: kept across restarts" cmp -s "$R/etc/camtls/camtls.crt" "$work/first.crt"

	# acme_domain named but not issued yet: self-signed until acme.renew.
	sed -i "s/list cert_name .*/option acme_domain 'cams.example.net'/" "$R/etc/config/camtls"
	run_init start
	waiting_for_acme() {
		has_text "$calls" "no acme.sh certificate for cams.example.net" &&
			cmp -s "$R/var/run/camtls/cert.pem" "$R/etc/camtls/camtls.crt"
	}
	check "acme_domain not issued yet: warns, serves the self-signed one" waiting_for_acme
	acme_cert cams.example.net
	run_init reload
	check "acme_domain issued: reload serves it" cmp -s "$R/var/run/camtls/cert.pem" "$R/etc/ssl/acme/cams.example.net.fullchain.crt"

	# 5. The service user is missing, or root is asked for: the original files,
	#    no --user.
	new_case asroot
	acme_cert cams.example.net
	cat "$R/etc/ssl/acme/cams.example.net.fullchain.crt" "$R/etc/ssl/acme/cams.example.net.key" >"$R/root/both.pem"
	cat >"$R/etc/config/camtls" <<EOF
config camtls 'main'
	option user 'no-such-user'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	check "missing user: warns and runs as root" has_text "$calls" "user 'no-such-user' does not exist; running as root"
	check "missing user: acme.sh's files used in place" has_line "$calls" "$(cmdline --log-level info \
		--cert /etc/ssl/acme/cams.example.net.fullchain.crt --key /etc/ssl/acme/cams.example.net.key --route 8443=192.168.1.20:80)"
	sed -i "s/option user .*/option user 'root'\n\toption cert '\/root\/both.pem'/" "$R/etc/config/camtls"
	run_init start
	check "cert with the key inside: no --key" has_line "$calls" "$(cmdline --log-level info \
		--cert /root/both.pem --route 8443=192.168.1.20:80)"
	run_init stop
	check "stop with no port opened: firewall left alone" lacks_line "$calls" "config_changed firewall"

	# 6. Switched off, and the configuration as shipped (no route enabled yet).
	new_case off
	printf "config camtls 'main'\n\toption enabled '0'\nconfig route 'a'\n\toption listen '8443'\n\toption backend 'cam:80'\n" >"$R/etc/config/camtls"
	run_init start
	rc=$?
	switched_off() {
		[ "$rc" = 0 ] && lacks_text "$calls" "instance " && has_text "$calls" "main.enabled is 0"
	}
	check "main.enabled 0: not started, said so, start does not fail" switched_off
	new_case shipped
	cp "$pkg/camtls/files/camtls.config" "$R/etc/config/camtls"
	run_init start
	nothing_served() {
		lacks_text "$calls" "instance " && has_text "$calls" "no enabled, valid route"
	}
	check "shipped config: nothing served until a route is enabled" nothing_served
	check "shipped config: triggers registered anyway" triggers_ok
}

suite=host
R=$work/host-root
make_root "$R" "$bin"
init_cases

# --- the firewall, through real fw4 -------------------------------------------
# fw4 print, on OpenWrt's default firewall config, of the firewall data the
# init script gave procd; firewall4's own test harness mocks the interfaces
# (wan on eth1...). The ruleset is then checked by the kernel (nft --check) in
# a network namespace of its own, with the conntrack helpers left out: the
# harness claims every helper module loaded, which this kernel need not have.
chain() { awk -v c="chain $1 {" 'index($0, c) {on=1} on; on && /^\t}/ {exit}' "$2"; }
mkdir -p "$work/fw4-mocks/uci"
echo '{}' >"$work/fw4-mocks/uci/helpers.json"
owrt_fw4 -m "$work/fw4-mocks" "$work/host-several.json" >"$work/fw4.nft" 2>"$work/fw4.err"
check "fw4: renders the ruleset, no warnings" test $? = 0 -a -s "$work/fw4.nft" -a ! -s "$work/fw4.err"
chain input_wan "$work/fw4.nft" >"$work/input_wan"
check "fw4: input_wan accepts tcp 8443 for camtls" has_line "$work/input_wan" \
	$'\t\ttcp dport 8443 counter accept comment "!fw4: ubus:camtls[camtls] rule 0"'
check "fw4: input_wan accepts tcp 8444 for IPv6 only" has_line "$work/input_wan" \
	$'\t\tmeta nfproto ipv6 tcp dport 8444 counter accept comment "!fw4: ubus:camtls[camtls] rule 1"'
check "fw4: the accepts come before wan's reject" \
	same "$(grep -n 'ubus:camtls\|jump reject_from_wan' "$work/input_wan" | cut -d: -f1 | tr '\n' ' ')" "2 3 $(($(wc -l <"$work/input_wan") - 1)) "
check "fw4: no camtls rule outside input_wan" \
	same "$(grep -c 'ubus:camtls' "$work/fw4.nft")" 2
owrt_fw4 -m "$work/fw4-mocks" "$work/host-one-closed.json" >"$work/fw4-closed.nft" 2>/dev/null
check "fw4: open_firewall off: no rule for 8443, 8444 still accepted" same \
	"$(grep -o 'tcp dport [0-9]* counter accept comment "!fw4: ubus:camtls' "$work/fw4-closed.nft")" \
	'tcp dport 8444 counter accept comment "!fw4: ubus:camtls'
if ! command -v nft >/dev/null; then
	bad "fw4: nft --check (no nft: apt-get install nftables)"
elif ! echo 'table inet t { }' | unshare --net nft --check -f - 2>"$work/nft-probe.err"; then
	echo "skip fw4: nft --check: this kernel has no nf_tables for a new network namespace ($(head -n 1 "$work/nft-probe.err"))"
else
	check "fw4: the kernel accepts the ruleset (nft --check, in a new network namespace)" \
		unshare --net nft --check -f "$work/fw4.nft"
fi

# --- the .ipk files ----------------------------------------------------------
qemu_for() {
	case "$1" in
	mips_*) echo qemu-mips-static ;;
	mipsel_*) echo qemu-mipsel-static ;;
	arm_*) echo qemu-arm-static ;;
	aarch64_*) echo qemu-aarch64-static ;;
	x86_64) echo env ;;
	esac
}
# The package's life on a router, with the real package manager in a
# router-like root for ARCH (lib.sh's owrt_root and owrt_chroot_setup; the
# logd and ubus stand-ins record what the scripts did): install, edit the
# conffile with uci, upgrade, disable and reinstall, remove, install again.
# Then the scripts as an image build runs them: on the build host, with
# IPKG_INSTROOT set and the host's /bin/sh (dash on Debian).
#   lifecycle KIND(opkg|apk) LABEL ARCH PACKAGE UPGRADE VERSION UPGRADE_VERSION
lifecycle() {
	local kind=$1 label=$2 arch=$3 p1=$4 p2=$5 v1=$6 v2=$7 r st add newfile ext want
	r=$work/$label-$kind-root
	owrt_root "$r" "$arch"
	owrt_chroot_setup "$r" >/dev/null || exit 1
	rm -f "$r/usr/bin/logger"
	logger_standin "$r"
	if [ "$kind" = opkg ]; then ext=ipk; else ext=apk; fi
	cp "$p1" "$r/tmp/camtls-1.$ext"
	cp "$p2" "$r/tmp/camtls-2.$ext"
	if [ "$kind" = opkg ]; then
		add="opkg install"
		newfile=camtls-opkg
	else
		add="apk add --allow-untrusted --no-network"
		newfile=camtls.apk-new
	fi
	stage() { # NAME COMMAND: run in the chroot; record in $st.*
		st=$work/$label-$kind-$1
		rm -rf "$r/tmp/ubus"
		mkdir -p "$r/tmp/ubus"
		owrt_chroot "$r" "$2" >"$st.out" 2>&1
		echo $? >"$st.rc"
		"$ucode" "$here/record.uc" "$r/tmp/ubus" >"$st.calls"
	}
	installed() { # the version the package manager has
		if [ "$kind" = opkg ]; then
			owrt_opkg "$r" list-installed 2>/dev/null | sed -n 's/^camtls - //p'
		else
			owrt_apk "$r" list --installed 2>/dev/null | sed -n 's/^camtls-\([^ ]*\) .*/\1/p'
		fi
	}
	enabled_link() { same "$(readlink "$r/etc/rc.d/S95camtls")" ../init.d/camtls; }
	local t="$label: $kind:"

	if [ "$kind" = opkg ]; then
		stage install "opkg install /tmp/camtls-1.ipk"
	else
		stage install "apk add --initdb --allow-untrusted --no-network /tmp/camtls-1.apk"
	fi
	check "$t install exits 0" same "$(cat "$st.rc")" 0
	check "$t installed is $v1" same "$(installed)" "$v1"
	check "$t binary, init script and config in place" \
		test -x "$r/usr/sbin/camtls" -a -x "$r/etc/init.d/camtls" -a -f "$r/etc/config/camtls"
	check "$t postinst adds one camtls user, group and shadow entry" same \
		"$(grep -c ^camtls: "$r/etc/passwd") $(grep -c ^camtls: "$r/etc/group") $(grep -c ^camtls: "$r/etc/shadow")" "1 1 1"
	check "$t postinst picks ids from 32768 up" \
		test "$(grep '^camtls:' "$r/etc/passwd" | cut -d: -f3)" -ge 32768
	check "$t postinst gives the user its own group, no shell" same \
		"$(grep '^camtls:' "$r/etc/passwd" | cut -d: -f4,7)" "$(grep '^camtls:' "$r/etc/group" | cut -d: -f3):/bin/false"
	check "$t postinst enables the service" enabled_link
	started_unconfigured() {
		has_text "$st.calls" "no enabled, valid route" && lacks_text "$st.calls" "instance "
	}
	check "$t postinst starts it: shipped config, nothing served, said why" started_unconfigured
	check "$t the failed start does not fail the install" lacks_text "$st.out" "rror"

	stage edit "uci set camtls.main.log_level=debug && uci commit camtls"
	check "$t uci edits the conffile" same "$(sed -n "s/^\toption log_level '\(.*\)'/\1/p" "$r/etc/config/camtls")" debug

	stage upgrade "$add /tmp/camtls-2.$ext"
	check "$t upgrade exits 0" same "$(cat "$st.rc")" 0
	check "$t upgraded to $v2" same "$(installed)" "$v2"
	check "$t upgrade keeps the edited conffile" has_line "$r/etc/config/camtls" $'\toption log_level \'debug\''
	check "$t upgrade puts the new default beside it as $newfile" cmp -s "$r/etc/config/$newfile" "$pkg/camtls/files/camtls.config"
	check "$t upgrade leaves it enabled" enabled_link
	# opkg runs the old prerm (stop), then the new postinst (restart); apk
	# runs only the new post-upgrade (restart).
	if [ "$kind" = opkg ]; then want="2 1"; else want="1 1"; fi
	check "$t upgrade restarts it (stopped, then a new service set)" \
		same "$(grep -c '^delete camtls$' "$st.calls") $(grep -c '^reload_trigger camtls$' "$st.calls")" "$want"
	check "$t upgrade adds no second user" same "$(grep -c ^camtls: "$r/etc/passwd")" 1

	if [ "$kind" = opkg ]; then
		stage reinstall "/etc/init.d/camtls disable && opkg install --force-reinstall /tmp/camtls-2.ipk"
	else
		stage reinstall "/etc/init.d/camtls disable && apk del camtls && $add /tmp/camtls-2.apk"
	fi
	check "$t disabled, then reinstalled: exits 0" same "$(cat "$st.rc")" 0
	check "$t reinstall keeps the user's disable, and says so" \
		test ! -e "$r/etc/rc.d/S95camtls" -a ! -e "$r/var/run/camtls.disabled" -a -n "$(grep 'left disabled' "$st.out")"
	stage enable "/etc/init.d/camtls enable"

	if [ "$kind" = opkg ]; then stage remove "opkg remove camtls"; else stage remove "apk del camtls"; fi
	check "$t remove exits 0" same "$(cat "$st.rc")" 0
	check "$t remove: package, binary and init script gone" \
		test -z "$(installed)" -a ! -e "$r/usr/sbin/camtls" -a ! -e "$r/etc/init.d/camtls"
	check "$t remove: stopped and disabled" test ! -e "$r/etc/rc.d/S95camtls" -a -n "$(grep '^delete camtls$' "$st.calls")"
	check "$t remove keeps the edited conffile" has_line "$r/etc/config/camtls" $'\toption log_level \'debug\''

	stage again "$add /tmp/camtls-1.$ext"
	check "$t install after remove exits 0" same "$(cat "$st.rc")" 0
	check "$t install after remove: $v1, enabled, the edited conffile still used" \
		test "$(installed)" = "$v1" -a -x "$r/usr/sbin/camtls" -a -L "$r/etc/rc.d/S95camtls" \
		-a -n "$(grep "log_level 'debug'" "$r/etc/config/camtls")"

	# An image build: the package manager on the build host, scripts on.
	r=$work/$label-$kind-image
	owrt_root "$r" "$arch"
	if [ "$kind" = opkg ]; then
		IPKG_INSTROOT=$r owrt_opkg "$r" --force-postinstall install "$p1" >"$r.out" 2>&1
	else
		IPKG_INSTROOT=$r owrt_apk "$r" --force-no-chroot --preserve-env add --initdb "$p1" >"$r.out" 2>&1
	fi
	check "$t image build ($(basename "$(readlink -f /bin/sh)") as /bin/sh): exits 0" test $? = 0
	check "$t image build: postinst enables, adds the user" \
		test -L "$r/etc/rc.d/S95camtls" -a "$(grep -c ^camtls: "$r/etc/passwd")" = 1
	check "$t image build: no shell errors (procd.sh's &> under dash)" lacks_text "$r.out" "Bad file descriptor"
	if [ "$kind" = opkg ]; then
		(cd "$r" && IPKG_INSTROOT=$r sh ./usr/lib/opkg/info/camtls.prerm) >"$r.prerm" 2>&1
	else
		IPKG_INSTROOT=$r owrt_apk "$r" --force-no-chroot --preserve-env del camtls >"$r.prerm" 2>&1
	fi
	check "$t image build: prerm disables, no shell errors" \
		test ! -e "$r/etc/rc.d/S95camtls" -a -z "$(grep 'Bad file descriptor' "$r.prerm")"
}

# --- the .apk files (OpenWrt 25.12 and later) -----------------------------------
apk_checks() { # FILE.apk
	local f=$1 base arch u dump r want
	base=$(basename "$f" .apk)
	arch=${base#camtls_"$version"-r1_}
	u=$work/$base
	mkdir -p "$u"
	check "$base: named camtls_${version}-r1_ARCH.apk" test "$base" = "camtls_${version}-r1_$arch"
	"$OWRT_PREFIX/bin/apk" adbdump "$f" >"$u/dump" 2>&1
	check "$base: an apk v3 package (ADB) that apk adbdump reads" test $? = 0
	dump=$u/dump
	check "$base: name, version, arch, license" same \
		"$(sed -n 's/^  \(name\|version\|arch\|license\): //p' "$dump" | tr '\n' ';')" \
		"camtls;$version-r1;$arch;MIT OR Apache-2.0;"
	check "$base: post-install, post-upgrade and pre-deinstall scripts" same \
		"$(sed -n '/^scripts:/,/^[a-z]/s/^  \([a-z-]*\): |$/\1/p' "$dump" | sort | tr '\n' ' ')" "post-install post-upgrade pre-deinstall "
	# The payload, unpacked by apk itself into an empty root, scripts off.
	r=$u/root
	owrt_root "$r" "$arch"
	owrt_apk "$r" add --initdb --no-scripts "$f" >"$u/add.log" 2>&1
	check "$base: apk add --no-scripts into an empty $arch root" test $? = 0
	want="/etc/config/camtls 600 0:0;/etc/init.d/camtls 755 0:0;/lib/apk/packages/camtls.conffiles 644 0:0;"
	want+="/lib/apk/packages/camtls.conffiles_static 644 0:0;/lib/apk/packages/camtls.list 644 0:0;/usr/sbin/camtls 755 0:0;"
	check "$base: files, modes, owners" same "$(cd "$r" && for p in etc/config/camtls etc/init.d/camtls \
		lib/apk/packages/camtls.conffiles lib/apk/packages/camtls.conffiles_static lib/apk/packages/camtls.list \
		usr/sbin/camtls; do echo "/$p $(stat -c '%a %u:%g' "$p" 2>/dev/null)"; done | tr '\n' ';')" "$want"
	check "$base: NAME.list lists the files, sorted, as package-pack.mk writes it" same \
		"$(tr '\n' ' ' <"$r/lib/apk/packages/camtls.list")" "/etc/config/camtls /etc/init.d/camtls /usr/sbin/camtls "
	check "$base: NAME.conffiles is /etc/config/camtls" same "$(cat "$r/lib/apk/packages/camtls.conffiles")" /etc/config/camtls
	check "$base: NAME.conffiles_static has its sha256 as shipped" same "$(cat "$r/lib/apk/packages/camtls.conffiles_static")" \
		"/etc/config/camtls $(sha256sum "$pkg/camtls/files/camtls.config" | cut -d' ' -f1)"
	check "$base: init script is the package's" cmp -s "$r/etc/init.d/camtls" "$init"
	check "$base: config is the package's" cmp -s "$r/etc/config/camtls" "$pkg/camtls/files/camtls.config"
	check "$base: binary runs (--version under $(qemu_for "$arch"))" \
		same "$($(qemu_for "$arch") "$r/usr/sbin/camtls" --version 2>&1)" "camtls $version"
	SOURCE_DATE_EPOCH=$(sed -n 's/^ *mtime: //p' "$dump" | head -n 1) "$pkg/apk/build-apk.sh" "$OWRT_PREFIX/bin/apk" \
		"$r/usr/sbin/camtls" "$arch" "$version" 1 "$u/again" >/dev/null 2>&1
	check "$base: rebuilt from the same binary, byte for byte the same" cmp -s "$f" "$u/again/$base.apk"
	"$pkg/apk/build-apk.sh" "$OWRT_PREFIX/bin/apk" "$r/usr/sbin/camtls" "$arch" "$version" 2 "$u/next" >/dev/null 2>&1
	lifecycle apk "$base" "$arch" "$f" "$u/next/camtls_${version}-r2_$arch.apk" "$version-r1" "$version-r2"
	[ -n "${signed_done:-}" ] || apk_feed "$base" "$arch" "$r/usr/sbin/camtls"
	signed_done=1
}

# A feed of one's own, as docs/openwrt.md describes it: packages signed with
# an EC key, an index made and signed by apk mkndx, the public key in the
# router's /etc/apk/keys.
apk_feed() { # LABEL ARCH BINARY
	local t="$1: own feed:" arch=$2 f=$work/$1-feed r
	mkdir -p "$f/keys" "$f/repo"
	openssl ecparam -name prime256v1 -genkey -noout -out "$f/key.pem" 2>/dev/null &&
		openssl ec -in "$f/key.pem" -pubout -out "$f/keys/camtls-feed.pem" 2>/dev/null
	APK_SIGN_KEY=$f/key.pem "$pkg/apk/build-apk.sh" "$OWRT_PREFIX/bin/apk" "$3" "$arch" "$version" 1 "$f" >/dev/null 2>&1
	check "$t build-apk.sh with APK_SIGN_KEY signs the package" test $? = 0
	# In a feed, a package is NAME-VERSION.apk (the name the index gives apk).
	mv "$f/camtls_$version-r1_$arch.apk" "$f/repo/camtls-$version-r1.apk"
	"$OWRT_PREFIX/bin/apk" --keys-dir "$f/keys" mkndx --sign-key "$f/key.pem" --output "$f/repo/packages.adb" \
		"$f/repo/camtls-$version-r1.apk" >"$f/mkndx.log" 2>&1
	check "$t apk mkndx makes a signed index" test $? = 0 -a -s "$f/repo/packages.adb"
	r=$f/root
	owrt_root "$r" "$arch"
	"$OWRT_PREFIX/bin/apk" --root "$r" --repository "$f/repo/packages.adb" --no-cache --no-logfile \
		add --initdb --no-scripts camtls >"$f/untrusted.log" 2>&1
	check "$t without the public key, apk refuses it" test $? != 0 -a ! -e "$r/usr/sbin/camtls"
	mkdir -p "$r/etc/apk/keys"
	cp "$f/keys/camtls-feed.pem" "$r/etc/apk/keys/"
	"$OWRT_PREFIX/bin/apk" --root "$r" --repository "$f/repo/packages.adb" --no-cache --no-logfile \
		add --initdb --no-scripts camtls >"$f/trusted.log" 2>&1
	check "$t with the key in /etc/apk/keys, apk add camtls installs it from the feed" \
		test $? = 0 -a -x "$r/usr/sbin/camtls"
}

for ipk in "$@"; do
	case $ipk in
	*.apk)
		apk_checks "$ipk"
		continue
		;;
	esac
	base=$(basename "$ipk" .ipk)
	arch=${base#camtls_"$version"_}
	u=$work/$base
	mkdir -p "$u/outer" "$u/control" "$u/data"
	check "$base: named camtls_${version}_ARCH.ipk" test "$base" = "camtls_${version}_$arch"
	check "$base: outer archive is gzip" gzip -t "$ipk"
	check "$base: outer tar has ustar magic (opkg reads nothing else)" \
		same "$(gzip -dc "$ipk" | head -c 262 | tail -c 5)" ustar
	check "$base: members are debian-binary, data, control" \
		same "$(tar -tzf "$ipk" | tr '\n' ' ')" "./debian-binary ./data.tar.gz ./control.tar.gz "
	busybox tar -xzf "$ipk" -C "$u/outer"
	busybox tar -xzf "$u/outer/control.tar.gz" -C "$u/control"
	busybox tar -xzf "$u/outer/data.tar.gz" -C "$u/data"
	check "$base: debian-binary is 2.0" same "$(cat "$u/outer/debian-binary")" 2.0
	field() { sed -n "s/^$1: *//p" "$u/control/control"; }
	check "$base: control Package, Version, Architecture" \
		same "$(field Package) $(field Version) $(field Architecture)" "camtls $version $arch"
	check "$base: control Installed-Size is the unpacked size" \
		same "$(field Installed-Size)" "$(find "$u/data" -type f -exec cat {} + | wc -c)"
	check "$base: control has Description, License, Maintainer, Section" \
		test -n "$(field Description)" -a -n "$(field License)" -a -n "$(field Maintainer)" -a -n "$(field Section)"
	check "$base: conffiles keeps /etc/config/camtls across upgrades" \
		same "$(cat "$u/control/conffiles")" /etc/config/camtls
	check "$base: control members and modes" same "$(tar -tvzf "$u/outer/control.tar.gz" |
		awk '{print $1, $2, $6}' | sort | tr '\n' ';')" \
		"-rw-r--r-- 0/0 ./conffiles;-rw-r--r-- 0/0 ./control;-rwxr-xr-x 0/0 ./postinst;-rwxr-xr-x 0/0 ./prerm;drwxr-xr-x 0/0 ./;"
	check "$base: data members, modes, owners" same "$(tar -tvzf "$u/outer/data.tar.gz" |
		awk '{print $1, $2, $6}' | tr '\n' ';')" \
		"drwxr-xr-x 0/0 ./;drwxr-xr-x 0/0 ./etc/;drwxr-xr-x 0/0 ./etc/config/;-rw------- 0/0 ./etc/config/camtls;drwxr-xr-x 0/0 ./etc/init.d/;-rwxr-xr-x 0/0 ./etc/init.d/camtls;drwxr-xr-x 0/0 ./usr/;drwxr-xr-x 0/0 ./usr/sbin/;-rwxr-xr-x 0/0 ./usr/sbin/camtls;"
	check "$base: init script is the package's" cmp -s "$u/data/etc/init.d/camtls" "$init"
	check "$base: config is the package's" cmp -s "$u/data/etc/config/camtls" "$pkg/camtls/files/camtls.config"
	q=$(qemu_for "$arch")
	if [ -z "${router_bin:-}" ] && [ "$q" != env ]; then
		router_bin=$u/data/usr/sbin/camtls
		router_arch=$arch
		router_qemu=$(command -v "$q")
	fi
	check "$base: binary runs (--version under ${q:-nothing})" \
		same "$($q "$u/data/usr/sbin/camtls" --version 2>&1)" "camtls $version"
	# Same inputs, including the time stamp (the mtime field of the first tar
	# header: 12 octal digits at offset 136).
	epoch=$((8#$(gzip -dc "$ipk" | head -c 148 | tail -c 12 | tr -dc 0-7)))
	SOURCE_DATE_EPOCH=$epoch "$pkg/ipk/build-ipk.sh" "$u/data/usr/sbin/camtls" "$arch" "$version" "$u/again" >/dev/null
	check "$base: rebuilt from the same binary, byte for byte the same" cmp -s "$ipk" "$u/again/$base.ipk"

	next=$u/next
	"$pkg/ipk/build-ipk.sh" "$u/data/usr/sbin/camtls" "$arch" "$version-r2" "$next" >/dev/null
	lifecycle opkg "$base" "$arch" "$ipk" "$next/camtls_${version}-r2_$arch.ipk" "$version" "$version-r2"
done

# The init script again, calling the first packaged router binary: what the
# router itself runs for --check, gen-cert and fingerprint.
if [ -n "${router_bin:-}" ]; then
	suite=$router_arch
	R=$work/$suite-root
	make_root "$R" "$router_bin" "$router_qemu"
	prefix="$router_arch binary: "
	init_cases
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
