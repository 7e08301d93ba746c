#!/usr/bin/env python3
"""make soak, make test-soak, make soak-memory: camtls under attack and under
steady load, for minutes, with every figure taken from outside the process.

Everything runs on this machine and talks to loopback only (127.0.0.0/8):
camtls on 127.0.0.1 in front of two sample cameras (tests/sample-camera,
10 frames/s), clients that bind their source address so camtls sees distinct
peers:

  127.0.0.2        the attacker (one address)
  127.0.0.3, .10-.29  new viewers: one TLS connection and one snapshot each
  127.0.0.4        MJPEG streams opened at the start and read to the end
  127.0.0.5        a keep-alive viewer, one request a second on one connection
  127.0.0.6        MJPEG streams through the backend that is killed
  127.0.1.1-       the flood, a few connections from each of many addresses

Phases, each measured on its own (the streams and the keep-alive viewer run
through all of the first five):

  baseline   nothing but the viewers
  attack     from one address: ClientHellos sent 1 byte per 5 s, request heads
             sent 1 byte per second over TLS, and silent connections; every one
             reconnects when camtls closes it
  flood      the same kinds of connection from many addresses, over the global
             connection limit
  backend    the second camera killed (SIGKILL) and restarted every 5 s
  sighup     SIGHUP every 2 s, alternating two certificates, with a broken pair
             (a certificate that does not match its key) now and then
  nofile     a second camtls started under `prlimit --nofile=64` with the
             default limits, flooded past the connection limit it can hold

Per phase: new-viewer and legit success rates, the viewers' p99 latency, the
longest gap between MJPEG frames, camtls's RSS, descriptors and threads (from
/proc), the connections it holds per peer address (/proc/net/tcp), and its
log lines. A missed target ends with a non-zero exit status and says which.

  --short          about 2 minutes (make test-soak)
  (default)        a few minutes per phase; --out writes docs/security.md
  --memory SECONDS steady load with RSS sampled every minute, then at rest,
                   after the attack mix, and after each of 6 floods
                   (make soak-memory)

Standard library only. Every loop is bounded in count or time, and a
watchdog ends the run if it overstays its own estimate.
"""

import argparse
import errno
import hashlib
import heapq
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CAMERA = os.path.join(ROOT, "tests", "sample-camera", "camera.py")

HOST = "127.0.0.1"
ATTACKER = "127.0.0.2"
STREAMS_FROM = "127.0.0.4"
KEEPALIVE_FROM = "127.0.0.5"
FLAKY_STREAMS_FROM = "127.0.0.6"
RESUMERS_FROM = ("127.0.0.7", "127.0.0.8")
VIEWERS_FROM = ["127.0.0.3"] + ["127.0.0.%d" % i for i in range(10, 30)]
FLOOD_NET = "127.0.1.%d"

FPS = 10.0
BOUNDARY = b"--camframe"  # the sample camera's multipart boundary
VIEWER_TIMEOUT = 10.0
VIEWER_PATH = b"/snapshot.jpg"
SLOW_HEAD = (b"GET /snapshot.jpg HTTP/1.1\r\nHost: camera\r\nUser-Agent: slow\r\n"
             b"Accept: */*\r\n\r\n")
NOFILE = 64
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

# Targets.
GAP_LIMIT = 2.0            # longest MJPEG frame gap, s, at 10 frames/s
VIEWERS_UNDER_ATTACK = 0.95
ACCEPT_ERRORS_PER_PHASE = 3
STREAM_END_AFTER_KILL = 5.0
LEAK_SLOPE_KIB_MIN = 4.0   # second-half RSS growth that counts as a leak
FLOOD_ROUNDS = 6
FLOOD_SLOPE_KIB = 128      # anonymous RSS at rest, growth per flood round (least squares)

# Lines in camtls's log (stderr: "LEVEL [module] message").
ACCEPT_ERROR = re.compile(r"\baccepting on\b")
# What camtls says at start when the open-file limit cannot hold its
# connection limit (a failed system call's "Too many open files" is not it).
NOFILE_LINE = re.compile(r"open-file limit|RLIMIT_NOFILE|descriptors", re.I)
RELOADED = "SIGHUP: certificate reloaded"
RELOAD_REFUSED = "still serving the previous certificate"

SHORT = dict(name="short", max_connections=64, baseline=10, phase=15, warmup=3,
             attack=(60, 30, 12), flood=(16, 6), nofile_flood=(16, 5),
             viewer_rate=4.0, streams=4, settle=2.0)
FULL = dict(name="full", max_connections=None, baseline=120, phase=180, warmup=5,
            attack=(100, 50, 20), flood=(40, 6), nofile_flood=(16, 5),
            viewer_rate=4.0, streams=4, settle=3.0)

BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
MEM_BEGIN, MEM_END = "<!-- soak-memory:begin -->", "<!-- soak-memory:end -->"

_children = []          # every process started, for the cleanup and the watchdog
_children_lock = threading.Lock()


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


def now():
    return time.monotonic()


def loopback(addr):
    """The address, if it is in 127.0.0.0/8; anything else is refused."""
    if not addr.startswith("127."):
        raise ValueError("%s is not a loopback address; the soak talks to 127.0.0.0/8 only" % addr)
    return addr


def tcp_socket(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # The port is picked at connect time, for the whole 4-tuple: many
        # short connections from one source address do not run out of ports.
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    except OSError:
        pass
    s.bind((loopback(src), 0))
    return s


def client_context(tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def short_error(e):
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(e)) or type(e).__name__
    return ("%s: %s" % (type(e).__name__, text))[:90]


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(-(-q * len(values) // 1)) - 1))
    return values[k]


# ---------------------------------------------------------------------------
# HTTP over a socket, with one deadline for the whole exchange

def recv(sock, deadline):
    left = deadline - now()
    if left <= 0:
        raise TimeoutError("no answer within the deadline")
    sock.settimeout(left)
    return sock.recv(65536)


def read_response(sock, deadline, leftover=b""):
    """(status, headers, body, bytes after it) of one response; the body by
    Content-Length, or to the end of the connection without one."""
    buf = leftover
    while b"\r\n\r\n" not in buf:
        chunk = recv(sock, deadline)
        if not chunk:
            raise EOFError("connection closed before the response head")
        buf += chunk
        if len(buf) > 65536:
            raise ValueError("response head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError("bad status line %r" % lines[0][:60])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is None:
        while True:
            chunk = recv(sock, deadline)
            if not chunk:
                break
            rest += chunk
        return int(parts[1]), headers, rest, b""
    length = int(length)
    while len(rest) < length:
        chunk = recv(sock, deadline)
        if not chunk:
            raise EOFError("body cut short at %d of %d bytes" % (len(rest), length))
        rest += chunk
    return int(parts[1]), headers, rest[:length], rest[length:]


def request(path, keep_alive=False):
    return b"GET %s HTTP/1.1\r\nHost: camera\r\nConnection: %s\r\n\r\n" % (
        path, b"keep-alive" if keep_alive else b"close")


def tls_connect(ctx, src, port, deadline, session=None):
    raw = tcp_socket(src)
    try:
        raw.settimeout(max(0.05, deadline - now()))
        raw.connect((HOST, port))
        s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False,
                            session=session)
    except BaseException:
        raw.close()
        raise
    try:
        s.settimeout(max(0.05, deadline - now()))
        s.do_handshake()
    except BaseException:
        s.close()
        raise
    return s


# ---------------------------------------------------------------------------
# Processes

def start_process(name, cmd, logpath=None):
    out = open(logpath, "ab", buffering=0) if logpath else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True)
    if logpath:
        out.close()
    proc.soak_name = name
    with _children_lock:
        _children.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=15.0):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    return proc.returncode


def kill_children():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def wait_port(port, proc, timeout=15.0):
    end = now() + timeout
    while now() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %s" % (proc.soak_name, proc.returncode))
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s: port %d not open after %.0f s" % (proc.soak_name, port, timeout))


class Camera:
    """The sample camera on one port; kill() and start() again at will."""

    def __init__(self, name, port, wd):
        self.name, self.port, self.wd = name, port, wd
        self.proc = None

    def start(self):
        self.proc = start_process(self.name, [sys.executable, CAMERA, "--listen",
                                              "%s:%d" % (HOST, self.port), "--fps", str(FPS)],
                                  os.path.join(self.wd, self.name + ".log"))
        wait_port(self.port, self.proc)

    def kill(self):
        stop_process(self.proc, signal.SIGKILL)

    def stop(self):
        if self.proc:
            stop_process(self.proc)


class Camtls:
    """One camtls process, its stderr in a file read phase by phase."""

    def __init__(self, name, binary, wd, routes, cert, key, extra=(), prefix=()):
        self.name = name
        self.logpath = os.path.join(wd, name + ".log")
        self.routes = routes
        cmd = list(prefix) + [binary]
        for listen, backend in routes:
            cmd += ["--route", "%s:%d=%s:%d" % (HOST, listen, HOST, backend)]
        cmd += ["--cert", cert, "--key", key] + list(extra)
        self.cmd = cmd
        self.proc = start_process(name, cmd, self.logpath)
        self.pid = self.proc.pid
        for listen, _ in routes:
            wait_port(listen, self.proc)

    def alive(self):
        return self.proc.poll() is None

    def log_offset(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def log_lines(self, start=0, end=None):
        with open(self.logpath, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(max(0, end - start))
        return data.decode("utf-8", "replace").splitlines()

    def stop(self):
        return stop_process(self.proc)


def camtls_features(binary):
    """What this camtls build offers, from its --help."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    text = out.stdout + out.stderr
    features = {"per_address": "--max-per-address" in text, "per_address_cap": None}
    # The option's own entry: from its line to the next option's.
    m = re.search(r"^\s*--max-per-address\b((?:(?!^\s*--).)*)", text, re.S | re.M)
    m = m and re.search(r"\(default:?\s*(\d+)", m.group(1))
    if features["per_address"]:
        features["per_address_cap"] = int(m.group(1)) if m else 32
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    features["version"] = (version.stdout + version.stderr).strip()
    with open(binary, "rb") as f:
        features["sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
    features["size"] = os.path.getsize(binary)
    return features


def gen_cert(binary, wd, name):
    cert, key = os.path.join(wd, name + ".pem"), os.path.join(wd, name + ".key")
    subprocess.run([binary, "gen-cert", "--cert", cert, "--key", key, "--name", "localhost",
                    "--name", HOST], check=True, capture_output=True, timeout=30)
    with open(cert, "rb") as f:
        pem = f.read()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    return cert, key, hashlib.sha256(der).hexdigest()


def replace_file(path, source):
    tmp = path + ".tmp"
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# /proc: what camtls holds

def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))
    return rss, threads


def proc_memory(pid):
    """RSS and its two parts, KiB: anonymous (heap, stacks: what a leak
    grows) and file-backed (the binary's own pages, at most its size)."""
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    return tuple(int(re.search(r"%s:\s+(\d+)" % k, text).group(1))
                 for k in ("VmRSS", "RssAnon", "RssFile"))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def socket_inodes(pid):
    inodes, count = set(), 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        count += 1
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return count, inodes


def hex_ip(text):
    return socket.inet_ntoa(struct.pack("<I", int(text, 16)))


def peers_by_address(inodes, listen_ports):
    """Client connections camtls holds, by peer address (IPv4 loopback).
    Each socket counted once: the kernel writes /proc/net/tcp in chunks, and
    a table that changes between them can list a socket twice."""
    seen = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) < 10 or fields[9] not in inodes or fields[3] == "0A":
                continue
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) not in listen_ports:
                continue
            seen[fields[9]] = hex_ip(remote.split(":")[0])
    counts = {}
    for ip in seen.values():
        counts[ip] = counts.get(ip, 0) + 1
    return counts


class Sampler(threading.Thread):
    """Samples each watched camtls every half second: RSS, descriptors,
    threads; every second also the connections it holds by peer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.watched = {}       # name -> Camtls
        self.samples = []       # dicts
        self.exits = []         # (time, name, status)
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def watch(self, camtls):
        with self.lock:
            self.watched[camtls.name] = camtls

    def unwatch(self, name):
        with self.lock:
            self.watched.pop(name, None)

    def run(self):
        tick = 0
        while not self.stop_flag.wait(0.5):
            tick += 1
            with self.lock:
                watched = list(self.watched.values())
            for c in watched:
                if not c.alive():
                    self.exits.append((now(), c.name, c.proc.returncode))
                    self.unwatch(c.name)
                    continue
                try:
                    rss, threads = proc_status(c.pid)
                    fds, inodes = socket_inodes(c.pid)
                    sample = {"t": now(), "name": c.name, "rss": rss, "fds": fds,
                              "threads": threads, "cpu": cpu_seconds(c.pid)}
                    if tick % 2 == 0:
                        sample["peers"] = peers_by_address(inodes, {p for p, _ in c.routes})
                    self.samples.append(sample)
                except (OSError, AttributeError, ValueError):
                    pass

    def window(self, name, a, b):
        return [s for s in self.samples if s["name"] == name and a <= s["t"] <= b]


# ---------------------------------------------------------------------------
# Legit clients

class Viewers:
    """New viewers at a fixed rate, whatever camtls does: each a new TLS
    connection from the next viewer address, one GET, the whole answer read
    within VIEWER_TIMEOUT. Each runs in its own thread, so a slow answer does
    not lower the rate offered."""

    MAX_OUTSTANDING = 64

    def __init__(self, port, rate, label="viewers", path=VIEWER_PATH, sources=VIEWERS_FROM,
                 expect_jpeg=True):
        self.port, self.rate, self.label, self.path = port, rate, label, path
        self.sources, self.expect_jpeg = sources, expect_jpeg
        self.ctx = client_context()
        self.results, self.threads = [], []
        self.stop_flag = threading.Event()
        self.launcher = threading.Thread(target=self._launch, daemon=True)

    def start(self):
        self.launcher.start()
        return self

    def _launch(self):
        n, nxt = 0, now()
        while not self.stop_flag.is_set():
            self.threads = [t for t in self.threads if t.is_alive()]
            if len(self.threads) < self.MAX_OUTSTANDING:
                src = self.sources[n % len(self.sources)]
                t = threading.Thread(target=self._attempt, args=(src,), daemon=True)
                t.start()
                self.threads.append(t)
            else:
                self.results.append({"t": now(), "end": now(), "ok": False, "answered": False,
                                     "status": None, "error": "harness: too many outstanding",
                                     "fp": None, "hs": None, "latency": None, "src": ""})
            n += 1
            nxt += 1.0 / self.rate
            self.stop_flag.wait(max(0.0, nxt - now()))

    def _attempt(self, src):
        r = {"t": now(), "src": src, "ok": False, "answered": False, "status": None,
             "error": "", "fp": None, "hs": None}
        deadline = r["t"] + VIEWER_TIMEOUT
        s = None
        try:
            s = tls_connect(self.ctx, src, self.port, deadline)
            r["hs"] = now()
            r["fp"] = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
            s.sendall(request(self.path))
            status, _, body, _ = read_response(s, deadline)
            r["status"], r["answered"] = status, True
            r["ok"] = status == 200 and (not self.expect_jpeg or body[:2] == b"\xff\xd8")
            if not r["ok"]:
                r["error"] = "status %d" % status
        except (OSError, ssl.SSLError, EOFError, ValueError) as e:
            r["error"] = short_error(e)
        finally:
            if s is not None:
                s.close()
        r["end"] = now()
        r["latency"] = r["end"] - r["t"]
        self.results.append(r)

    def stop(self):
        self.stop_flag.set()
        self.launcher.join(5)
        for t in list(self.threads):
            t.join(VIEWER_TIMEOUT + 5)
        return self.results


class KeepAlive(threading.Thread):
    """One viewer on one keep-alive connection, a request every `every` s;
    a failed request counts, and the next one reconnects."""

    def __init__(self, port, src=KEEPALIVE_FROM, path=VIEWER_PATH, every=1.0):
        super().__init__(daemon=True)
        self.port, self.src, self.path, self.every = port, src, path, every
        self.ctx = client_context()
        self.results = []
        self.connects = 0
        self.stop_flag = threading.Event()

    def run(self):
        s, leftover = None, b""
        while not self.stop_flag.is_set():
            t = now()
            deadline = t + VIEWER_TIMEOUT
            r = {"t": t, "ok": False, "error": ""}
            try:
                if s is None:
                    s, leftover = tls_connect(self.ctx, self.src, self.port, deadline), b""
                    self.connects += 1
                s.sendall(request(self.path, keep_alive=True))
                status, headers, _, leftover = read_response(s, deadline, leftover)
                r["ok"] = status == 200
                if not r["ok"]:
                    r["error"] = "status %d" % status
                if headers.get("connection", "").lower() == "close":
                    s.close()
                    s = None
            except (OSError, ssl.SSLError, EOFError, ValueError) as e:
                r["error"] = short_error(e)
                if s is not None:
                    s.close()
                s = None
            r["latency"] = now() - t
            self.results.append(r)
            self.stop_flag.wait(max(0.0, t + self.every - now()))
        if s is not None:
            s.close()

    def stop(self):
        self.stop_flag.set()
        self.join(VIEWER_TIMEOUT + 5)


class Stream(threading.Thread):
    """An MJPEG viewer: the time of every frame boundary, and every time the
    stream ended or stalled for 5 s (then it reconnects)."""

    def __init__(self, port, src=STREAMS_FROM, label="stream"):
        super().__init__(daemon=True)
        self.port, self.src, self.label = port, src, label
        self.ctx = client_context()
        self.frames, self.breaks, self.connects = [], [], []
        self.stop_flag = threading.Event()
        self.sock = None

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self._one()
            except (OSError, ssl.SSLError, EOFError, ValueError) as e:
                if not self.stop_flag.is_set():
                    self.breaks.append((now(), short_error(e)))
            finally:
                if self.sock is not None:
                    self.sock.close()
                    self.sock = None
            self.stop_flag.wait(0.5)

    def _one(self):
        deadline = now() + VIEWER_TIMEOUT
        self.sock = s = tls_connect(self.ctx, self.src, self.port, deadline)
        s.sendall(b"GET /video.mjpg HTTP/1.1\r\nHost: camera\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = recv(s, deadline)
            if not chunk:
                raise EOFError("closed before the response head")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            raise ValueError("stream answered %r" % head.split(b"\r\n", 1)[0][:40])
        self.connects.append(now())
        tail = b""
        data = rest
        s.settimeout(5.0)
        while not self.stop_flag.is_set():
            if data:
                scan = tail + data
                t = now()
                self.frames.extend([t] * scan.count(BOUNDARY))
                tail = scan[-(len(BOUNDARY) - 1):]
            try:
                data = s.recv(65536)
            except socket.timeout:
                raise TimeoutError("no data for 5 s")
            if not data:
                raise EOFError("stream ended")

    def stop(self):
        self.stop_flag.set()
        s = self.sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(10)

    def longest_gap(self, a, b):
        """Longest time without a frame within [a, b]."""
        frames = self.frames
        last = None
        gap = 0.0
        for t in frames:
            if t < a:
                last = t
                continue
            if t > b:
                break
            gap = max(gap, t - (last if last is not None else a))
            last = t
        return max(gap, b - (last if last is not None else a))


class Resumer(threading.Thread):
    """A viewer that reconnects every `every` s and resumes its TLS session."""

    def __init__(self, port, src, tls12, every=1.0):
        super().__init__(daemon=True)
        self.port, self.src, self.every = port, src, every
        self.ctx = client_context(tls12)
        self.session = None
        self.ok = self.failed = self.resumed = 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            t = now()
            s = None
            try:
                s = tls_connect(self.ctx, self.src, self.port, t + VIEWER_TIMEOUT, self.session)
                s.sendall(request(VIEWER_PATH))
                status, _, _, _ = read_response(s, t + VIEWER_TIMEOUT)
                if status == 200:
                    self.ok += 1
                    self.resumed += 1 if s.session_reused else 0
                else:
                    self.failed += 1
                self.session = s.session
            except (OSError, ssl.SSLError, EOFError, ValueError):
                self.failed += 1
            finally:
                if s is not None:
                    s.close()
            self.stop_flag.wait(max(0.0, t + self.every - now()))

    def stop(self):
        self.stop_flag.set()
        self.join(VIEWER_TIMEOUT + 5)


# ---------------------------------------------------------------------------
# Attackers: many connections on one thread

class Slot:
    __slots__ = ("kind", "src", "port", "interval", "sock", "gen", "state", "tls", "inbio",
                 "outbio", "out", "drip", "pos", "t_open", "got", "handshaken")

    def __init__(self, kind, src, port, interval):
        self.kind, self.src, self.port, self.interval = kind, loopback(src), port, interval
        self.sock, self.gen, self.state, self.tls = None, 0, "closed", None
        self.inbio = self.outbio = None
        self.out, self.drip, self.pos, self.t_open = b"", b"", 0, 0.0
        self.got = self.handshaken = False


class Attack(threading.Thread):
    """Connections that hold a slot of camtls's without finishing a request:
      hello     a real ClientHello, one byte every `interval` s
      slowhead  a finished TLS handshake, then a request head one byte every
                `interval` s
      silent    a TCP connection that sends nothing
    Each one reconnects about a second after camtls closes it (a bounded rate,
    so the harness does not compete for the CPU it measures)."""

    RECONNECT = 1.0

    def __init__(self):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.heap, self.seq = [], 0
        self.slots = []
        self.stop_flag = threading.Event()
        self.ctx = client_context()
        self.hellos = [self._client_hello() for _ in range(4)]
        self.stats = dict.fromkeys(("connects", "established", "connect_failed", "closed",
                                    "closed_at_once", "handshakes", "answered_408",
                                    "tls_errors"), 0)

    def _client_hello(self):
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(inb, outb, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outb.read()

    def add(self, kind, src, port, count, interval=None):
        base = now()
        for _ in range(count):
            slot = Slot(kind, src, port, interval)
            self.slots.append(slot)
            self._at(base + 0.004 * len(self.slots), self._open, slot, None)
        return self

    def _at(self, t, fn, slot, gen):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, slot, gen))

    def run(self):
        while not self.stop_flag.is_set():
            t = now()
            while self.heap and self.heap[0][0] <= t:
                _, _, fn, slot, gen = heapq.heappop(self.heap)
                if gen is None or gen == slot.gen:
                    fn(slot)
            wait = 0.2 if not self.heap else min(0.2, max(0.0, self.heap[0][0] - now()))
            for key, mask in self.sel.select(wait):
                slot = key.data
                if slot.sock is not key.fileobj:
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._writable(slot)
                if mask & selectors.EVENT_READ and slot.sock is key.fileobj:
                    self._readable(slot)
        for slot in self.slots:
            self._close(slot, reconnect=False)
        self.sel.close()

    def _open(self, slot):
        slot.gen += 1
        s = None
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            except OSError:
                pass
            s.bind((slot.src, 0))
            err = s.connect_ex((HOST, slot.port))
        except OSError:
            err = -1
        self.stats["connects"] += 1
        if err not in (0, errno.EINPROGRESS):
            self.stats["connect_failed"] += 1
            if s is not None:
                s.close()
            self._at(now() + self.RECONNECT, self._open, slot, None)
            return
        slot.sock, slot.state, slot.t_open = s, "connecting", now()
        slot.out, slot.tls, slot.pos, slot.got, slot.handshaken = b"", None, 0, False, False
        self.sel.register(s, selectors.EVENT_WRITE, slot)

    def _events(self, slot):
        if slot.sock is not None:
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if slot.out else 0)
            self.sel.modify(slot.sock, ev, slot)

    def _writable(self, slot):
        if slot.state == "connecting":
            if slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.stats["connect_failed"] += 1
                self._close(slot)
                return
            slot.state = "open"
            self.stats["established"] += 1
            self._events(slot)
            if slot.kind == "hello":
                slot.drip = random.choice(self.hellos)
                self._at(now(), self._drip, slot, slot.gen)
            elif slot.kind == "slowhead":
                slot.inbio, slot.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
                slot.tls = self.ctx.wrap_bio(slot.inbio, slot.outbio, server_hostname="localhost")
                self._tls(slot)
        else:
            self._flush(slot)

    def _readable(self, slot):
        try:
            data = slot.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._close(slot)
            return
        if not data:
            self._close(slot)
            return
        slot.got = True
        if slot.tls is not None:
            slot.inbio.write(data)
            self._tls(slot)

    def _tls(self, slot):
        try:
            if not slot.handshaken:
                slot.tls.do_handshake()
                slot.handshaken = True
                self.stats["handshakes"] += 1
                slot.drip, slot.pos = SLOW_HEAD, 0
                self._at(now(), self._drip, slot, slot.gen)
            while True:
                data = slot.tls.read(65536)
                if not data:
                    self._close(slot)
                    return
                if data.startswith(b"HTTP/1.1 408"):
                    self.stats["answered_408"] += 1
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self._close(slot)
            return
        except ssl.SSLError:
            self.stats["tls_errors"] += 1
            self._close(slot)
            return
        self._send(slot, slot.outbio.read())

    def _send(self, slot, data):
        if slot.sock is None:
            return
        slot.out += data
        self._flush(slot)

    def _flush(self, slot):
        if slot.out:
            try:
                n = slot.sock.send(slot.out)
                slot.out = slot.out[n:]
            except BlockingIOError:
                pass
            except OSError:
                self._close(slot)
                return
        self._events(slot)

    def _drip(self, slot):
        if slot.state != "open" or slot.pos >= len(slot.drip):
            return
        byte = slot.drip[slot.pos:slot.pos + 1]
        slot.pos += 1
        if slot.tls is not None:
            try:
                slot.tls.write(byte)
            except ssl.SSLError:
                self._close(slot)
                return
            self._send(slot, slot.outbio.read())
        else:
            self._send(slot, byte)
        if slot.sock is not None:
            self._at(now() + slot.interval, self._drip, slot, slot.gen)

    def _close(self, slot, reconnect=True):
        if slot.sock is None:
            return
        try:
            self.sel.unregister(slot.sock)
        except (KeyError, ValueError):
            pass
        slot.sock.close()
        slot.sock, slot.tls = None, None
        if slot.state == "open":
            self.stats["closed"] += 1
            if now() - slot.t_open < 1.0 and not slot.got:
                self.stats["closed_at_once"] += 1
        slot.state = "closed"
        slot.gen += 1
        if reconnect and not self.stop_flag.is_set():
            self._at(now() + self.RECONNECT * random.uniform(1.0, 1.5), self._open, slot, None)

    def stop(self):
        self.stop_flag.set()
        self.join(10)
        return dict(self.stats)


def attack_mix(port, counts):
    hello, slowhead, silent = counts
    a = Attack()
    a.add("hello", ATTACKER, port, hello, 5.0)
    a.add("slowhead", ATTACKER, port, slowhead, 1.0)
    a.add("silent", ATTACKER, port, silent)
    return a


def flood(port, spec, net=FLOOD_NET):
    addresses, per_address = spec
    a = Attack()
    kinds = (("silent", None), ("hello", 5.0), ("slowhead", 1.0))
    for i in range(addresses):
        for j in range(per_address):
            kind, interval = kinds[(i + j) % 3]
            a.add(kind, net % (i + 1), port, 1, interval)
    return a


# ---------------------------------------------------------------------------
# Phases

class Phase:
    def __init__(self, name, what):
        self.name, self.what = name, what
        self.t0 = self.m0 = self.m1 = self.t1 = 0.0
        self.viewers = []        # results of new viewers
        self.flaky = []          # results of viewers through the killed backend
        self.keepalive = []
        self.gap = None
        self.breaks = 0
        self.stats = {}
        self.log = []
        self.samples = []
        self.notes = []
        self.targets = []        # (target, measured, met)
        self.extra_log_budget = 0

    def target(self, label, measured, met):
        self.targets.append((label, measured, bool(met)))


def rate(results, key="ok"):
    if not results:
        return None
    return sum(1 for r in results if r[key]) / len(results)


def fmt_rate(results, key="ok"):
    if not results:
        return "n/a"
    ok = sum(1 for r in results if r[key])
    return "%.1f%% (%d/%d)" % (100.0 * ok / len(results), ok, len(results))


def failure_summary(results, key="ok"):
    errors = {}
    for r in results:
        if not r[key]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    return ", ".join("%s x%d" % (e, n) for e, n in sorted(errors.items(), key=lambda kv: -kv[1])[:3])


class Soak:
    def __init__(self, args, form):
        self.args, self.form = args, form
        self.binary = os.path.abspath(args.camtls)
        self.features = camtls_features(self.binary)
        self.wd = tempfile.mkdtemp(prefix="camtls-soak-")
        self.sampler = Sampler()
        self.phases = []
        self.main = None
        self.rest = None
        self.stopped = None

    # -- setup

    def start_main(self):
        wd = self.wd
        self.pair_a = gen_cert(self.binary, wd, "a")
        self.pair_b = gen_cert(self.binary, wd, "b")
        self.cert, self.key = os.path.join(wd, "cert.pem"), os.path.join(wd, "key.pem")
        replace_file(self.cert, self.pair_a[0])
        replace_file(self.key, self.pair_a[1])
        self.cam = Camera("camera", free_port(), wd)
        self.cam.start()
        self.flaky_cam = Camera("camera-flaky", free_port(), wd)
        self.flaky_cam.start()
        self.port, self.flaky_port = free_port(), free_port()
        extra = []
        if self.form["max_connections"]:
            extra = ["--max-connections", str(self.form["max_connections"])]
        self.max_connections = self.form["max_connections"] or 128
        self.main = Camtls("camtls", self.binary, wd,
                           [(self.port, self.cam.port), (self.flaky_port, self.flaky_cam.port)],
                           self.cert, self.key, extra)
        self.sampler.watch(self.main)
        self.sampler.start()
        self.streams = [Stream(self.port) for _ in range(self.form["streams"])]
        for s in self.streams:
            s.start()
        self.keepalive = KeepAlive(self.port)
        self.keepalive.start()
        end = now() + 15
        while now() < end and not all(len(s.frames) >= 3 for s in self.streams):
            time.sleep(0.1)
        if not all(s.frames for s in self.streams):
            raise RuntimeError("the MJPEG streams did not start: %s"
                               % [s.breaks[-1:] for s in self.streams])

    # -- one phase

    def run_phase(self, phase, seconds, load=None, viewers=(), during=None, camtls=None,
                  streams=None, keepalive=None):
        """load: started at once, stopped at the end; viewers: started after the
        warm-up; during(phase, end): runs in the foreground until `end`."""
        camtls = camtls or self.main
        streams = self.streams if streams is None else streams
        keepalive = self.keepalive if keepalive is None else keepalive
        log("phase %s: %s (%d s)" % (phase.name, phase.what, seconds))
        phase.t0 = now()
        log0 = camtls.log_offset()
        if load is not None:
            load.start()
        time.sleep(self.form["warmup"] if load is not None else 0.5)
        running = [v.start() for v in viewers]
        phase.m0 = now()
        end = phase.m0 + seconds
        if during is not None:
            during(phase, end)
        while now() < end:
            time.sleep(min(0.5, max(0.0, end - now())))
        phase.m1 = now()
        results = [v.stop() for v in running]
        if load is not None:
            phase.stats = load.stop()
        time.sleep(self.form["settle"])
        phase.t1 = now()
        phase.log = camtls.log_lines(log0, camtls.log_offset())
        phase.samples = self.sampler.window(camtls.name, phase.t0, phase.t1)
        for v, res in zip(running, results):
            (phase.flaky if v.label == "flaky" else phase.viewers).extend(res)
        if keepalive:
            phase.keepalive = [r for r in keepalive.results if phase.m0 <= r["t"] <= phase.m1]
        if streams:
            phase.gap = max(s.longest_gap(phase.t0, phase.t1) for s in streams)
            phase.breaks = sum(1 for s in streams for t, _ in s.breaks if phase.t0 <= t <= phase.t1)
        phase.camtls, phase.streams = camtls, streams
        self.phases.append(phase)
        log("phase %s: new viewers %s, longest frame gap %s, RSS max %s KiB" % (
            phase.name, fmt_rate(phase.viewers),
            "n/a" if phase.gap is None else "%.2f s" % phase.gap,
            max((s["rss"] for s in phase.samples), default="?")))
        return phase

    def common_targets(self, phase):
        """Every phase: camtls alive, few accept errors, a bounded log, and the
        open streams unbothered."""
        camtls, streams = phase.camtls, phase.streams
        alive = camtls.alive()
        phase.target("camtls still running", "running" if alive else
                     "exited with status %s" % camtls.proc.returncode, alive)
        accept_errors = [l for l in phase.log if ACCEPT_ERROR.search(l)]
        phase.target("accept-error warnings <= %d" % ACCEPT_ERRORS_PER_PHASE,
                     str(len(accept_errors)), len(accept_errors) <= ACCEPT_ERRORS_PER_PHASE)
        seconds = phase.t1 - phase.t0
        budget = int(12 + seconds / 5 + phase.extra_log_budget)
        phase.target("log lines <= %d (12 + 1 per 5 s + expected events)" % budget,
                     str(len(phase.log)), len(phase.log) <= budget)
        if streams:
            phase.target("open streams: longest frame gap < %.0f s, none broken" % GAP_LIMIT,
                         "%.2f s, %d broken" % (phase.gap, phase.breaks),
                         phase.gap < GAP_LIMIT and phase.breaks == 0)

    def viewer_target(self, phase, minimum, results=None, label="new viewers served"):
        results = phase.viewers if results is None else results
        r = rate(results)
        text = fmt_rate(results)
        fails = failure_summary(results)
        if fails:
            text += "; failures: " + fails
        phase.target("%s >= %g%%" % (label, minimum * 100), text, r is not None and r >= minimum)

    def held_max(self, phase, match):
        return max((sum(n for ip, n in s["peers"].items() if match(ip))
                    for s in phase.samples if "peers" in s), default=0)

    # -- the phases

    def baseline(self):
        p = Phase("baseline", "new viewers, the open streams and the keep-alive viewer only")
        self.run_phase(p, self.form["baseline"],
                       viewers=[Viewers(self.port, self.form["viewer_rate"])])
        self.common_targets(p)
        self.viewer_target(p, 1.0)
        legit = p.viewers + p.keepalive
        phase_ok = rate(legit)
        p.target("legit requests served = 100%", fmt_rate(legit), phase_ok == 1.0)

    def attack(self):
        hello, slowhead, silent = self.form["attack"]
        p = Phase("attack", "from %s: %d ClientHellos at 1 byte/5 s, %d TLS request heads at "
                  "1 byte/s, %d silent connections" % (ATTACKER, hello, slowhead, silent))
        self.run_phase(p, self.form["phase"], load=attack_mix(self.port, self.form["attack"]),
                       viewers=[Viewers(self.port, self.form["viewer_rate"])])
        self.common_targets(p)
        self.viewer_target(p, VIEWERS_UNDER_ATTACK)
        held = self.held_max(p, lambda ip: ip == ATTACKER)
        p.notes.append("connections from %s held by camtls: at most %d; attacker connects %d, "
                       "closed by camtls within 1 s %d, TLS handshakes %d, 408 answers %d"
                       % (ATTACKER, held, p.stats["connects"], p.stats["closed_at_once"],
                          p.stats["handshakes"], p.stats["answered_408"]))
        cap = self.features["per_address_cap"]
        if cap:
            p.target("connections held from one address <= %d" % cap, str(held), held <= cap)
        else:
            p.notes.append("this camtls has no --max-per-address")

    def flood(self):
        addresses, per = self.form["flood"]
        p = Phase("flood", "%d addresses x %d connections (silent, slow ClientHello, slow head), "
                  "over the limit of %d" % (addresses, per, self.max_connections))
        self.run_phase(p, self.form["phase"], load=flood(self.port, self.form["flood"]),
                       viewers=[Viewers(self.port, self.form["viewer_rate"])])
        self.common_targets(p)
        self.viewer_target(p, VIEWERS_UNDER_ATTACK)
        held = self.held_max(p, lambda ip: ip.startswith("127.0.1."))
        total = max((sum(s["peers"].values()) for s in p.samples if "peers" in s), default=0)
        p.notes.append("flood connections held by camtls: at most %d; all client connections "
                       "at most %d (limit %d); flood connects %d, closed within 1 s %d"
                       % (held, total, self.max_connections, p.stats["connects"],
                          p.stats["closed_at_once"]))
        # A newcomer is accepted a moment before the connection evicted for
        # it has closed: one over the limit, briefly, is by design.
        p.target("client connections held <= --max-connections + 1 (%d)" % self.max_connections,
                 str(total), total <= self.max_connections + 1)

    def backend(self):
        p = Phase("backend", "the second camera killed and restarted every 5 s; viewers on both "
                  "routes, 2 MJPEG streams through the killed one")
        kills = []
        flaky_streams = [Stream(self.flaky_port, FLAKY_STREAMS_FROM, "flaky") for _ in range(2)]

        def cycle(phase, end):
            for s in flaky_streams:
                s.start()
            while now() + 5.0 <= end:
                cycle_start = now()
                time.sleep(max(0.0, cycle_start + 3.5 - now()))
                kills.append(now())
                self.flaky_cam.kill()
                time.sleep(1.0)
                try:
                    self.flaky_cam.start()
                except RuntimeError as e:
                    phase.notes.append("camera restart: %s" % e)
                time.sleep(max(0.0, cycle_start + 5.0 - now()))

        per_second = self.form["viewer_rate"]
        self.run_phase(p, self.form["phase"], during=cycle,
                       viewers=[Viewers(self.port, per_second),
                                Viewers(self.flaky_port, per_second, label="flaky")])
        for s in flaky_streams:
            s.stop()
        # A failed request through the dead backend is logged (a warning with
        # its status), and so may be a stream that a kill ends: the log budget
        # allows a line for each.
        p.extra_log_budget = sum(1 for r in p.flaky if not r["ok"]) + \
            2 * sum(len(s.connects) + len(s.breaks) for s in flaky_streams)
        self.common_targets(p)
        self.viewer_target(p, VIEWERS_UNDER_ATTACK, label="new viewers served (steady route)")
        answered = rate(p.flaky, "answered")
        fails = failure_summary(p.flaky, "answered")
        p.target("viewers through the killed backend answered (200 or 5xx) >= 95%",
                 fmt_rate(p.flaky, "answered") + ("; failures: " + fails if fails else ""),
                 answered is not None and answered >= 0.95)
        statuses = {}
        for r in p.flaky:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        # For each kill, each flaky stream that was open then: how long until
        # camtls ended it.
        ends = []
        for k in kills:
            for s in flaky_streams:
                opened = max((c for c in s.connects if c < k), default=None)
                ended = max((t for t, _ in s.breaks if t < k), default=None)
                if opened is None or (ended is not None and ended > opened):
                    continue
                after = [t for t, _ in s.breaks if k <= t <= k + 10]
                ends.append(after[0] - k if after else float("inf"))
        worst = max(ends) if ends else None
        p.notes.append("%d kills; through the killed backend: 200 for %s; answers by status %s; "
                       "the MJPEG streams through it ended at worst %s after a kill"
                       % (len(kills), fmt_rate(p.flaky),
                          ", ".join("%s: %d" % kv for kv in sorted(statuses.items())),
                          "n/a" if worst is None else "%.2f s" % worst))
        p.target("a stream through a killed backend ends within %.0f s" % STREAM_END_AFTER_KILL,
                 "n/a" if worst is None else "%.2f s (%d endings)" % (worst, len(ends)),
                 worst is not None and worst <= STREAM_END_AFTER_KILL)

    def sighup(self):
        p = Phase("sighup", "SIGHUP every 2 s alternating two certificates; every 5th reload "
                  "with a certificate that does not match its key, then restored")
        events = []  # (time, fingerprint served after it, good)
        pairs = {"a": self.pair_a, "b": self.pair_b}

        def reloads(phase, end):
            # The files are written 1 s before each SIGHUP and left alone for
            # 1 s after it: camtls reads them on its own loop, a moment after
            # the signal.
            current, n = "a", 0
            next_at = now() + 2.0
            while next_at + 0.5 <= end:
                n += 1
                time.sleep(max(0.0, next_at - 1.0 - now()))
                other = "b" if current == "a" else "a"
                broken = n % 5 == 3
                if broken:
                    # The other pair's certificate with this pair's key.
                    replace_file(self.cert, pairs[other][0])
                else:
                    replace_file(self.cert, pairs[other][0])
                    replace_file(self.key, pairs[other][1])
                    current = other
                time.sleep(max(0.0, next_at - now()))
                os.kill(self.main.pid, signal.SIGHUP)
                events.append((now(), pairs[current][2], not broken))
                if broken:
                    # Restored: the next reload works again.
                    time.sleep(1.0)
                    replace_file(self.cert, pairs[current][0])
                next_at += 2.0
            time.sleep(max(0.0, end - now()))

        self.run_phase(p, self.form["phase"], during=reloads,
                       viewers=[Viewers(self.port, self.form["viewer_rate"])])
        good = sum(1 for e in events if e[2])
        broken = len(events) - good
        p.extra_log_budget = 3 * len(events)
        self.common_targets(p)
        self.viewer_target(p, VIEWERS_UNDER_ATTACK)
        reloaded = sum(1 for l in p.log if RELOADED in l)
        refused = sum(1 for l in p.log if RELOAD_REFUSED in l)
        p.target("reloads logged: %d done, %d refused" % (good, broken),
                 "%d done, %d refused" % (reloaded, refused),
                 reloaded == good and refused == broken and broken >= 1)
        # The certificate each viewer got must be the one in force: the pair
        # of the last reload that worked, for a viewer whose handshake started
        # 0.5 s after a SIGHUP and ended before the next.
        checked = wrong = 0
        start_fp = self.pair_a[2]
        for r in p.viewers:
            if r["fp"] is None or r["hs"] is None:
                continue
            before = [e for e in events if e[0] <= r["t"]]
            if any(r["t"] - 0.5 < e[0] <= r["hs"] for e in events):
                continue
            if before and r["t"] - before[-1][0] < 0.5:
                continue
            good_before = [e for e in before if e[2]]
            expected = good_before[-1][1] if good_before else start_fp
            checked += 1
            wrong += r["fp"] != expected
        p.notes.append("%d SIGHUPs (%d with the broken pair); %d viewers' certificates checked "
                       "against the pair in force" % (len(events), broken, checked))
        p.target("every viewer got the certificate in force", "%d wrong of %d" % (wrong, checked),
                 wrong == 0 and checked > 0)

    def at_rest(self):
        for s in self.streams:
            s.stop()
        self.keepalive.stop()
        time.sleep(10)
        try:
            rss, threads = proc_status(self.main.pid)
            fds, _ = socket_inodes(self.main.pid)
            self.rest = {"rss": rss, "fds": fds, "threads": threads}
        except OSError:
            self.rest = None
        code = self.main.stop()
        lines = self.main.log_lines()
        self.stopped = (code, bool(lines) and "stopped" in lines[-1])

    def nofile(self):
        addresses, per = self.form["nofile_flood"]
        p = Phase("nofile", "a new camtls under prlimit --nofile=%d, default limits; %d addresses x "
                  "%d connections, 2 MJPEG streams, new viewers" % (NOFILE, addresses, per))
        port = free_port()
        c = Camtls("camtls-nofile", self.binary, self.wd, [(port, self.cam.port)], self.cert,
                   self.key, prefix=["prlimit", "--nofile=%d" % NOFILE, "--"])
        self.sampler.watch(c)
        time.sleep(0.5)
        startup = c.log_lines()
        streams = [Stream(port) for _ in range(2)]
        for s in streams:
            s.start()
        time.sleep(2)
        try:
            self.run_phase(p, self.form["phase"], load=flood(port, (addresses, per), "127.0.2.%d"),
                           viewers=[Viewers(port, self.form["viewer_rate"])], camtls=c,
                           streams=streams, keepalive=False)
        finally:
            for s in streams:
                s.stop()
            self.sampler.unwatch(c.name)
        self.common_targets(p)
        self.viewer_target(p, VIEWERS_UNDER_ATTACK)
        lines = c.log_lines()
        said = [l for l in lines if NOFILE_LINE.search(l) and "os error" not in l]
        p.notes.append("at start camtls said: %s" % (" / ".join(s.strip() for s in said[:3])
                                                      or "nothing about descriptors"))
        p.target("the lowered limit logged once", "%d line(s)" % len(said), len(said) == 1)
        fds = max((s["fds"] for s in p.samples), default=0)
        p.target("descriptors <= %d" % NOFILE, str(fds), fds <= NOFILE)
        code = c.stop()
        p.target("stops cleanly on SIGTERM", "exit status %s" % code, code == 0)
        p.notes.append("%d log lines from start to stop, %d of them at start"
                       % (len(lines), len(startup)))

    # -- the run

    PHASES = ("baseline", "attack", "flood", "backend", "sighup", "nofile")

    def run(self):
        self.started = now()
        chosen = self.args.phases.split(",") if self.args.phases else self.PHASES
        self.start_main()
        for name in self.PHASES[:5]:
            if name in chosen:
                getattr(self, name)()
        self.at_rest()
        if "nofile" in chosen:
            self.nofile()
        self.elapsed = now() - self.started

    def cleanup(self):
        self.sampler.stop_flag.set()
        kill_children()
        if self.args.keep:
            log("kept %s" % self.wd)
        else:
            shutil.rmtree(self.wd, ignore_errors=True)

    # -- the report

    def report(self):
        out = []
        f = self.features
        out.append("Run of %s, the %s form, %.0f s in all, on %s. camtls: %s, %s (%d bytes, "
                   "SHA-256 %s...)%s."
                   % (time.strftime("%Y-%m-%d %H:%M"), self.form["name"], self.elapsed,
                      machine(), shown_path(self.binary), f["version"], f["size"], f["sha256"],
                      ", per-address cap %d" % f["per_address_cap"] if f["per_address"]
                      else ", no per-address cap"))
        out.append("Limits: --max-connections %d, the default timeouts; the camera sends %d "
                   "frames/s; %d MJPEG streams from %s and a keep-alive viewer from %s run "
                   "through the first five phases; new viewers arrive at %.0f/s from %d "
                   "addresses." % (self.max_connections, FPS, self.form["streams"],
                                   STREAMS_FROM, KEEPALIVE_FROM, self.form["viewer_rate"],
                                   len(VIEWERS_FROM)))
        out.append("")
        rows = []
        for p in self.phases:
            lat = [r["latency"] for r in p.viewers if r["ok"]]
            p99 = percentile(lat, 0.99)
            legit = p.viewers + p.keepalive
            rows.append([p.name, "%.0f" % (p.m1 - p.m0), fmt_rate(legit), fmt_rate(p.viewers),
                         "n/a" if p99 is None else "%.0f" % (p99 * 1000),
                         "n/a" if p.gap is None else "%.2f" % p.gap])
        out.append(table(["phase", "s", "legit requests served", "new viewers served",
                          "new viewer p99, ms", "longest frame gap, s"], rows))
        out.append("")
        rows = []
        for p in self.phases:
            rss = [s["rss"] for s in p.samples]
            levels = {}
            for line in p.log:
                level = line.split(" ", 1)[0] if line else ""
                levels[level] = levels.get(level, 0) + 1
            cpu = "?"
            if len(p.samples) >= 2:
                a, b = p.samples[0], p.samples[-1]
                cpu = "%.0f%%" % (100.0 * (b["cpu"] - a["cpu"]) / max(0.1, b["t"] - a["t"]))
            rows.append([p.name, cpu, "%s / %s" % (max(rss, default="?"), rss[-1] if rss else "?"),
                         str(max((s["fds"] for s in p.samples), default="?")),
                         str(max((s["threads"] for s in p.samples), default="?")),
                         str(max((sum(s["peers"].values()) for s in p.samples if "peers" in s),
                                 default="?")),
                         "%d (%s)" % (len(p.log), ", ".join("%s %d" % (k.lower() or "other", v)
                                                           for k, v in sorted(levels.items()))),
                         str(sum(1 for l in p.log if ACCEPT_ERROR.search(l)))])
        out.append(table(["phase", "camtls CPU", "RSS max / end, KiB", "descriptors max", "threads max",
                          "client connections max", "log lines", "accept errors"], rows))
        out.append("")
        if self.rest:
            out.append("At rest after the first five phases (streams and viewers closed, 10 s "
                       "later): RSS %d KiB, %d descriptors, %d thread(s). Stopped by SIGTERM: %s."
                       % (self.rest["rss"], self.rest["fds"], self.rest["threads"],
                          "exit status %s, last line \"stopped\"" % self.stopped[0]
                          if self.stopped[1] else "exit status %s" % (self.stopped or ("?",))[0]))
            out.append("")
        for p in self.phases:
            out.append("- **%s**: %s.%s" % (p.name, p.what, "".join(" " + n + "." for n in p.notes)))
        out.append("")
        rows = [[p.name, t, m, "met" if ok else "MISSED"] for p in self.phases
                for t, m, ok in p.targets]
        out.append(table(["phase", "target", "measured", ""], rows))
        return "\n".join(out) + "\n"

    def missed(self):
        return [(p.name, t, m) for p in self.phases for t, m, ok in p.targets if not ok]


# ---------------------------------------------------------------------------
# The memory mode

class Memory:
    """Steady load for `seconds`, RSS sampled every minute; then the load
    stopped (RSS at rest), the attack mix for a minute and rest again, and
    FLOOD_ROUNDS rounds of a minute of flood and a minute at rest."""

    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.camtls)
        self.features = camtls_features(self.binary)
        self.wd = tempfile.mkdtemp(prefix="camtls-soak-memory-")
        self.sampler = Sampler()

    def sample(self):
        rss, anon, file_ = proc_memory(self.c.pid)
        _, threads = proc_status(self.c.pid)
        fds, _ = socket_inodes(self.c.pid)
        return {"t": now() - self.t0, "rss": rss, "anon": anon, "file": file_, "fds": fds,
                "threads": threads}

    def run(self):
        seconds = self.args.memory
        cert, key, _ = gen_cert(self.binary, self.wd, "a")
        self.cam = Camera("camera", free_port(), self.wd)
        self.cam.start()
        port = free_port()
        self.c = Camtls("camtls", self.binary, self.wd, [(port, self.cam.port)], cert, key)
        self.sampler.watch(self.c)
        self.sampler.start()
        load = [Stream(port) for _ in range(3)]
        load += [KeepAlive(port, KEEPALIVE_FROM, VIEWER_PATH, 0.5),
                 KeepAlive(port, KEEPALIVE_FROM, b"/", 1.0)]
        self.resumers = [Resumer(port, RESUMERS_FROM[0], False), Resumer(port, RESUMERS_FROM[1], True)]
        load += self.resumers
        for t in load:
            t.start()
        self.load = load
        time.sleep(10)
        self.t0 = now()
        self.minutes = []
        minute = 0
        while True:
            s = self.sample()
            s["minute"] = minute
            s["requests"] = sum(len(k.results) for k in load if isinstance(k, KeepAlive))
            self.minutes.append(s)
            log("memory: minute %d, RSS %d KiB (anonymous %d, file %d), %d descriptors"
                % (minute, s["rss"], s["anon"], s["file"], s["fds"]))
            if minute * 60 >= seconds or not self.c.alive():
                break
            minute += 1
            time.sleep(max(0.0, self.t0 + minute * 60 - now()))
        for t in load:
            t.stop()
        self.loaded = dict(
            frames=sum(len(s.frames) for s in load if isinstance(s, Stream)),
            breaks=sum(len(s.breaks) for s in load if isinstance(s, Stream)),
            requests=sum(len(k.results) for k in load if isinstance(k, KeepAlive)),
            failed=sum(1 for k in load if isinstance(k, KeepAlive) for r in k.results if not r["ok"]),
            resumed=sum(r.resumed for r in self.resumers),
            reconnects=sum(r.ok + r.failed for r in self.resumers),
            reconnects_failed=sum(r.failed for r in self.resumers))
        time.sleep(60)
        self.rest_after_load = self.sample()
        a = attack_mix(port, FULL["attack"])
        t_attack = now()
        a.start()
        time.sleep(60)
        a.stop()
        self.attack_peak = max((s["rss"] for s in self.sampler.window("camtls", t_attack, now())),
                               default=None)
        time.sleep(60)
        self.rest_after_attack = self.sample()
        # Floods over the connection limit, each followed by a minute at
        # rest: memory the allocator keeps is used again by the next flood
        # (RSS at rest stays level); a leak adds to it every time.
        self.floods = []
        for _ in range(FLOOD_ROUNDS):
            f = flood(port, FULL["flood"])
            t_flood = now()
            f.start()
            time.sleep(60)
            connects = f.stop()["connects"]
            peak = max((s["rss"] for s in self.sampler.window("camtls", t_flood, now())),
                       default=None)
            time.sleep(60)
            rest = self.sample()
            rest["connects"] = connects
            self.floods.append((peak, rest))
        self.alive = self.c.alive()
        self.exit_code = self.c.stop()

    def analysis(self, key="anon"):
        """Over the second half of the minutes: the slope of `key` (KiB a
        minute, least squares), and the minute from which it never again
        rose more than 64 KiB above its value then."""
        rss = [m[key] for m in self.minutes]
        n = len(rss)
        half = rss[n // 2:]
        xs = list(range(n // 2, n))
        slope = 0.0
        if len(half) >= 2:
            mx, my = sum(xs) / len(xs), sum(half) / len(half)
            den = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, half)) / den if den else 0.0
        level = next((m for m in range(n) if max(rss[m:]) - rss[m] <= 64), None)
        # The second condition only keeps one allocator step (a few pages)
        # from counting as a trend in a short run.
        growing = bool(half) and slope > LEAK_SLOPE_KIB_MIN and (half[-1] - half[0]) > 64
        return {"slope": slope, "level": level, "growing": growing,
                "first": rss[0], "last": rss[-1], "peak": max(rss)}

    def report(self):
        out = []
        f = self.features
        out.append("Run of %s, %d minutes of steady load, on %s. camtls: %s, %s (%d bytes, "
                   "SHA-256 %s...)."
                   % (time.strftime("%Y-%m-%d %H:%M"), self.minutes[-1]["minute"], machine(),
                      shown_path(self.binary), f["version"], f["size"], f["sha256"]))
        out.append("Load: 3 MJPEG streams at %d frames/s, 2 keep-alive viewers (a snapshot "
                   "every 0.5 s, the page every 1 s), 2 viewers reconnecting every second and "
                   "resuming their TLS session (one TLS 1.3, one TLS 1.2)." % FPS)
        out.append("")
        rows = []
        for m in self.minutes:
            if m["minute"] in (0, 1, 2, 3, 5) or m["minute"] % 5 == 0 or m is self.minutes[-1]:
                rows.append([str(m["minute"]), str(m["rss"]), "%.1f" % (m["rss"] / 1024.0),
                             str(m["anon"]), str(m["file"]), str(m["fds"]), str(m["threads"])])
        out.append(table(["minute", "RSS, KiB", "MiB", "anonymous, KiB", "file-backed, KiB",
                          "descriptors", "threads"], rows))
        out.append("")
        l = self.loaded
        out.append("Served: %d keep-alive requests (%d failed), %d MJPEG frames (%d stream "
                   "breaks), %d reconnections (%d failed, %d resumed)."
                   % (l["requests"], l["failed"], l["frames"], l["breaks"], l["reconnects"],
                      l["reconnects_failed"], l["resumed"]))
        out.append("")
        for key, what in (("rss", "RSS"), ("anon", "Anonymous memory"),
                          ("file", "File-backed memory (the binary's pages)")):
            s = self.analysis(key)
            trend = ("still growing, %.1f KiB a minute over the second half" % s["slope"]
                     if s["growing"] else "%.1f KiB a minute over the second half%s" % (
                         s["slope"], "; within 64 KiB of its final level from minute %d"
                         % s["level"] if s["level"] is not None else ""))
            out.append("%s from %d KiB at minute 0 to %d KiB at minute %d (peak %d): %s."
                       % (what, s["first"], s["last"], self.minutes[-1]["minute"], s["peak"],
                          trend))
        a = self.analysis()
        out.append("Verdict on the anonymous part, which a leak grows: %s."
                   % ("still growing" if a["growing"] else "levels off"))
        out.append("")
        out.append("At rest a minute after the load stopped: RSS %d KiB (anonymous %d), %d "
                   "descriptors. During one minute of the attack mix (%d/%d/%d connections from "
                   "one address): peak %s KiB. A minute after it: %d KiB (anonymous %d), %d "
                   "descriptors."
                   % (self.rest_after_load["rss"], self.rest_after_load["anon"],
                      self.rest_after_load["fds"], *FULL["attack"], self.attack_peak,
                      self.rest_after_attack["rss"], self.rest_after_attack["anon"],
                      self.rest_after_attack["fds"]))
        out.append("")
        rows = [[str(i + 1), str(peak), str(rest["rss"]), str(rest["anon"]), str(rest["fds"])]
                for i, (peak, rest) in enumerate(self.floods)]
        out.append("Then %d rounds of a minute of flood (%d addresses x %d connections, over the "
                   "limit of 128) and a minute at rest:" % ((FLOOD_ROUNDS,) + FULL["flood"]))
        out.append("")
        out.append(table(["round", "RSS peak, KiB", "RSS at rest, KiB", "anonymous at rest, KiB",
                          "descriptors at rest"], rows))
        out.append("")
        slope = self.flood_slope()
        connects = sum(r["connects"] for _, r in self.floods) / len(self.floods)
        out.append("Anonymous memory at rest changes by %+.0f KiB a round (least squares over "
                   "the %d rounds; %.0f flood connections a round, so %+.1f bytes a "
                   "connection): %s."
                   % (slope, FLOOD_ROUNDS, connects, slope * 1024 / max(1.0, connects),
                      "memory kept by the allocator (and caches that fill up) and used again, "
                      "not a leak" if slope <= FLOOD_SLOPE_KIB else
                      "it grows with every flood"))
        return "\n".join(out) + "\n"

    def data(self):
        """Every figure of the run, for reading again later."""
        return {"binary": self.binary, "features": self.features, "minutes": self.minutes,
                "loaded": self.loaded, "rest_after_load": self.rest_after_load,
                "attack_peak": self.attack_peak, "rest_after_attack": self.rest_after_attack,
                "floods": self.floods}

    def flood_slope(self):
        """KiB a round that anonymous memory at rest gains, least squares over
        the rounds: from one round to the next it swings by a few hundred KiB
        either way with any allocator, a leak adds the same every round."""
        ys = [r["anon"] for _, r in self.floods]
        xs = list(range(len(ys)))
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0

    def missed(self):
        out = []
        a = self.analysis()
        if a["growing"]:
            out.append(("memory", "anonymous memory levels off (second-half slope <= %.0f "
                        "KiB/min)" % LEAK_SLOPE_KIB_MIN, "%.1f KiB/min" % a["slope"]))
        if self.flood_slope() > FLOOD_SLOPE_KIB:
            out.append(("memory", "anonymous memory at rest gains <= %d KiB a flood round"
                        % FLOOD_SLOPE_KIB, "%+.0f KiB a round" % self.flood_slope()))
        if not self.alive:
            out.append(("memory", "camtls still running", "exited"))
        if self.loaded["breaks"]:
            out.append(("memory", "no stream breaks", str(self.loaded["breaks"])))
        return out

    def cleanup(self):
        self.sampler.stop_flag.set()
        kill_children()
        if self.args.keep:
            log("kept %s" % self.wd)
        else:
            shutil.rmtree(self.wd, ignore_errors=True)


# ---------------------------------------------------------------------------

def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


def shown_path(path):
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    return "%s, %d cores, load average %.2f at the end" % (model, os.cpu_count(), os.getloadavg()[0])


def write_block(path, begin, end, body):
    with open(path) as f:
        text = f.read()
    if begin not in text or end not in text:
        log("%s has no %s ... %s markers; not written" % (path, begin, end))
        return False
    text = text[:text.index(begin)] + begin + "\n" + body + end + text[text.index(end) + len(end):]
    with open(path, "w") as f:
        f.write(text)
    return True


def watchdog(seconds):
    def fire():
        log("the run overstayed its limit of %.0f s; stopping everything" % seconds)
        kill_children()
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camtls", required=True, help="the camtls binary")
    ap.add_argument("--short", action="store_true", help="the 2-minute form (make test-soak)")
    ap.add_argument("--phase-seconds", type=int, help="length of each phase after the baseline")
    ap.add_argument("--memory", type=int, metavar="SECONDS",
                    help="steady-load memory mode for SECONDS instead of the phases")
    ap.add_argument("--out", help="write the figures between the markers of this file")
    ap.add_argument("--phases", help="only these phases, e.g. attack,flood (the figures are "
                    "then not written to --out)")
    ap.add_argument("--data", metavar="FILE", help="memory mode: every sample as JSON in FILE")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()
    if not os.path.isfile(args.camtls):
        sys.exit("soak: no camtls binary at %s" % args.camtls)
    if not shutil.which("prlimit"):
        sys.exit("soak: prlimit (util-linux) is missing")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("soak: stopped by SIGTERM"))

    if args.memory:
        watchdog(args.memory + 2400)
        run = Memory(args)
        begin, end = MEM_BEGIN, MEM_END
    else:
        form = dict(SHORT if args.short else FULL)
        if args.phase_seconds:
            form["phase"] = args.phase_seconds
            form["baseline"] = min(form["baseline"], args.phase_seconds)
        estimate = form["baseline"] + 5 * form["phase"] + 6 * (form["warmup"] + form["settle"] + 15)
        watchdog(2 * estimate + 180)
        run = Soak(args, form)
        begin, end = BEGIN, END
    try:
        run.run()
        body = run.report()
    finally:
        run.cleanup()
    print(body)
    if args.memory and args.data:
        with open(args.data, "w") as f:
            json.dump(run.data(), f, indent=1)
    if args.out and not args.phases:
        if write_block(args.out, begin, end, body):
            log("wrote %s" % args.out)
    missed = run.missed()
    if missed:
        for phase, target, measured in missed:
            log("MISSED in %s: %s (measured: %s)" % (phase, target, measured))
        sys.exit(1)
    log("every target met")


if __name__ == "__main__":
    main()
