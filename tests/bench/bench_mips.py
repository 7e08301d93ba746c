#!/usr/bin/env python3
"""make bench-mips: camtls, nginx and stunnel on the router's instruction set.

The mipsel camtls release binary and Debian 12's own mipsel nginx and
stunnel4 (from the sysroot that tests/bench/mips-setup.sh makes) run under
qemu-user, one at a time, pinned to one core. Timings under qemu mean
nothing, so this counts guest instructions instead, with a TCG plugin
(tests/bench/insn-count.c) that keeps a running count in a file the harness
reads while the proxy runs:

  per operation  the count's growth over a phase of N operations, less the
                 proxy's idle rate (instructions per second with no traffic,
                 measured before) times the phase's length, over N
  per MiB        a 16 MiB download less a 1 KiB download, each on a new
                 connection, over 16: the handshake and request cancel out
  memory         the resident pages of the guest's address space (qemu is
                 told where to put it, -B), summed over the proxy's
                 processes: what the router's kernel would count, without
                 qemu's own memory

The clients (curl, Python's ssl) and the backend (a native nginx serving
files) run natively on the host and talk to 127.0.0.1. Every round gives the
same counts within a fraction of a percent; the report says how far apart
the rounds were.

Writes the block between the bench-mips markers of docs/performance.md.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The same TLS 1.3 suite and group for this process's own client whatever the
# proxy prefers (Python's ssl cannot choose TLS 1.3 suites); OpenSSL reads the
# file when ssl is first imported, just below. Then the variable goes, so
# that the proxies, which inherit this environment, keep their own settings.
os.environ["OPENSSL_CONF"] = os.path.join(HERE, "client-openssl.cnf")
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the servers, certificates and backend of make bench)
del os.environ["OPENSSL_CONF"]

MIB = bench.MIB
BEGIN, END = "<!-- bench-mips:begin -->", "<!-- bench-mips:end -->"
GUEST_BASE = 0x100000000000  # qemu -B: the guest's 4 GiB start here on the host
CPU = "74Kf"  # the MIPS32 release 2 core of the FreshTomato routers (RT-N66U, RT-AC66U)
KEEPALIVE_REQUESTS = 300
HANDSHAKES = 40
STREAM_MIB = 16
IDLE_CONNECTIONS = 20
IDLE_SECONDS = 2.0  # how long the idle rate is measured, and idle connections held
# Client suites for the streaming figures: TLS 1.3's AES-128-GCM (what the
# x86_64 bench uses) and ChaCha20-Poly1305 (what suits a CPU without AES
# instructions).
SUITES = {"aes": "TLS_AES_128_GCM_SHA256", "chacha": "TLS_CHACHA20_POLY1305_SHA256"}
# A 500 MHz MIPS 74K core retires at most about one instruction per cycle;
# dividing this by a count gives an upper bound on what such a router carries.
ROUTER_IPS = 500e6


class Qemu:
    """The launcher bench.Proxy calls: turns a native command into one that
    runs the mipsel program under qemu-user with the counting plugin, and
    remembers each process's counter file."""

    def __init__(self, qemu, sysroot, plugin, wd, executables):
        self.qemu, self.sysroot, self.plugin, self.wd = qemu, sysroot, plugin, wd
        self.executables = executables  # native name -> mipsel executable
        self.files = []

    def __call__(self, cmd):
        out = os.path.join(self.wd, "insn-%d.count" % len(self.files))
        self.files.append(out)
        exe = self.executables.get(cmd[0], cmd[0])
        return [self.qemu, "-cpu", CPU, "-B", hex(GUEST_BASE), "-L", self.sysroot,
                "-plugin", "%s,out=%s" % (self.plugin, out), exe] + cmd[1:]

    def count(self):
        """Guest instructions executed so far by every process started since
        the last reset."""
        total = 0
        for path in self.files:
            try:
                with open(path, "rb") as f:
                    total += int.from_bytes(f.read(8), sys.byteorder)
            except OSError:
                pass
        return total

    def reset(self):
        self.files = []


def guest_rss_kib(pids):
    """Resident KiB of the guest address space, summed over pids."""
    total = 0
    for pid in pids:
        start = None
        try:
            with open("/proc/%d/smaps" % pid) as f:
                for line in f:
                    m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
                    if m:
                        start = int(m.group(1), 16)
                    elif line.startswith("Rss:") and GUEST_BASE <= start < GUEST_BASE + (1 << 32):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def tls_client():
    """A client that makes a full handshake on every connection (Python's
    ssl resumes only when given a session)."""
    return bench.client_context()


def read_response(sock):
    """Reads one HTTP response with a Content-Length body; returns the body."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed in the response head")
        got += chunk
    head, body = got.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if not head.startswith(b"HTTP/1.1 200") or not m:
        raise RuntimeError("unexpected response: %r" % head[:200])
    length = int(m.group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed in the body")
        body += chunk
    return body


REQUEST = b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n"


def requests_on(sock, n):
    for _ in range(n):
        sock.sendall(REQUEST)
        read_response(sock)


def handshakes(port, n):
    """n new connections, each a full handshake and one request."""
    ctx = tls_client()
    tls = None
    for _ in range(n):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60)) as s:
            s.sendall(REQUEST)
            read_response(s)
            tls = "%s %s" % (s.version(), s.cipher()[0])
    return tls


def download(port, path, suite):
    out = bench.run(["curl", "-sk", "--max-time", "300", "-o", "/dev/null",
                     "--tlsv1.3", "--tls13-ciphers", suite,
                     "-w", "%{http_code} %{size_download}",
                     "https://127.0.0.1:%d%s" % (port, path)], timeout=320).stdout.split()
    if len(out) != 2 or out[0] != "200":
        raise RuntimeError("GET %s with %s gave %r" % (path, suite, out))
    return int(out[1])


class Meter:
    """Guest instructions over one phase, less the proxy's idle rate."""

    def __init__(self, qemu, idle_rate):
        self.qemu, self.idle_rate = qemu, idle_rate

    def __call__(self, fn, *args):
        c0, t0 = self.qemu.count(), time.monotonic()
        result = fn(*args)
        c1, t1 = self.qemu.count(), time.monotonic()
        return max(0.0, c1 - c0 - self.idle_rate * (t1 - t0)), result


def idle_connections(proxy, pids_of):
    """Guest RSS sampled while IDLE_CONNECTIONS connections open, make one
    request each and then stay idle: (idle before, peak)."""
    idle = guest_rss_kib(pids_of())
    peak = [idle]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], guest_rss_kib(pids_of()))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ctx, conns = tls_client(), []
    try:
        for _ in range(IDLE_CONNECTIONS):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", proxy.port_ec), timeout=60))
            s.sendall(REQUEST)
            read_response(s)
            conns.append(s)
        time.sleep(IDLE_SECONDS)
    finally:
        stop.set()
        sampler.join()
        for s in conns:
            s.close()
    peak[0] = max(peak[0], guest_rss_kib(pids_of()))
    return idle, peak[0]


def measure(proxy, qemu):
    """Every figure for one proxy, started fresh."""
    res = {}
    qemu.reset()
    proxy.start()
    try:
        # Memory of the processes serving the ECDSA port (camtls runs one
        # process per certificate), as make bench counts it.
        pids_of = lambda: proxy.pids("ec")  # noqa: E731
        bench.get_1k(proxy.port_ec)
        bench.get_1k(proxy.port_rsa)
        time.sleep(0.5)
        c0, t0 = qemu.count(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        res["idle_ips"] = (qemu.count() - c0) / (time.monotonic() - t0)
        meter = Meter(qemu, res["idle_ips"])
        res["rss_idle"], res["rss_peak20"] = idle_connections(proxy, pids_of)
        # The keep-alive connection's handshake and first request come
        # before the count.
        with tls_client().wrap_socket(socket.create_connection(("127.0.0.1", proxy.port_ec),
                                                               timeout=60)) as s:
            requests_on(s, 1)
            insns, _ = meter(requests_on, s, KEEPALIVE_REQUESTS)
        res["ka"] = insns / KEEPALIVE_REQUESTS
        insns, res["tls"] = meter(handshakes, proxy.port_ec, HANDSHAKES)
        res["hs_ec"] = insns / HANDSHAKES
        insns, _ = meter(handshakes, proxy.port_rsa, HANDSHAKES)
        res["hs_rsa"] = insns / HANDSHAKES
        for name, suite in SUITES.items():
            small, _ = meter(download, proxy.port_ec, "/1k", suite)
            big, size = meter(download, proxy.port_ec, "/%dm" % STREAM_MIB, suite)
            res["mib_" + name] = (big - small) / (size / MIB)
    finally:
        proxy.stop()
    return res


ROWS = [  # key, label, format
    ("ka", "per keep-alive request, 1 KiB body", "%.0f"),
    ("hs_ec", "per full handshake + 1 KiB request, ECDSA P-256", "%.0f"),
    ("hs_rsa", "per full handshake + 1 KiB request, RSA-2048", "%.0f"),
    ("mib_aes", "per MiB streamed, AES-128-GCM", "%.0f"),
    ("mib_chacha", "per MiB streamed, ChaCha20-Poly1305", "%.0f"),
    ("idle_ips", "per second while idle", "%.0f"),
]
MEMORY_ROWS = [
    ("rss_idle", "guest RSS idle, KiB", "%.0f"),
    ("rss_peak20", "peak guest RSS with %d idle TLS connections, KiB" % IDLE_CONNECTIONS, "%.0f"),
    ("kib_per_conn", "KiB per idle TLS connection (peak less idle, over %d)" % IDLE_CONNECTIONS,
     "%.1f"),
]


def report(info, names, rounds, notes, elapsed):
    m = {p: bench.medians(rounds, p) for p in names}
    for p in names:
        if "rss_peak20" in m[p] and "rss_idle" in m[p]:
            m[p]["kib_per_conn"] = (m[p]["rss_peak20"] - m[p]["rss_idle"]) / IDLE_CONNECTIONS
    peers = [p for p in names if p != "camtls"]
    header = ["figure"] + names + ["camtls/%s" % p for p in peers if "camtls" in names]

    def rows(spec):
        out = []
        for key, label, f in spec:
            row = [label] + [bench.fmt(f, m[p].get(key)) for p in names]
            if "camtls" in names:
                for p in peers:
                    r = bench.ratio(m["camtls"].get(key), m[p].get(key))
                    row.append("n/a" if r is None else "%.2f" % r)
            out.append(row)
        return out

    lines = ["Run of %s, %d round(s), %.0f s in all, under qemu-user (`-cpu %s`)."
             % (time.strftime("%Y-%m-%d %H:%M"), len(rounds), elapsed, CPU), ""]
    lines += [bench.table(["", ""], [[k, v] for k, v in info.items()]), ""]
    lines += ["### Guest instructions (medians over rounds)", ""]
    tls = [["TLS the client got (Python's ssl)"] + [rounds[0].get(p, {}).get("tls", "n/a")
                                                  for p in names] + ["" for p in peers
                                                                     if "camtls" in names]]
    lines += [bench.table(header, rows(ROWS) + tls), ""]
    lines += ["### Memory (guest pages only, as the router's kernel counts them)", ""]
    lines += [bench.table(header, rows(MEMORY_ROWS)), ""]
    spread = []
    for key, _, _ in ROWS[:-1]:
        for p in names:
            vals = [r[p][key] for r in rounds if key in r.get(p, {})]
            if len(vals) > 1 and statistics.median(vals):
                spread.append((max(vals) - min(vals)) / statistics.median(vals))
    if spread:
        lines += ["Rounds differed by at most %.2f%% on any instruction count." % (100 * max(spread)),
                  ""]
    c = m.get("camtls", {})
    if c.get("mib_aes") and c.get("mib_chacha"):
        lines += ["camtls on MIPS: AES-128-GCM costs %.2f x ChaCha20-Poly1305 per MiB "
                  "(MIPS has no AES instructions)." % (c["mib_aes"] / c["mib_chacha"]), ""]
    carry = []
    for p in names:
        q = m[p]
        if all(q.get(k) for k in ("mib_chacha", "mib_aes", "hs_ec", "hs_rsa", "ka")):
            carry.append([p, "%.1f" % (ROUTER_IPS / q["mib_chacha"]),
                          "%.1f" % (ROUTER_IPS / q["mib_aes"]),
                          "%.0f" % (ROUTER_IPS / q["hs_ec"]), "%.0f" % (ROUTER_IPS / q["hs_rsa"]),
                          "%.0f" % (ROUTER_IPS / q["ka"])])
    if carry:
        lines += ["### What a 500 MHz core could carry at most (500 M instructions/s, "
                  "all of it spent on the proxy)", ""]
        lines += [bench.table(["proxy", "MiB/s, ChaCha20", "MiB/s, AES-128-GCM",
                               "ECDSA handshakes/s", "RSA handshakes/s", "keep-alive requests/s"],
                              carry), ""]
    if notes:
        lines += ["### Problems during the run", ""] + ["- " + n for n in notes] + [""]
    return "\n".join(lines)


def deb_version(cache, package):
    """Version of the mipsel .deb the sysroot was made from."""
    debs = os.path.join(cache, "apt", "debs")
    for f in sorted(os.listdir(debs)) if os.path.isdir(debs) else []:
        if f.startswith(package + "_") and f.endswith(".deb"):
            return bench.first_line(["dpkg-deb", "-f", os.path.join(debs, f), "Version"])
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camtls", required=True, help="the mipsel camtls binary")
    ap.add_argument("--cache", required=True, help="what tests/bench/mips-setup.sh made")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--proxies", default="camtls,nginx,stunnel")
    ap.add_argument("--out", default="docs/performance.md")
    args = ap.parse_args()
    names = args.proxies.split(",")
    unknown = [p for p in names if p not in ("camtls", "nginx", "stunnel")]
    if unknown:
        sys.exit("bench-mips: unknown proxies %s" % unknown)
    cache = os.path.abspath(args.cache)
    sysroot, plugin = os.path.join(cache, "sysroot"), os.path.join(cache, "insn.so")
    qemu_bin = shutil.which("qemu-mipsel")  # the dynamic build: the static one loads no plugin
    for path, what in ((sysroot, "sysroot"), (plugin, "plugin"), (args.camtls, "camtls binary"),
                       (qemu_bin or "", "qemu-mipsel (package qemu-user)")):
        if not os.path.exists(path):
            sys.exit("bench-mips: %s missing: %s (make bench-mips makes it)" % (what, path))
    camtls_bin = os.path.abspath(args.camtls)
    started = time.monotonic()
    os.sched_setaffinity(0, {bench.LOAD_CORE})
    # Servers under qemu start slower than native ones.
    bench.Server.start_timeout = 60.0

    wd = tempfile.mkdtemp(prefix="camtls-bench-mips-")
    os.chmod(wd, 0o755)  # nginx's worker runs as nobody
    backend, notes = None, []
    try:
        qemu = Qemu(qemu_bin, sysroot, plugin, wd,
                    {"nginx": os.path.join(sysroot, "usr/sbin/nginx"),
                     "stunnel4": os.path.join(sysroot, "usr/bin/stunnel4")})
        bench.Proxy.launcher = qemu
        certs = bench.make_certs(wd)
        backend = bench.start_backend(wd, bench.free_port())
        with open(os.path.join(wd, "www", "%dm" % STREAM_MIB), "wb") as f:
            f.write(os.urandom(STREAM_MIB * MIB))
        info = {
            "qemu": bench.first_line([qemu_bin, "--version"]),
            "camtls": "%s (%s, %d bytes)" % (bench.shown_path(camtls_bin),
                                             bench.first_line(["qemu-mipsel", camtls_bin,
                                                               "--version"]),
                                             os.path.getsize(camtls_bin)),
            "nginx": "Debian 12 mipsel nginx %s" % deb_version(cache, "nginx"),
            "stunnel": "Debian 12 mipsel stunnel4 %s" % deb_version(cache, "stunnel4"),
            "their OpenSSL": "Debian 12 mipsel libssl3 %s" % deb_version(cache, "libssl3"),
            "clients": "native curl %s and Python %s ssl on the host, over 127.0.0.1"
                       % (bench.first_line(["curl", "--version"]).split()[1],
                          sys.version.split()[0]),
        }
        proxies = [bench.make_proxy(n, wd, certs, backend.port, camtls_bin) for n in names]
        rounds = []
        for rnd in range(1, args.rounds + 1):
            results = {}
            for p in proxies:
                bench.log("bench-mips: round %d/%d, %s" % (rnd, args.rounds, p.name))
                try:
                    results[p.name] = measure(p, qemu)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    notes.append("round %d, %s: %s" % (rnd, p.name, str(e).strip()[:300]))
                    bench.log("  %s failed: %s" % (p.name, e))
                    results[p.name] = {}
            rounds.append(results)
        info["handshakes and keep-alive"] = ("Python's ssl, TLS 1.3, %s (tests/bench/"
                                             "client-openssl.cnf)" % bench.TLS13_SUITE)
        info["streams"] = "curl --tlsv1.3 --tls13-ciphers, %d MiB less 1 KiB" % STREAM_MIB
        body = report(info, names, rounds, notes, time.monotonic() - started)
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(wd, ignore_errors=True)
    print(body)
    bench.write_doc(args.out, body, BEGIN, END, after=bench.END)
    bench.log("bench-mips: wrote %s" % args.out)


if __name__ == "__main__":
    main()
