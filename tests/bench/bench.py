#!/usr/bin/env python3
"""make bench: camtls against nginx, haproxy, stunnel and hitch on the same
machine, same certificates, same backend, same clients.

Layout of the run (2 cores):
  core 0  the proxy under test, alone (taskset)
  core 1  the backend (its own nginx serving static files), the clients
          (wrk, openssl s_time, curl, this script)

Proxies run one at a time; every round runs each of them once, in a rotated
order, so drift (thermal, noisy neighbours) hits all alike; the report gives
medians over rounds. CPU figures are the proxy's utime+stime from
/proc/PID/stat over the requests it served, so they hold even when the client
side is the bottleneck.

Clients, and why:
  wrk        keep-alive requests/s and latency percentiles. It resumes TLS
             sessions when it reconnects, so it is not used for handshakes.
  s_time     `openssl s_time -new`: a full handshake per connection and one
             HTTP/1.0 request; several processes in parallel.
  curl       one 100 MiB download at a time (single-stream throughput), and
             8 at once from a backend location paced at 8 MiB/s each (the
             MJPEG-like viewers).
  python ssl 200 idle keep-alive connections for the memory figure.

Writes the results between the bench markers of docs/performance.md and prints
them. Standard library only.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PROXY_CORE, LOAD_CORE = 0, 1
KIB, MIB, GIB = 1024, 1024 ** 2, 1024 ** 3
TICK = os.sysconf("SC_CLK_TCK")
BIG_BODY = 100 * MIB
IDLE_CONNECTIONS = 200
KEEPALIVE_CONNECTIONS = 32
HANDSHAKE_CLIENTS = 4  # parallel s_time processes: enough to keep core 0 busy
# The MJPEG-like run: this many viewers at once, each a long response that
# the backend paces at VIEWER_RATE (nginx's limit_rate), as a camera sends
# frames at its own rate.
VIEWERS = 8
VIEWER_RATE = "8m"
ROUTER_QUOTA = 25  # percent of one core: a stand-in for a ~500 MHz router core
# The same client cipher for curl, s_time and the idle connections: what
# browsers on AES-capable hardware pick first.
TLS13_SUITE = "TLS_AES_128_GCM_SHA256"
TLS12_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited with status %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not open after %.0f s" % (port, timeout))


# ---------------------------------------------------------------------------
# /proc accounting

def process_tree(pid):
    """pid and all its descendants (nginx: master and worker)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def memory_kib(pids):
    """(RSS, PSS, peak RSS) summed over pids, KiB."""
    rss = pss = hwm = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                status = f.read()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            hwm += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
            with open("/proc/%d/smaps_rollup" % p) as f:
                pss += int(re.search(r"Pss:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return rss, pss, hwm


def is_elf(path):
    """True for an ELF executable (not the scripts and tarballs beside them)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def is_static(path):
    """True if the ELF file (32 or 64 bit, either byte order) has no PT_INTERP,
    that is, needs no dynamic loader."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        end = "<" if head[5] == 1 else ">"
        if head[4] == 2:
            phoff, = struct.unpack_from(end + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
        else:
            phoff, = struct.unpack_from(end + "I", head, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(end + "I", table, i * phentsize)[0] != 3 for i in range(phnum))


# ---------------------------------------------------------------------------
# CPU quota (the router-class runs)

class Quota:
    """Puts processes under a CPU quota: cgroup v2, cgroup v1, or systemd-run."""

    def __init__(self, percent):
        self.percent = percent
        self.mode, self.path, self.reason = None, None, ""
        name = "camtls-bench-%d" % os.getpid()
        v2 = "/sys/fs/cgroup"
        v1 = "/sys/fs/cgroup/cpu"
        try:
            with open(os.path.join(v2, "cgroup.controllers")) as f:
                has_v2_cpu = "cpu" in f.read().split()
        except OSError:
            has_v2_cpu = False
        errors = []
        if has_v2_cpu:
            try:
                with open(os.path.join(v2, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
                self.path = os.path.join(v2, name)
                os.mkdir(self.path)
                with open(os.path.join(self.path, "cpu.max"), "w") as f:
                    f.write("%d 100000" % (percent * 1000))
                self.mode = "cgroup v2 cpu.max"
                return
            except OSError as e:
                errors.append("cgroup v2: %s" % e)
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            try:
                self.path = os.path.join(v1, name)
                os.mkdir(self.path)
                with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
                    f.write("100000")
                with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
                    f.write(str(percent * 1000))
                self.mode = "cgroup v1 cpu.cfs_quota_us"
                return
            except OSError as e:
                errors.append("cgroup v1: %s" % e)
                self.path = None
        state = run(["systemctl", "is-system-running"]).stdout.strip() \
            if shutil.which("systemctl") else "absent"
        if state in ("running", "degraded") and shutil.which("systemd-run"):
            self.mode = "systemd-run CPUQuota"
            return
        errors.append("systemd: %s" % state)
        self.reason = "; ".join(errors) or "no cgroup cpu controller"

    def prefix(self):
        if self.mode == "systemd-run CPUQuota":
            return ["systemd-run", "--scope", "--quiet", "-p", "CPUQuota=%d%%" % self.percent, "--"]
        return []

    def add(self, pids):
        if self.path:
            for p in pids:
                with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                    f.write(str(p))

    def close(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# The servers

class Server:
    """A process group started pinned to a core; stopped with SIGTERM."""

    start_timeout = 10.0  # seconds until its port must be open

    def __init__(self, name, cmd, core, port, prefix=(), cwd=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(list(prefix) + ["taskset", "-c", str(core)] + cmd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     cwd=cwd, start_new_session=True)
        try:
            wait_port(port, self.proc, self.start_timeout)
        except RuntimeError as e:
            err = self.stop()
            raise RuntimeError("%s: %s %s" % (name, e, err.strip()[-400:]))

    def pids(self):
        return process_tree(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""


def nginx_conf(wd, name, body):
    path = os.path.join(wd, name + ".conf")
    with open(path, "w") as f:
        f.write("""daemon off;
worker_processes 1;
pid {wd}/{name}.pid;
error_log {wd}/{name}-error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
{body}
}}
""".format(wd=wd, name=name, body=body))
    return path


def start_backend(wd, port):
    www = os.path.join(wd, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "1k"), "wb") as f:
        f.write(os.urandom(KIB))
    block = os.urandom(MIB)
    with open(os.path.join(www, "100m"), "wb") as f:
        for _ in range(BIG_BODY // MIB):
            f.write(block)
    conf = nginx_conf(wd, "backend", """    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        # The camera side of the viewer run: a long body sent at a camera's
        # pace rather than as fast as the socket takes it.
        location /stream/ {{ alias {www}/; limit_rate {rate}; }}
    }}""".format(port=port, www=www, rate=VIEWER_RATE))
    return Server("backend nginx", ["nginx", "-p", wd, "-c", conf], LOAD_CORE, port)


class Proxy:
    """One product under test: serves ECDSA on port_ec and RSA on port_rsa."""

    name = ""
    # bench_mips.py sets this to run every proxy under qemu-user: a function
    # from the native command to the command to run instead.
    launcher = None

    def __init__(self, wd, certs, backend_port):
        self.wd, self.certs, self.backend = wd, certs, backend_port
        self.port_ec, self.port_rsa = free_port(), free_port()
        self.servers = []

    def start(self, prefix=()):
        raise NotImplementedError

    def command(self, cmd):
        return self.launcher(cmd) if self.launcher else cmd

    def binary(self):
        """The executable's path (its size is reported)."""
        return shutil.which(PEER_COMMANDS.get(self.name, ""))

    def pids(self, kind="ec"):
        """The processes that serve the ECDSA (or RSA) port."""
        raise NotImplementedError

    def all_pids(self):
        return sorted({p for s in self.servers for p in s.pids()})

    def stop(self):
        for s in self.servers:
            s.stop()
        self.servers = []


class Camtls(Proxy):
    name = "camtls"

    def __init__(self, wd, certs, backend_port, binary):
        super().__init__(wd, certs, backend_port)
        self.path = binary

    def binary(self):
        return self.path

    def start(self, prefix=()):
        for kind, port in (("ec", self.port_ec), ("rsa", self.port_rsa)):
            cert, key = self.certs[kind]
            cmd = [self.path, "--route", "127.0.0.1:%d=127.0.0.1:%d" % (port, self.backend),
                   "--cert", cert, "--key", key, "--log-level", "warn",
                   # the default caps (128 in all, 32 per address) are below
                   # the idle-connection test, whose clients share 127.0.0.1
                   "--max-connections", "512", "--max-per-address", "512"]
            self.servers.append(Server("camtls " + kind, self.command(cmd), PROXY_CORE, port,
                                       prefix))

    def pids(self, kind="ec"):
        return self.servers[0 if kind == "ec" else 1].pids()


class Nginx(Proxy):
    name = "nginx"

    def start(self, prefix=()):
        servers = ""
        for kind, port in (("ec", self.port_ec), ("rsa", self.port_rsa)):
            cert, key = self.certs[kind]
            servers += """    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ proxy_pass http://backend; }}
    }}
""".format(port=port, cert=cert, key=key)
        conf = nginx_conf(self.wd, "proxy", """    ssl_protocols TLSv1.2 TLSv1.3;
    proxy_buffering off;
    proxy_buffer_size 16k;
    proxy_busy_buffers_size 16k;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream backend {{ server 127.0.0.1:{b}; keepalive 64; }}
{servers}""".format(b=self.backend, servers=servers))
        s = Server("nginx", self.command(["nginx", "-p", self.wd, "-c", conf]), PROXY_CORE,
                   self.port_ec, prefix)
        self.servers.append(s)
        wait_port(self.port_rsa, s.proc)

    def pids(self, kind="ec"):
        return self.servers[0].pids()


class Stunnel(Proxy):
    name = "stunnel"

    def start(self, prefix=()):
        path = os.path.join(self.wd, "stunnel.conf")
        text = "foreground = yes\npid =\nsyslog = no\ndebug = 3\n"
        text += "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
        for kind, port in (("ec", self.port_ec), ("rsa", self.port_rsa)):
            cert, key = self.certs[kind]
            text += "[%s]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\nkey = %s\n" % (
                kind, port, self.backend, cert, key)
        with open(path, "w") as f:
            f.write(text)
        s = Server("stunnel", self.command([PEER_COMMANDS["stunnel"], path]),
                   PROXY_CORE, self.port_ec, prefix)
        self.servers.append(s)
        wait_port(self.port_rsa, s.proc)

    def pids(self, kind="ec"):
        return self.servers[0].pids()


def combined_pem(wd, certs, kind):
    """Certificate and key in one file, as haproxy and hitch take them."""
    cert, key = certs[kind]
    path = os.path.join(wd, "%s-combined.pem" % kind)
    with open(path, "w") as out:
        for part in (cert, key):
            with open(part) as f:
                out.write(f.read())
    return path


class Haproxy(Proxy):
    """haproxy in HTTP mode: one process, one thread, idle backend
    connections reused (its default, http-reuse safe), as nginx's pool."""

    name = "haproxy"

    def start(self, prefix=()):
        path = os.path.join(self.wd, "haproxy.cfg")
        text = """global
    nbthread 1
    maxconn 4096
    ssl-default-bind-options ssl-min-ver TLSv1.2
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
backend camera
    server b 127.0.0.1:{b}
""".format(b=self.backend)
        for kind, port in (("ec", self.port_ec), ("rsa", self.port_rsa)):
            text += """frontend {kind}
    bind 127.0.0.1:{port} ssl crt {pem} backlog 4096
    default_backend camera
""".format(kind=kind, port=port, pem=combined_pem(self.wd, self.certs, kind))
        with open(path, "w") as f:
            f.write(text)
        s = Server("haproxy", self.command(["haproxy", "-db", "-f", path]), PROXY_CORE,
                   self.port_ec, prefix)
        self.servers.append(s)
        wait_port(self.port_rsa, s.proc)

    def pids(self, kind="ec"):
        return self.servers[0].pids()


class Hitch(Proxy):
    """hitch: a TLS terminator in front of the backend, like stunnel; one
    worker process (an event loop) beside its manager process. It refuses to
    run its worker as root, so the worker runs as nobody."""

    name = "hitch"

    def start(self, prefix=()):
        path = os.path.join(self.wd, "hitch.conf")
        text = """backend = "[127.0.0.1]:{b}"
workers = 1
daemon = off
user = "nobody"
group = "nogroup"
backlog = 4096
tls-protos = TLSv1.2 TLSv1.3
ocsp-dir = "{wd}"
syslog = off
log-level = 0
""".format(b=self.backend, wd=self.wd)
        for kind, port in (("ec", self.port_ec), ("rsa", self.port_rsa)):
            text += """frontend = {{
    host = "127.0.0.1"
    port = "{port}"
    pem-file = "{pem}"
}}
""".format(port=port, pem=combined_pem(self.wd, self.certs, kind))
        with open(path, "w") as f:
            f.write(text)
        s = Server("hitch", self.command(["hitch", "--config", path]), PROXY_CORE,
                   self.port_ec, prefix)
        self.servers.append(s)
        wait_port(self.port_rsa, s.proc)

    def pids(self, kind="ec"):
        return self.servers[0].pids()


# The peers, in the order of the report's columns, and their executables.
PEERS = {"nginx": Nginx, "haproxy": Haproxy, "stunnel": Stunnel, "hitch": Hitch}
PEER_COMMANDS = {"nginx": "nginx", "haproxy": "haproxy", "stunnel": "stunnel4", "hitch": "hitch"}
PROXIES = ["camtls"] + list(PEERS)


# ---------------------------------------------------------------------------
# Profiling (--profile): where camtls's time and memory go

class Observer:
    """Watches the proxy's processes during one phase; this one does nothing."""

    def __init__(self, pids, label):
        self.pids, self.label = pids, label

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Attached(Observer):
    """Runs a tool attached to the pids for the phase, stopped with SIGINT."""

    tool = None  # perf or strace
    outdir = None

    def command(self):
        pids = ",".join(map(str, self.pids))
        if self.tool == "perf":
            return ["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384",
                    "-o", self.output(), "-p", pids]
        return ["strace", "-c", "-f", "-o", self.output()] + [
            a for p in self.pids for a in ("-p", str(p))]

    def output(self):
        ext = "perf.data" if self.tool == "perf" else "syscalls.txt"
        return os.path.join(self.outdir, "%s.%s" % (self.label, ext))

    def __enter__(self):
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attaching takes a moment; the phase starts after
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return False


def smaps_by_mapping(pid):
    """Resident KiB by mapping (file name, [heap], [stack], anonymous)."""
    totals, current = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = fields[5] if len(fields) > 5 else "[anonymous]"
                current = "%s (%s)" % (name, fields[1])
            elif fields and fields[0] == "Rss:" and current:
                totals[current] = totals.get(current, 0) + int(fields[1])
    return sorted(((k, v) for k, v in totals.items() if v), key=lambda kv: -kv[1])


def strace_counts(path):
    """{syscall: (calls, errors)} from `strace -c` output."""
    counts = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and re.match(r"^[\d.]+$", fields[0]) and fields[-1] != "total":
                counts[fields[-1]] = (int(fields[3]), int(fields[4]) if len(fields) == 6 else 0)
    return counts


def perf_report(data, *extra):
    out = run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + list(extra),
              timeout=600).stdout
    return [l for l in out.splitlines() if l.strip() and not l.startswith("#")]


def perf_dso_share(data):
    share = {}
    for line in perf_report(data, "--no-children", "--sort", "dso"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if m:
            share[m.group(2)] = float(m.group(1))
    return share


# Inclusive-time lines worth showing: the proxy's own steps and the TLS
# library's entry points, not the executor and std frames that wrap them.
INTERESTING = re.compile(r"camtls::(proxy|body|head|tls|stream|server)::|\bSSL_|ssl3_|tls13?_|"
                         r"EVP_|__libc_(recv|send|malloc|free|calloc)|malloc|calloc|memset")


def profile(args, proxies, outdir):
    """Each proxy once under perf and once under strace, phase by phase, and
    camtls's resident memory by mapping; writes DIR/summary.txt and, per
    proxy, DIR/NAME/PHASE.{perf.data,syscalls.txt,txt}."""
    phases = (("keepalive", "ka_requests", "request", 1),
              ("handshake-ec", "hs_ec_count", "handshake", 1),
              ("handshake-rsa", "hs_rsa_count", "handshake", 1),
              ("stream", "tp_bytes", "MiB", MIB))
    tools = [t for t in ("perf", "strace") if shutil.which(t)]
    results, summary = {}, []
    for proxy in proxies:
        pdir = os.path.join(outdir, proxy.name)
        os.makedirs(pdir, exist_ok=True)
        Attached.outdir = pdir
        results[proxy.name] = {}
        for tool in tools:
            Attached.tool = tool
            log("bench: profile of %s under %s" % (proxy.name, tool))
            proxy.start()
            try:
                get_1k(proxy.port_ec)
                if tool == tools[0] and proxy.name == "camtls":
                    summary.append(memory_maps(proxy))
                r = results[proxy.name][tool] = {}
                r.update(measure_keepalive(proxy, args.seconds, observe=Attached))
                r.update(measure_handshakes(proxy, "ec", args.seconds, observe=Attached))
                r.update(measure_handshakes(proxy, "rsa", args.seconds, observe=Attached))
                r.update(measure_throughput(proxy, args.downloads, observe=Attached))
            finally:
                proxy.stop()
    names = [p.name for p in proxies]
    for label, key, unit, scale in phases:
        summary.append("## %s\n" % label)
        if "strace" in tools:
            counts = {}
            for name in names:
                ops = results[name]["strace"][key] / scale
                for call, (n, err) in strace_counts(
                        os.path.join(outdir, name, label + ".syscalls.txt")).items():
                    counts.setdefault(call, {})[name] = (n / ops, err / ops)
            rows = sorted(counts.items(), key=lambda kv: -max(v[0] for v in kv[1].values()))
            trows = [[call] + ["%.2f (%.2f failed)" % v[name] if name in v else "-" for name in names]
                     for call, v in rows if max(x[0] for x in v.values()) >= 0.05]
            trows.append(["all"] + ["%.2f" % sum(v[name][0] for v in counts.values() if name in v)
                                    for name in names])
            summary.append("System calls per %s (under strace, which slows every proxy alike):\n"
                           % unit)
            summary.append(table(["syscall"] + names, trows) + "\n")
        if "perf" in tools:
            shares = {n: perf_dso_share(os.path.join(outdir, n, label + ".perf.data")) for n in names}
            objects = sorted({o for sh in shares.values() for o in sh},
                             key=lambda o: -max(sh.get(o, 0) for sh in shares.values()))
            summary.append("Share of CPU samples by object (perf):\n")
            summary.append(table(["object"] + names,
                                 [[o] + ["%.1f%%" % shares[n].get(o, 0) for n in names]
                                  for o in objects if max(sh.get(o, 0) for sh in shares.values()) >= 0.5])
                           + "\n")
            for name in names:
                data = os.path.join(outdir, name, label + ".perf.data")
                flat = perf_report(data, "--no-children", "--sort", "dso,sym", "--percent-limit", "0.8")
                inclusive = [l for l in perf_report(data, "--children", "--sort", "sym",
                                                    "--percent-limit", "2")
                             if INTERESTING.search(l) and "(inlined)" not in l][:25]
                with open(os.path.join(outdir, name, label + ".txt"), "w") as f:
                    f.write("%s, %s: self time by symbol (>= 0.8%%)\n%s\n\n"
                            "inclusive time (children, self) of the proxy's steps\n%s\n"
                            % (name, label, "\n".join(flat), "\n".join(inclusive)))
            summary.append("Top symbols: %s\n" % ", ".join(
                "%s/%s/%s.txt" % (outdir, n, label) for n in names))
    with open(os.path.join(outdir, "summary.txt"), "w") as f:
        f.write("\n".join(summary))
    log("bench: profiles in %s (summary.txt; perf report -i NAME/PHASE.perf.data for more)"
        % outdir)


def memory_maps(proxy):
    """Resident memory of the ECDSA camtls process by mapping, idle and with
    the idle connections open."""
    time.sleep(0.3)
    pid = proxy.pids("ec")[0]
    maps = {"idle, after one request": smaps_by_mapping(pid)}
    measure_idle_connections(proxy, on_open=lambda: maps.update(
        {"with %d idle keep-alive TLS connections" % IDLE_CONNECTIONS: smaps_by_mapping(pid)}))
    text = ""
    for title, rows in maps.items():
        text += "Resident KiB of camtls by mapping, %s (total %d):\n\n%s\n\n" % (
            title, sum(v for _, v in rows), table(["mapping", "KiB"], [[k, v] for k, v in rows[:12]]))
    return text


# ---------------------------------------------------------------------------
# Measurements

def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(TLS12_CIPHERS)
    return ctx


def get_1k(port):
    """One request; raises unless the proxy answers 200 with the 1 KiB body."""
    out = run(["curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
               "https://127.0.0.1:%d/1k" % port], timeout=15).stdout
    if out != "200 1024":
        raise RuntimeError("GET /1k through port %d gave %r" % (port, out))


def tls_params(port):
    """Protocol and cipher that a stock OpenSSL client negotiates."""
    out = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"],
              input="", timeout=15).stderr
    proto = re.search(r"Protocol version: (\S+)", out)
    suite = re.search(r"Ciphersuite: (\S+)", out)
    return "%s %s" % (proto.group(1) if proto else "?", suite.group(1) if suite else "?")


def measure_idle(proxy):
    time.sleep(0.3)
    rss, pss, _ = memory_kib(proxy.pids("ec"))
    return {"rss_idle": rss, "pss_idle": pss}


def measure_idle_connections(proxy, on_open=None):
    ctx = client_context()
    conns = []
    request = b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        for _ in range(IDLE_CONNECTIONS):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", proxy.port_ec), timeout=10))
            s.sendall(request)
            got = b""
            while not (b"\r\n\r\n" in got and len(got.split(b"\r\n\r\n", 1)[1]) >= KIB):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed before the response ended")
                got += chunk
            conns.append(s)
        # Idle means idle: past any short hold of buffers after a response.
        time.sleep(2.0)
        rss, pss, _ = memory_kib(proxy.pids("ec"))
        if on_open:
            on_open()
    finally:
        for s in conns:
            s.close()
    return {"rss_conns": rss, "pss_conns": pss}


def parse_duration(value, unit):
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def measure_keepalive(proxy, seconds, observe=None):
    pids = proxy.pids("ec")
    cpu0 = cpu_seconds(pids)
    t0 = time.monotonic()
    with (observe or Observer)(pids, "keepalive"):
        out = run(["wrk", "-t1", "-c%d" % KEEPALIVE_CONNECTIONS, "-d%ds" % seconds, "--latency",
                   "https://127.0.0.1:%d/1k" % proxy.port_ec], timeout=seconds + 60).stdout
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pids) - cpu0
    requests = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if not (requests and rps and p99):
        raise RuntimeError("wrk output not understood: %s" % out[-300:])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    n = int(requests.group(1))
    return {"ka_requests": n,
            "ka_rps": float(rps.group(1)),
            "ka_p99_ms": parse_duration(p99.group(1), p99.group(2)) * 1e3,
            "ka_cpu_us": cpu / n * 1e6 if n else None,
            "ka_busy": cpu / wall,
            "ka_errors": (int(bad.group(1)) if bad else 0),
            "ka_socket_errors": errors.group(1) if errors else ""}


def measure_handshakes(proxy, kind, seconds, observe=None):
    port = proxy.port_ec if kind == "ec" else proxy.port_rsa
    pids = proxy.pids(kind)
    cpu0 = cpu_seconds(pids)
    t0 = time.monotonic()
    watch = (observe or Observer)(pids, "handshake-" + kind)
    watch.__enter__()
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                               "-www", "/1k", "-time", str(seconds),
                               "-ciphersuites", TLS13_SUITE, "-cipher", TLS12_CIPHERS],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(HANDSHAKE_CLIENTS)]
    outs = [p.communicate(timeout=seconds + 60)[0] for p in procs]
    watch.__exit__(None, None, None)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pids) - cpu0
    count = bytes_per = 0
    for out in outs:
        m = re.search(r"(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", out)
        if not m:
            raise RuntimeError("s_time output not understood: %s" % out[-300:])
        count += int(m.group(1))
        bytes_per = int(m.group(2))
    if bytes_per < KIB:
        raise RuntimeError("s_time read %d bytes per connection: the 1 KiB body was not served"
                           % bytes_per)
    return {"hs_%s_count" % kind: count,
            "hs_%s_rate" % kind: count / wall,
            "hs_%s_cpu_us" % kind: cpu / count * 1e6 if count else None,
            "hs_%s_busy" % kind: cpu / wall}


def measure_throughput(proxy, downloads, prefix="tp", observe=None):
    pids = proxy.pids("ec")
    cpu0 = cpu_seconds(pids)
    speeds, total = [], 0
    watch = (observe or Observer)(pids, "stream")
    watch.__enter__()
    for _ in range(downloads):
        out = run(["curl", "-sk", "--max-time", "120", "-o", "/dev/null",
                   "--tls13-ciphers", TLS13_SUITE, "--ciphers", TLS12_CIPHERS,
                   "-w", "%{http_code} %{size_download} %{time_total}",
                   "https://127.0.0.1:%d/100m" % proxy.port_ec], timeout=150).stdout.split()
        if len(out) != 3 or out[0] != "200" or int(out[1]) != BIG_BODY:
            raise RuntimeError("100 MiB download gave %r" % out)
        speeds.append(int(out[1]) / float(out[2]) / MIB)
        total += int(out[1])
    watch.__exit__(None, None, None)
    cpu = cpu_seconds(pids) - cpu0
    return {prefix + "_bytes": total,
            prefix + "_mibs": statistics.median(speeds), prefix + "_cpu_s_gib": cpu / (total / GIB)}


def measure_viewers(proxy, seconds):
    """VIEWERS long streams at once, each paced by the backend, for `seconds`:
    the proxy's CPU per GiB when it serves several MJPEG-like viewers."""
    pids = proxy.pids("ec")
    cpu0 = cpu_seconds(pids)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sk", "--max-time", str(seconds), "-o", "/dev/null",
                               "--tls13-ciphers", TLS13_SUITE, "--ciphers", TLS12_CIPHERS,
                               "-w", "%{http_code} %{size_download}",
                               "https://127.0.0.1:%d/stream/100m" % proxy.port_ec],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(VIEWERS)]
    outs = [p.communicate(timeout=seconds + 60)[0].split() for p in procs]
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pids) - cpu0
    total = 0
    for out in outs:
        # curl stops each viewer at --max-time (exit 28) with the bytes it had
        if len(out) != 2 or out[0] != "200" or int(out[1]) == 0:
            raise RuntimeError("viewer stream gave %r" % out)
        total += int(out[1])
    return {"mv_bytes": total, "mv_mibs": total / wall / MIB,
            "mv_cpu_s_gib": cpu / (total / GIB), "mv_busy": cpu / wall}


# ---------------------------------------------------------------------------
# Hardware limits and machine description

def openssl_speed(seconds):
    """Single-core figures from `openssl speed` on the proxy's core."""
    base = ["taskset", "-c", str(PROXY_CORE), "openssl", "speed", "-seconds", str(seconds)]
    limits = {}
    for alg in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"):
        out = run(base + ["-bytes", "16384", "-evp", alg], timeout=60).stdout
        m = re.search(r"^\S+\s+([\d.]+)k\s*$", out, re.M)
        if m:
            limits[alg] = float(m.group(1)) * 1000 / MIB
    out = run(base + ["ecdsap256", "rsa2048", "ecdhx25519"], timeout=120).stdout
    m = re.search(r"rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if m:
        limits["rsa2048 sign"], limits["rsa2048 verify"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if m:
        limits["ecdsap256 sign"], limits["ecdsap256 verify"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"ecdh \(X25519\)\s+\S+\s+([\d.]+)", out)
    if m:
        limits["x25519 op"] = float(m.group(1))
    return limits


def shown_path(path):
    """Relative to the working tree when inside it, absolute otherwise."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def first_line(cmd):
    try:
        p = run(cmd, timeout=10)
        return ((p.stdout or "") + (p.stderr or "")).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine():
    info = {}
    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
    m = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    info["cpu"] = m.group(1).strip() if m else platform.machine()
    m = re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo)
    info["cpu"] += ", %d cores%s" % (os.cpu_count(), ", %.0f MHz" % float(m.group(1)) if m else "")
    if " hypervisor" in cpuinfo:
        info["cpu"] += ", virtual machine"
    with open("/proc/meminfo") as f:
        info["memory"] = "%.1f GiB" % (int(f.readline().split()[1]) / MIB)
    info["kernel"] = platform.release()
    try:
        with open("/etc/os-release") as f:
            info["os"] = re.search(r'PRETTY_NAME="?([^"\n]*)', f.read()).group(1)
    except (OSError, AttributeError):
        info["os"] = "?"
    info["openssl"] = first_line(["openssl", "version"])
    info["nginx"] = first_line(["nginx", "-v"]).replace("nginx version: ", "")
    if shutil.which("haproxy"):
        info["haproxy"] = first_line(["haproxy", "-v"]).split(" - ")[0]
    if shutil.which(PEER_COMMANDS["stunnel"]):
        info["stunnel"] = next((l for l in run([PEER_COMMANDS["stunnel"], "-version"])
                                .stderr.splitlines() if l.startswith("stunnel ")), "?")
    if shutil.which("hitch"):
        info["hitch"] = first_line(["hitch", "--version"])
    info["wrk"] = first_line(["wrk", "--version"]).split(" [")[0]
    info["curl"] = " ".join(first_line(["curl", "--version"]).split()[:2])
    # Other work on the machine shows up as noise; the reader can judge it.
    info["load average at start"] = "%.2f" % os.getloadavg()[0]
    return info


# ---------------------------------------------------------------------------
# Report

ROWS = [  # key, label, format, better ("lo" or "hi")
    ("ka_rps", "keep-alive requests/s, 1 KiB, %d conns" % KEEPALIVE_CONNECTIONS, "%.0f", "hi"),
    ("ka_p99_ms", "keep-alive p99 latency, ms", "%.2f", "lo"),
    ("ka_cpu_us", "CPU per keep-alive request, us", "%.1f", "lo"),
    ("ka_busy", "proxy core busy during keep-alive", "%.0f%%", None),
    ("hs_ec_rate", "new TLS handshakes/s, ECDSA P-256", "%.0f", "hi"),
    ("hs_ec_cpu_us", "CPU per full handshake + request, ECDSA, us", "%.0f", "lo"),
    ("hs_ec_busy", "proxy core busy during ECDSA handshakes", "%.0f%%", None),
    ("hs_rsa_rate", "new TLS handshakes/s, RSA-2048", "%.0f", "hi"),
    ("hs_rsa_cpu_us", "CPU per full handshake + request, RSA, us", "%.0f", "lo"),
    ("hs_rsa_busy", "proxy core busy during RSA handshakes", "%.0f%%", None),
    ("tp_mibs", "one-stream throughput, MiB/s (100 MiB body)", "%.0f", "hi"),
    ("tp_cpu_s_gib", "CPU seconds per GiB streamed (1 connection)", "%.3f", "lo"),
    ("mv_mibs", "%d MJPEG-like viewers, MiB/s in all (each paced at %s MiB/s)"
     % (VIEWERS, VIEWER_RATE.rstrip("m")), "%.0f", None),
    ("mv_cpu_s_gib", "CPU seconds per GiB, %d MJPEG-like viewers" % VIEWERS, "%.3f", "lo"),
    ("mv_busy", "proxy core busy during the viewers", "%.0f%%", None),
    ("rss_idle", "RSS idle, KiB", "%.0f", "lo"),
    ("pss_idle", "PSS idle (all processes), KiB", "%.0f", "lo"),
    ("rss_conns", "RSS with %d idle TLS connections, KiB" % IDLE_CONNECTIONS, "%.0f", "lo"),
    ("kib_per_conn", "KiB per idle keep-alive TLS connection (RSS)", "%.1f", "lo"),
    ("rss_peak", "peak RSS over the round, KiB", "%.0f", "lo"),
    ("binary_bytes", "binary size, bytes (the peers load libssl and libcrypto besides)", "%.0f",
     "lo"),
]
ROUTER_ROWS = [
    ("rt_mibs", "one-stream throughput, MiB/s", "%.0f", "hi"),
    ("rt_cpu_s_gib", "CPU seconds per GiB streamed", "%.3f", "lo"),
    ("hs_ec_rate", "new TLS handshakes/s, ECDSA", "%.0f", "hi"),
    ("hs_ec_cpu_us", "CPU per full handshake, ECDSA, us", "%.0f", "lo"),
    ("hs_rsa_rate", "new TLS handshakes/s, RSA", "%.0f", "hi"),
    ("hs_rsa_cpu_us", "CPU per full handshake, RSA, us", "%.0f", "lo"),
]


def fmt(fmt_, value):
    if value is None:
        return "n/a"
    if fmt_.endswith("%%"):
        return fmt_ % (value * 100)
    return fmt_ % value


def medians(rounds, proxy):
    keys = {}
    for r in rounds:
        for k, v in r.get(proxy, {}).items():
            if isinstance(v, (int, float)) and v is not None:
                keys.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in keys.items()}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


# The targets (issue 13). Sizes in MB are 10^6 bytes, and idle RSS
# in MB is 1000 KiB, as the issue's own table counts them.
MAX_KIB_PER_CONN = 16
MAX_RSS_IDLE_KIB = 2000
MAX_BINARY_BYTES = 2000000


def targets(m, sizes):
    """(target, value text, met) for each of the issue's targets."""
    c = m.get("camtls", {})
    peers = [p for p in m if p != "camtls"]
    out = []

    def verdict(ok):
        return "met" if ok else "MISSED"

    def against(label, key, peer, limit):
        r = ratio(c.get(key), m.get(peer, {}).get(key))
        if r is None:
            out.append((label, "n/a", "not measured"))
        else:
            out.append((label, "%.2f x %s" % (r, peer), verdict(r <= limit)))

    def lead(label, key):
        """camtls at or below the best peer: 'keep the lead'."""
        have = [(m[p][key], p) for p in peers if m[p].get(key)]
        if c.get(key) is None or not have:
            out.append((label, "n/a", "not measured"))
            return
        best, who = min(have)
        r = c[key] / best
        out.append((label, "%.2f x %s (the best peer)" % (r, who), verdict(r <= 1.0)))

    def at_most(label, key, limit, unit):
        v = c.get(key)
        out.append((label, "n/a" if v is None else "%.1f %s" % (v, unit),
                    "not measured" if v is None else verdict(v <= limit)))

    at_most("<= %d KiB per idle TLS connection" % MAX_KIB_PER_CONN, "kib_per_conn",
            MAX_KIB_PER_CONN, "KiB")
    at_most("idle RSS <= 2.0 MB (%d KiB)" % MAX_RSS_IDLE_KIB, "rss_idle", MAX_RSS_IDLE_KIB, "KiB")
    against("CPU per full handshake, RSA-2048 <= 1.0 x nginx", "hs_rsa_cpu_us", "nginx", 1.0)
    against("CPU per full handshake, ECDSA P-256 <= 0.9 x nginx", "hs_ec_cpu_us", "nginx", 0.9)
    against("CPU per keep-alive request <= 0.8 x nginx", "ka_cpu_us", "nginx", 0.8)
    against("CPU per keep-alive request <= hitch", "ka_cpu_us", "hitch", 1.0)
    lead("CPU per GiB streamed, 1 connection: keep the lead", "tp_cpu_s_gib")
    lead("CPU per GiB, %d MJPEG-like viewers: keep the lead" % VIEWERS, "mv_cpu_s_gib")
    dist = [(size, path) for path, size, _ in sizes
            if isinstance(size, int) and os.path.basename(path).startswith("camtls-")]
    if dist:
        largest, path = max(dist)
        out.append(("binary <= 2.0 MB (%d bytes), each target" % MAX_BINARY_BYTES,
                    "largest %d bytes (%s)" % (largest, os.path.basename(path)),
                    verdict(largest <= MAX_BINARY_BYTES)))
    else:
        out.append(("binary <= 2.0 MB, each target", "n/a (no release binaries)", "not measured"))
    return out


def report(args, info, limits, rounds, router_rounds, quota, notes, sizes, bin_sizes, tls,
           elapsed):
    names = [p for p in PROXIES if p in args.proxies]
    m = {p: medians(rounds, p) for p in names}
    for p in names:
        if p in bin_sizes:
            m[p]["binary_bytes"] = bin_sizes[p]
        if "rss_conns" in m[p] and "rss_idle" in m[p]:
            m[p]["kib_per_conn"] = (m[p]["rss_conns"] - m[p]["rss_idle"]) / IDLE_CONNECTIONS
        peaks = [r[p]["rss_peak"] for r in rounds if "rss_peak" in r.get(p, {})]
        if peaks:
            m[p]["rss_peak"] = max(peaks)
    info["load average at end"] = "%.2f" % os.getloadavg()[0]
    out = []
    out.append("Run of %s, %d round(s), %.0f s in all. camtls binary: %s."
               % (time.strftime("%Y-%m-%d %H:%M"), len(rounds), elapsed, info.get("camtls binary", "not run")))
    out.append("")
    out.append("### Machine")
    out.append("")
    out.append(table(["", ""], [[k, v] for k, v in info.items()]))
    out.append("")
    out.append("### Single-core limits (`openssl speed` on the proxy's core)")
    out.append("")
    lim_rows = []
    for alg in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"):
        if alg in limits:
            lim_rows.append([alg + ", 16 KiB records", "%.0f MiB/s" % limits[alg]])
    for k in ("ecdsap256 sign", "ecdsap256 verify", "rsa2048 sign", "rsa2048 verify", "x25519 op"):
        if k in limits:
            lim_rows.append([k, "%.0f /s" % limits[k]])
    out.append(table(["operation", "one core"], lim_rows))
    out.append("")
    out.append("### Figures (medians over rounds; proxy pinned to core %d, backend and clients "
               "on core %d)" % (PROXY_CORE, LOAD_CORE))
    out.append("")
    header = ["figure"] + names + ["camtls/%s" % p for p in names if p != "camtls"]
    rows = []
    for key, label, f, _ in ROWS:
        row = [label] + [fmt(f, m[p].get(key)) for p in names]
        for p in names:
            if p != "camtls":
                r = ratio(m.get("camtls", {}).get(key), m[p].get(key))
                row.append("n/a" if r is None or f.endswith("%%") else "%.2f" % r)
        rows.append(row)
    rows.append(["TLS a stock OpenSSL client gets"] + [tls.get(p, "n/a") for p in names]
                + ["" for p in names if p != "camtls"])
    out.append(table(header, rows))
    out.append("")
    hw = []
    c = m.get("camtls", {})
    if "aes-128-gcm" in limits and c.get("tp_mibs"):
        hw.append("camtls streams at %.0f%% of the core's AES-128-GCM rate"
                  % (100 * c["tp_mibs"] / limits["aes-128-gcm"]))
    if "ecdsap256 sign" in limits and c.get("hs_ec_cpu_us"):
        hw.append("an ECDSA handshake costs camtls %.1f ECDSA signatures' worth of CPU"
                  % (c["hs_ec_cpu_us"] / (1e6 / limits["ecdsap256 sign"])))
    if "rsa2048 sign" in limits and c.get("hs_rsa_cpu_us"):
        hw.append("an RSA handshake costs camtls %.2f RSA-2048 signatures' worth of CPU"
                  % (c["hs_rsa_cpu_us"] / (1e6 / limits["rsa2048 sign"])))
    if hw:
        out.append("Against the hardware: " + "; ".join(hw) + ".")
        out.append("")
    out.append("### Targets (issue 13; camtls against the peers in the same run)")
    out.append("")
    out.append(table(["target", "measured", ""], [list(t) for t in targets(m, sizes)]))
    out.append("")
    out.append("### Router class: proxy limited to %d%% of one core (%s)" % (ROUTER_QUOTA, quota))
    out.append("")
    if router_rounds:
        rn = [p for p in ("camtls", "nginx") if p in names]
        rm = {p: medians(router_rounds, p) for p in rn}
        rrows = []
        for key, label, f, _ in ROUTER_ROWS:
            row = [label] + [fmt(f, rm[p].get(key)) for p in rn]
            if len(rn) == 2:
                r = ratio(rm["camtls"].get(key), rm["nginx"].get(key))
                row.append("n/a" if r is None else "%.2f" % r)
            rrows.append(row)
        out.append(table(["figure"] + rn + (["camtls/nginx"] if len(rn) == 2 else []), rrows))
    else:
        out.append("Not run: %s." % quota)
    out.append("")
    out.append("### Binary sizes")
    out.append("")
    out.append(table(["file", "bytes", "linking"], sizes))
    if notes:
        out.append("")
        out.append("### Problems during the run")
        out.append("")
        out.extend("- " + n for n in notes)
    return "\n".join(out) + "\n"


def write_doc(path, body, begin=BEGIN, end=END, after=None):
    """Replaces the text between the begin and end markers of the file with
    body. Without the markers the block goes after the line `after` names
    (another block's end marker), or else at the top."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = ""
    block = begin + "\n" + body + end
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    elif after and after in text:
        cut = text.index(after) + len(after)
        text = text[:cut] + "\n\n" + block + text[cut:]
    else:
        text = "# Performance\n\n" + block + "\n" + text
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------

def make_certs(wd):
    certs = {}
    for kind, newkey in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        cert, key = os.path.join(wd, kind + ".pem"), os.path.join(wd, kind + ".key")
        run(["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", key, "-out", cert] + newkey, timeout=60).check_returncode()
        certs[kind] = (cert, key)
    return certs


def make_proxy(name, wd, certs, backend_port, camtls_bin):
    if name == "camtls":
        return Camtls(wd, certs, backend_port, camtls_bin)
    return PEERS[name](wd, certs, backend_port)


def one_round(proxy, args, notes, rnd):
    res = {}
    try:
        proxy.start()
        get_1k(proxy.port_ec)
        get_1k(proxy.port_rsa)
        res.update(measure_idle(proxy))
        res.update(measure_idle_connections(proxy))
        res.update(measure_keepalive(proxy, args.seconds))
        res.update(measure_handshakes(proxy, "ec", args.seconds))
        res.update(measure_handshakes(proxy, "rsa", args.seconds))
        res.update(measure_throughput(proxy, args.downloads))
        res.update(measure_viewers(proxy, args.seconds))
        res["rss_peak"] = memory_kib(proxy.pids("ec"))[2]
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        notes.append("round %d, %s: %s" % (rnd, proxy.name, str(e).strip()[:300]))
        log("  %s failed: %s" % (proxy.name, e))
    finally:
        proxy.stop()
    return res


def router_round(proxy, args, quota, notes, rnd):
    res = {}
    try:
        proxy.start(prefix=quota.prefix())
        quota.add(proxy.all_pids())
        get_1k(proxy.port_ec)
        res.update(measure_throughput(proxy, 1, prefix="rt"))
        res.update(measure_handshakes(proxy, "ec", args.seconds))
        res.update(measure_handshakes(proxy, "rsa", args.seconds))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        notes.append("router round %d, %s: %s" % (rnd, proxy.name, str(e).strip()[:300]))
        log("  %s failed: %s" % (proxy.name, e))
    finally:
        proxy.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camtls", action="append", default=[],
                    help="camtls binary; repeatable, the first that exists is used")
    ap.add_argument("--dist", default="dist", help="folder of release binaries to list")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="length of each wrk/s_time run")
    ap.add_argument("--downloads", type=int, default=3, help="100 MiB downloads per round")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--no-router", action="store_true", help="skip the CPU-quota runs")
    ap.add_argument("--out", default="docs/performance.md")
    ap.add_argument("--profile", metavar="DIR",
                    help="instead of the comparison: profile the proxies (perf, strace) and "
                         "camtls's memory map into DIR; give it an unstripped camtls")
    args = ap.parse_args()
    args.proxies = args.proxies.split(",")
    unknown = [p for p in args.proxies if p not in PROXIES]
    if unknown:
        sys.exit("bench: unknown proxies %s (known: %s)" % (unknown, ", ".join(PROXIES)))
    if os.cpu_count() < 2:
        sys.exit("bench: needs 2 cores (proxy on one, backend and clients on the other)")
    for tool in ["nginx", "wrk", "curl", "openssl", "taskset"] + \
            [PEER_COMMANDS[p] for p in args.proxies if p in PEER_COMMANDS]:
        if not shutil.which(tool):
            sys.exit("bench: %s is missing (make bench installs it)" % tool)
    started = time.monotonic()
    # This script and every client it starts run on the load core.
    os.sched_setaffinity(0, {LOAD_CORE})
    camtls_bin = next((os.path.abspath(b) for b in args.camtls if os.path.isfile(b)), None)
    if "camtls" in args.proxies and not camtls_bin:
        sys.exit("bench: no camtls binary among %s" % args.camtls)

    wd = tempfile.mkdtemp(prefix="camtls-bench-")
    os.chmod(wd, 0o755)  # nginx workers run as an unprivileged user
    notes, backend, quota = [], None, None
    try:
        info = machine()
        if camtls_bin:
            version = first_line([camtls_bin, "--version"])
            info["camtls binary"] = "%s (%s, %s, %d bytes)" % (
                shown_path(camtls_bin), version,
                "static" if is_static(camtls_bin) else "dynamic", os.path.getsize(camtls_bin))
        if args.profile:
            certs = make_certs(wd)
            backend = start_backend(wd, free_port())
            chosen = [make_proxy(n, wd, certs, backend.port, camtls_bin) for n in args.proxies]
            profile(args, chosen, args.profile)
            return
        log("bench: single-core limits (openssl speed)")
        limits = openssl_speed(2)
        certs = make_certs(wd)
        backend = start_backend(wd, free_port())
        proxies = [make_proxy(n, wd, certs, backend.port, camtls_bin) for n in args.proxies]
        tls = {}
        for p in proxies:
            try:
                p.start()
                tls[p.name] = tls_params(p.port_ec)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                tls[p.name] = "did not start"
                notes.append("%s: %s" % (p.name, e))
            finally:
                p.stop()
        rounds = []
        for rnd in range(1, args.rounds + 1):
            order = proxies[rnd - 1:] + proxies[:rnd - 1]
            results = {}
            for p in order:
                log("bench: round %d/%d, %s" % (rnd, args.rounds, p.name))
                results[p.name] = one_round(p, args, notes, rnd)
            rounds.append(results)
        router_rounds = []
        if args.no_router:
            quota_text = "skipped (--no-router)"
        else:
            quota = Quota(ROUTER_QUOTA)
            quota_text = quota.mode or "no CPU quota available: " + quota.reason
            if quota.mode:
                limited = [p for p in proxies if p.name in ("camtls", "nginx")]
                for rnd in range(1, args.rounds + 1):
                    order = limited[(rnd - 1) % len(limited):] + limited[:(rnd - 1) % len(limited)]
                    results = {}
                    for p in order:
                        log("bench: router-class round %d/%d, %s" % (rnd, args.rounds, p.name))
                        results[p.name] = router_round(p, args, quota, notes, rnd)
                    router_rounds.append(results)
        sizes = []
        if os.path.isdir(args.dist):
            for f in sorted(os.listdir(args.dist)):
                path = os.path.join(args.dist, f)
                if f.startswith("camtls-") and is_elf(path):
                    sizes.append([path, os.path.getsize(path), "static" if is_static(path) else "?"])
        if not sizes:
            sizes.append(["(no %s/; run make release)" % args.dist, "", ""])
        for path in [camtls_bin] + [shutil.which(PEER_COMMANDS[p]) for p in args.proxies
                                    if p in PEER_COMMANDS]:
            if path and os.path.isfile(path) and not any(s[0] == shown_path(path) for s in sizes):
                sizes.append([shown_path(path),
                              os.path.getsize(path),
                              "static" if is_static(path) else "dynamic (+ shared libssl, libcrypto)"])
        bin_sizes = {p.name: os.path.getsize(p.binary()) for p in proxies if p.binary()}
        body = report(args, info, limits, rounds, router_rounds, quota_text, notes, sizes,
                      bin_sizes, tls, time.monotonic() - started)
    finally:
        if backend:
            backend.stop()
        if quota:
            quota.close()
        shutil.rmtree(wd, ignore_errors=True)
    print(body)
    write_doc(args.out, body)
    log("bench: wrote %s" % args.out)


if __name__ == "__main__":
    main()
