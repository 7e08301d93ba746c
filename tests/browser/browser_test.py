#!/usr/bin/env python3
"""A real browser through camtls: headless Chromium loads the sample camera's
page through a camtls binary (the static x86_64 release build in `make test`)
and the page itself reports what works.

    python3 tests/browser/browser_test.py --camtls dist/camtls-0.1.0-x86_64-unknown-linux-musl

It starts tests/sample-camera/camera.py and camtls on 127.0.0.1 with a
throwaway certificate, which Chromium trusts by its SPKI hash, and drives
Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: no
port, no WebSocket client, standard library only). Checked, from the page:

  - the MJPEG <img> shows frames that advance: the camera's frame counter is
    read off the picture's pixels through a canvas, twice, and compared with
    the camera's own count;
  - the page's WebSocket opens and echoes what is typed into its form, and a
    60 KB message comes back whole;
  - the same after Page.reload, and in a second tab that goes through the
    camera's /login redirect (rewritten by camtls to the https origin), and a
    chunked response in a third tab;
  - from Chromium's NetLog: every TLS handshake succeeded, TLS 1.3, and the
    later connections resumed the first one's session (the browser's second
    connection resuming the first's session is what a trimmed OpenSSL once
    refused, which left the page's WebSocket "closed"); and that Chromium
    tried to reach nothing but 127.0.0.1;
  - camtls logged no failed handshake, no warning or error, and still runs.

A screenshot of the first tab goes to target/browser/screenshot.png. The run
is bounded (--timeout, 120 s) and every process it starts is stopped. The
last line is "N passed, M failed"; the exit status is 1 on any failure.
"""

import argparse
import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CAMERA = os.path.join(ROOT, "tests", "sample-camera", "camera.py")

_spec = importlib.util.spec_from_file_location("camera", CAMERA)
camera = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(camera)

# Where the camera draws its six-digit frame counter, in 8x8 blocks
# (camera.frame_blocks: draw_text(blocks, 2, BLOCKS_Y - 6, "%06d" % n)).
COUNTER_X, COUNTER_Y, COUNTER_DIGITS = 2, camera.BLOCKS_Y - 6, 6
GLYPHS = {"".join(rows): ch for ch, rows in camera.FONT.items() if ch.isdigit()}

# Everything Chromium would reach out for on its own is switched off. Two
# requests have no switch: the component updater's on-demand check and the
# Google account cookie check (ListAccounts); their servers are moved to
# SINK, a port on 127.0.0.1 that this test holds bound and never listens on,
# so they are refused at once. A host name that slips through resolves to
# nothing, with no DNS query. The NetLog shows what was tried (checked at
# the end).
def quiet_flags(sink):
    return [
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--component-updater=url-source=%s/" % sink,
        "--gaia-url=%s/" % sink,
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-client-side-phishing-detection",
        "--disable-domain-reliability",
        "--disable-breakpad",
        "--disable-crash-reporter",
        "--disable-spell-checking",
        "--no-pings",
        "--metrics-recording-only",
        "--safebrowsing-disable-auto-update",
        "--password-store=basic",
        "--use-mock-keychain",
        "--disable-features=AutofillServerCommunication,OptimizationHints,"
        "OptimizationGuideModelDownloading,MediaRouter,DialMediaRouteProvider,"
        "Translate,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]


class CheckFailed(Exception):
    pass


class Deadline(Exception):
    pass


# ---------------------------------------------------------------------------
# Results


class Results:
    def __init__(self):
        self.passed, self.failed = 0, 0
        self.blocked = {}  # group -> why its remaining checks cannot run

    def check(self, name, fn, groups=(), blocks=None):
        """Runs fn(); a CheckFailed or any other error fails the check.

        fn returns a short detail for the ok line. A check in a blocked group
        fails without running (it would only time out after the one it
        needs); a failed check blocks the group named by blocks."""
        start = time.monotonic()
        if isinstance(groups, str):
            groups = (groups,)
        for group in groups:
            if group in self.blocked:
                self.failed += 1
                print("FAIL %s: not run, %s" % (name, self.blocked[group]), flush=True)
                return False
        try:
            detail = fn()
        except Deadline:
            raise
        except CheckFailed as e:
            return self._fail(name, str(e), blocks)
        except Exception as e:  # a bug or an unexpected answer: still a clear line
            return self._fail(name, "%s: %s" % (type(e).__name__, e), blocks)
        self.passed += 1
        took = time.monotonic() - start
        print("ok   %s%s [%.1fs]" % (name, " (%s)" % detail if detail else "", took), flush=True)
        return True

    def _fail(self, name, why, blocks):
        self.failed += 1
        print("FAIL %s: %s" % (name, why), flush=True)
        if blocks is not None:
            self.blocked[blocks] = "because \"%s\" failed" % name
        return False


# ---------------------------------------------------------------------------
# DevTools protocol over --remote-debugging-pipe: Chromium reads JSON
# messages, each ended by a NUL byte, from its fd 3 and writes them to fd 4.


class DevTools:
    def __init__(self, proc, to_browser, from_browser):
        self.proc, self.wfd, self.rfd = proc, to_browser, from_browser
        self.next_id, self.buf, self.events = 0, b"", []

    def _pump(self, timeout):
        """Reads what is there within timeout; returns the messages."""
        ready, _, _ = select.select([self.rfd], [], [], max(0.0, timeout))
        if not ready:
            return []
        data = os.read(self.rfd, 1 << 20)
        if not data:
            raise CheckFailed("Chromium closed the DevTools pipe (exit status %s)"
                              % self.proc.poll())
        self.buf += data
        *messages, self.buf = self.buf.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def call(self, method, params=None, session=None, timeout=15.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in self._pump(end - time.monotonic()):
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise CheckFailed("%s: %s" % (method, m["error"].get("message")))
                    return m.get("result", {})
                if "method" in m:
                    self.events.append(m)
        raise CheckFailed("%s: no answer from Chromium in %.0f s" % (method, timeout))


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, devtools, name, url):
        self.dt, self.name = devtools, name
        self.target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = devtools.call("Target.attachToTarget",
                                     {"targetId": self.target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(domain + ".enable")
        self.url = url

    def call(self, method, params=None, timeout=15.0):
        return self.dt.call(method, params, session=self.session, timeout=timeout)

    def navigate(self):
        result = self.call("Page.navigate", {"url": self.url}, timeout=20)
        if result.get("errorText"):
            raise CheckFailed("%s did not load: %s" % (self.url, result["errorText"]))

    def eval(self, expression, timeout=15.0):
        result = self.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CheckFailed("JavaScript error in %s: %s" % (self.name, text))
        return result["result"].get("value")

    def poll(self, expression, done, timeout, what):
        """Evaluates until done(value); returns the value, or fails naming
        the last one seen."""
        end = time.monotonic() + timeout
        value = None
        while True:
            value = self.eval(expression)
            if done(value):
                return value
            if time.monotonic() >= end:
                raise CheckFailed("%s: still %s after %.0f s" % (what, json.dumps(value), timeout))
            time.sleep(0.2)

    def responses(self):
        return [e["params"]["response"] for e in self.dt.events
                if e.get("sessionId") == self.session and e["method"] == "Network.responseReceived"]

    def failed_loads(self):
        return [e["params"] for e in self.dt.events
                if e.get("sessionId") == self.session and e["method"] == "Network.loadingFailed"
                and not e["params"].get("canceled")]


# ---------------------------------------------------------------------------
# What is asked of the page

READ_FRAME_JS = """(() => {
  const img = document.querySelector('img');
  if (!img) return {error: 'no <img> on the page'};
  if (!img.naturalWidth) return {width: 0, src: img.src};
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  const rows = [];
  for (let dy = 0; dy < 5; dy++) {
    let line = '';
    for (let x = 0; x < %(digits)d * 4; x++) {
      const i = (((%(y)d + dy) * 8 + 4) * c.width + (%(x)d + x) * 8 + 4) * 4;
      line += (px[i] > 200 && px[i + 1] > 200 && px[i + 2] > 200) ? '1' : '0';
    }
    rows.push(line);
  }
  return {width: img.naturalWidth, height: img.naturalHeight, rows: rows, src: img.src};
})()""" % {"digits": COUNTER_DIGITS, "x": COUNTER_X, "y": COUNTER_Y}

WS_STATE_JS = "(document.getElementById('state') || {}).textContent"

BIG_ECHO_JS = """new Promise(resolve => {
  const msg = Array.from({length: 60000}, (_, i) => String.fromCharCode(33 + i %% 90)).join('');
  const ws = new WebSocket('wss://' + location.host + '/ws');
  const timer = setTimeout(() => resolve({error: 'no echo in %(secs)d s'}), %(secs)d000);
  ws.onopen = () => ws.send(msg);
  ws.onmessage = e => { clearTimeout(timer); ws.close();
    resolve({sent: msg.length, got: e.data.length, same: e.data === msg}); };
  ws.onclose = e => { clearTimeout(timer);
    resolve({error: 'closed before the echo, code ' + e.code}); };
})""" % {"secs": 8}


def frame_number(reading):
    """The counter the camera drew on the frame, from READ_FRAME_JS's rows."""
    rows = reading["rows"]
    digits = ""
    for i in range(COUNTER_DIGITS):
        glyph = "".join(row[4 * i:4 * i + 3] for row in rows)
        if glyph not in GLYPHS:
            raise CheckFailed("the frame counter in the picture is not legible: rows %s"
                              % rows)
        digits += GLYPHS[glyph]
    return int(digits)


def camera_frame(camera_port):
    """The camera's own current frame number (its getDevState command)."""
    url = ("http://127.0.0.1:%d/cgi-bin/CGIProxy.fcgi?cmd=getDevState&usr=%s&pwd=%s"
           % (camera_port, camera.USER, camera.PASSWORD))
    with urllib.request.urlopen(url, timeout=5) as r:
        m = re.search(r"<frame>(\d+)</frame>", r.read().decode())
    return int(m.group(1)) % 1000000


def page_checks(results, page, origin, camera_port, group, expect_href=None):
    """The camera page's checks in one tab: it loaded over https, the video
    plays, the WebSocket echoes."""
    label = page.name

    def loaded():
        state = page.poll("({href: location.href, title: document.title,"
                          " ready: document.readyState})",
                          lambda v: v["ready"] != "loading" and v["href"] != "about:blank",
                          15, "%s: the document" % label)
        want = expect_href or page.url
        if state["href"].startswith("chrome-error:"):
            errors = sorted({f.get("errorText") for f in page.failed_loads()})
            raise CheckFailed("Chromium shows its error page: %s" % ", ".join(errors))
        doc = [r for r in page.responses() if r["url"] == state["href"]]
        if not doc:
            raise CheckFailed("no response recorded for %s" % state["href"])
        if doc[-1]["status"] != 200:
            text = page.eval("document.body ? document.body.innerText : ''") or ""
            raise CheckFailed("%s answered %d %s: %r" % (
                state["href"], doc[-1]["status"], doc[-1].get("statusText", ""), text[:200]))
        if state["href"] != want:
            raise CheckFailed("landed on %s, expected %s" % (state["href"], want))
        if state["title"] != "Sample camera":
            raise CheckFailed("title %r, expected 'Sample camera'" % state["title"])
        sec = doc[-1].get("securityDetails") or {}
        if doc[-1].get("protocol") not in ("http/1.1", "http/1.0") or \
                sec.get("protocol") != "TLS 1.3":
            raise CheckFailed("the page came as %s over %s, expected HTTP/1.1 over TLS 1.3"
                              % (doc[-1].get("protocol"), sec.get("protocol")))
        return "%s, %s, %s, %s" % (state["href"], sec["protocol"], sec.get("cipher"),
                                   doc[-1].get("securityState"))

    def video():
        first = page.poll(READ_FRAME_JS, lambda v: v.get("width") or v.get("error"),
                          10, "%s: the MJPEG <img> naturalWidth" % label)
        if first.get("error"):
            raise CheckFailed(first["error"])
        if (first["width"], first["height"]) != (camera.WIDTH, camera.HEIGHT):
            raise CheckFailed("the picture is %dx%d, expected %dx%d" % (
                first["width"], first["height"], camera.WIDTH, camera.HEIGHT))
        if not first["src"].startswith(origin + "/"):
            raise CheckFailed("the <img> loads %s, not from %s" % (first["src"], origin))
        a = frame_number(first)
        time.sleep(1.5)
        b = frame_number(page.eval(READ_FRAME_JS))
        now = camera_frame(camera_port)
        if b <= a:
            raise CheckFailed("the picture is stuck at frame %d (1.5 s later: %d)" % (a, b))
        if not now - 2 * camera.DEFAULT_FPS <= b <= now + 1:
            raise CheckFailed("the browser shows frame %d but the camera is at %d" % (b, now))
        return "%dx%d, frame %06d then %06d 1.5 s later; camera at %06d" % (
            first["width"], first["height"], a, b, now)

    def ws_open():
        state = page.poll(WS_STATE_JS, lambda v: v in ("open", "closed"), 10,
                          "%s: the page's WebSocket state" % label)
        if state != "open":
            raise CheckFailed("the page's WebSocket is %r, expected 'open'" % state)
        return "the page says %r" % state

    def ws_echo():
        token = "hello camera %s" % secrets.token_hex(4)
        page.eval("(() => { document.getElementById('msg').value = %s;"
                  " document.querySelector('#f button').click(); return true; })()"
                  % json.dumps(token))
        page.poll("document.getElementById('log').textContent.includes(%s)"
                  % json.dumps("< " + token), bool, 5,
                  "%s: the echo of %r in the page's log" % (label, token))
        return "typed %r, the page logged '< %s'" % (token, token)

    def ws_big():
        got = page.eval(BIG_ECHO_JS, timeout=15)
        if got.get("error") or not got.get("same"):
            raise CheckFailed("a 60000-character message: %s" % json.dumps(got))
        return "%d characters sent, the same %d back" % (got["sent"], got["got"])

    ws_group = "%s websocket" % label
    results.check("%s: loads over https" % label, loaded, group, blocks=group)
    results.check("%s: MJPEG frames advance" % label, video, group)
    results.check("%s: WebSocket opens" % label, ws_open, group, blocks=ws_group)
    results.check("%s: WebSocket echoes a typed message" % label, ws_echo, (group, ws_group))
    results.check("%s: WebSocket echoes a 60 KB message whole" % label, ws_big,
                  (group, ws_group))


# ---------------------------------------------------------------------------
# Processes


def shown(path):
    """A path as it is best read: from the project's root when inside it."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, name, grace=5.0, group=False):
    """Ends a process this test started (its process group for Chromium)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(grace)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    if proc.poll() is None:
        print("note: %s did not stop on SIGTERM, killed" % name, flush=True)
        try:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(5)
    if group:  # its helpers (zygote, renderers) are in the same group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_camera(script, log):
    proc = subprocess.Popen([sys.executable, script, "--listen", "127.0.0.1:0", "--verbose"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        stop(proc, "camera")
        raise CheckFailed("the sample camera did not start: %r" % line)
    return proc, int(m.group(1))


def start_camtls(binary, port, backend_port, cert, key, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "--route", "127.0.0.1:%d=127.0.0.1:%d" % (port, backend_port),
                             "--cert", cert, "--key", key, "--log-level", "debug"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with open(log_path) as f:
            text = f.read()
        if "listening on https://127.0.0.1:%d" % port in text:
            return proc
        if proc.poll() is not None:
            raise CheckFailed("camtls exited with status %s: %s" % (proc.returncode, text.strip()))
        time.sleep(0.05)
    stop(proc, "camtls")
    raise CheckFailed("camtls did not say it was listening in 10 s")


def spki_hash(cert):
    """base64 SHA-256 of the certificate's SubjectPublicKeyInfo, which
    --ignore-certificate-errors-spki-list takes."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def find_chromium(given):
    for c in ([given] if given else ["/usr/lib/chromium/chromium", "chromium",
                                     "chromium-browser"]):
        path = shutil.which(c) or (c if os.access(c, os.X_OK) else None)
        if path:
            return path
    raise CheckFailed("no Chromium found (Debian: apt-get install chromium)")


def start_chromium(binary, tmp, spki, sink, extra):
    # The pipe ends are moved above the standard descriptors first, so that
    # putting them on 3 and 4 in the child cannot overwrite one another.
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    child_in = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_r)
    os.close(from_w)

    def pipes_on_3_and_4():
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    # No captive-portal probe after a TLS error: it follows this setting.
    profile = os.path.join(tmp, "profile")
    os.makedirs(os.path.join(profile, "Default"))
    with open(os.path.join(profile, "Default", "Preferences"), "w") as f:
        json.dump({"alternate_error_pages": {"enabled": False}}, f)

    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--mute-audio", "--user-data-dir=" + profile,
            "--remote-debugging-pipe", "--ignore-certificate-errors-spki-list=" + spki,
            "--log-net-log=" + os.path.join(tmp, "netlog.json"),
            "--window-size=1000,1080", *quiet_flags(sink), *extra, "about:blank"]
    # Whatever Chromium keeps outside its profile (crash report settings,
    # dconf, NSS) stays in the temporary directory too.
    env = dict(os.environ, HOME=os.path.join(tmp, "home"),
               XDG_CONFIG_HOME=os.path.join(tmp, "home", ".config"),
               XDG_CACHE_HOME=os.path.join(tmp, "home", ".cache"))
    os.makedirs(env["XDG_CONFIG_HOME"])
    log = open(os.path.join(tmp, "chromium.log"), "w")
    # close_fds=False: only inheritable descriptors pass, and the parent's
    # are all close-on-exec but the standard ones; 3 and 4 are made in
    # the child.
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            env=env, close_fds=False, preexec_fn=pipes_on_3_and_4,
                            start_new_session=True)
    log.close()
    os.close(child_in)
    os.close(child_out)
    return proc, DevTools(proc, to_w, from_r)


# ---------------------------------------------------------------------------
# Chromium's NetLog: the TLS handshakes, and where it tried to go


def read_netlog(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        # Cut short (Chromium killed): the events written so far.
        return json.loads(text.rstrip().rstrip(",") + "]}")


def netlog_checks(results, netlog_path, origin, sink):
    state = {}

    def load():
        state["log"] = read_netlog(netlog_path)
        state["types"] = {v: k for k, v in state["log"]["constants"]["logEventTypes"].items()}
        return "%d events" % len(state["log"]["events"])

    def events(name):
        t = state["types"]
        return [e for e in state["log"]["events"] if t.get(e["type"]) == name]

    def handshakes():
        ends = [e.get("params") or {} for e in events("SSL_CONNECT") if e.get("phase") == 2]
        if not ends:
            raise CheckFailed("Chromium's NetLog has no TLS handshake at all")
        failed = [p for p in ends if "net_error" in p]
        state["counts"] = (len(ends) - len(failed), sum(1 for p in ends if p.get("is_resumed")))
        if failed:
            names = {v: "net::" + k for k, v in state["log"]["constants"].get("netError", {}).items()}
            raise CheckFailed("%d of %d TLS handshakes failed: %s" % (len(failed), len(ends), ", ".join(
                sorted({names.get(p["net_error"], str(p["net_error"])) for p in failed}))))
        versions = sorted({p.get("version") for p in ends})
        if versions != ["TLS 1.3"]:
            raise CheckFailed("handshakes used %s, expected TLS 1.3 only" % versions)
        return "%d handshakes, all TLS 1.3" % len(ends)

    def resumption():
        if "counts" not in state:
            raise CheckFailed("no handshakes to look at")
        total, resumed = state["counts"]
        # The first connection cannot resume; nearly every later one does
        # (a few may start before the first one's ticket has arrived).
        if total < 3 or resumed < (total - 1) // 2:
            raise CheckFailed("only %d of %d successful TLS handshakes resumed a session"
                              % (resumed, total))
        return "%d of %d handshakes resumed the session" % (resumed, total)

    def loopback_only():
        elsewhere, sunk = set(), 0
        for e in events("URL_REQUEST_START_JOB"):
            url = (e.get("params") or {}).get("url", "")
            if not url or url.startswith((origin + "/", "wss" + origin[5:] + "/",
                                          "data:", "about:", "chrome")):
                continue
            if url.startswith(sink + "/"):
                sunk += 1
            else:
                elsewhere.add(url.split("?")[0])
        for e in events("HOST_RESOLVER_MANAGER_REQUEST") + events("HOST_RESOLVER_MANAGER_JOB"):
            host = str((e.get("params") or {}).get("host", ""))
            if host and "127.0.0.1" not in host:
                elsewhere.add(host)
        for e in events("TCP_CONNECT_ATTEMPT"):
            addr = (e.get("params") or {}).get("address", "")
            if addr and not addr.startswith("127.0.0.1:"):
                elsewhere.add(addr)
        if elsewhere:
            raise CheckFailed("Chromium tried to reach %s" % ", ".join(sorted(elsewhere)))
        return ("every request, lookup and connection was for 127.0.0.1; %d background"
                " requests refused on the closed port" % sunk)

    results.check("Chromium's NetLog reads", load, "netlog", blocks="netlog")
    results.check("every TLS handshake succeeded", handshakes, "netlog")
    results.check("later connections resume the TLS 1.3 session", resumption, "netlog")
    results.check("Chromium reached nothing but 127.0.0.1", loopback_only, "netlog")


# ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camtls", required=True, help="the camtls binary to test")
    parser.add_argument("--chromium", help="Chromium binary (default: Debian's)")
    parser.add_argument("--chromium-flag", action="append", default=[], metavar="FLAG",
                        help="one more Chromium command-line flag (repeatable)")
    parser.add_argument("--camera", default=CAMERA,
                        help="the camera script to start (default: the sample camera)")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "browser"),
                        help="where the screenshot and, on failure, the logs go")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds the whole test may take (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    results = Results()
    tmp = tempfile.mkdtemp(prefix="camtls-browser-")
    os.makedirs(args.out, exist_ok=True)
    kept = ("screenshot.png", "camtls.log", "chromium.log", "camera.log", "netlog.json")
    for name in kept:  # nothing from an earlier run is left to mislead
        if os.path.exists(os.path.join(args.out, name)):
            os.remove(os.path.join(args.out, name))
    cam = camtls = chromium = sink_socket = None
    camtls_log = os.path.join(tmp, "camtls.log")
    camera_log = open(os.path.join(tmp, "camera.log"), "w")

    def on_alarm(_signum, _frame):
        raise Deadline()

    def on_term(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(args.timeout)
    interrupted = None
    try:
        binary = os.path.abspath(args.camtls)
        if not os.access(binary, os.X_OK):
            raise CheckFailed("no camtls binary at %s" % binary)
        chromium_bin = find_chromium(args.chromium)
        version = subprocess.run([chromium_bin, "--version"], capture_output=True,
                                 text=True, timeout=30).stdout.strip()
        print("camtls: %s\nbrowser: %s" % (binary, version), flush=True)

        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run([binary, "gen-cert", "--cert", cert, "--key", key,
                        "--name", "localhost", "--name", "127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        cam, camera_port = start_camera(args.camera, camera_log)
        for attempt in range(3):
            port = free_port()
            try:
                camtls = start_camtls(binary, port, camera_port, cert, key, camtls_log)
                break
            except CheckFailed:
                if attempt == 2 or "in use" not in open(camtls_log).read():
                    raise
        origin = "https://127.0.0.1:%d" % port
        print("camera http://127.0.0.1:%d/ behind camtls %s/" % (camera_port, origin), flush=True)

        # Bound and never listening: a connection to it is refused at once.
        sink_socket = socket.socket()
        sink_socket.bind(("127.0.0.1", 0))
        sink = "http://127.0.0.1:%d" % sink_socket.getsockname()[1]
        chromium, dt = start_chromium(chromium_bin, tmp, spki_hash(cert), sink,
                                      args.chromium_flag)
        results.check("Chromium answers on the DevTools pipe",
                      lambda: dt.call("Browser.getVersion", timeout=30)["product"],
                      "browser", blocks="browser")
        if "browser" in results.blocked:
            raise CheckFailed("no browser to test with")

        # Tab 1: the camera's page, then the same page reloaded.
        tab1 = Page(dt, "tab 1", origin + "/")
        results.check("tab 1: navigate to %s/" % origin, lambda: tab1.navigate() or "",
                      "tab1", blocks="tab1")
        page_checks(results, tab1, origin, camera_port, "tab1")

        def reload():
            tab1.eval("window.beforeReload = true")
            tab1.call("Page.reload", {"ignoreCache": True})
            tab1.poll("typeof window.beforeReload === 'undefined' && document.readyState",
                      lambda v: v in ("interactive", "complete"), 15,
                      "tab 1: the reloaded document")
            return ""

        results.check("tab 1: Page.reload", reload, "tab1", blocks="tab1")
        tab1.name = "tab 1 reloaded"
        page_checks(results, tab1, origin, camera_port, "tab1")

        def screenshot():
            tab1.call("Page.bringToFront")
            png = base64.b64decode(tab1.call("Page.captureScreenshot",
                                             {"format": "png"}, timeout=30)["data"])
            if png[:8] != b"\x89PNG\r\n\x1a\n":
                raise CheckFailed("not a PNG")
            path = os.path.join(args.out, "screenshot.png")
            with open(path, "wb") as f:
                f.write(png)
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            return "%s, %dx%d" % (shown(path), width, height)

        results.check("tab 1: screenshot", screenshot, "tab1")

        # Tab 2: a new tab on the same origin, through the camera's /login,
        # whose redirect to the camera's own http:// address camtls rewrites.
        tab2 = Page(dt, "tab 2", origin + "/login")
        results.check("tab 2: navigate to %s/login" % origin, lambda: tab2.navigate() or "",
                      "tab2", blocks="tab2")
        page_checks(results, tab2, origin, camera_port, "tab2", expect_href=origin + "/")

        # Tab 3: a chunked response, sent by the camera in pieces.
        tab3 = Page(dt, "tab 3", origin + "/chunked")

        def chunked():
            tab3.navigate()
            text = tab3.poll("document.readyState === 'complete' && document.body.innerText",
                             bool, 10, "tab 3: the chunked body")
            lines = text.strip().splitlines()
            if len(lines) != 10 or lines[-1] != "line 10 of 10 from the camera":
                raise CheckFailed("the body is %r" % text[:200])
            return "10 lines, the last %r" % lines[-1]

        results.check("tab 3: a chunked response arrives whole", chunked, "tab3")

        def no_failed_loads():
            failed = [(p.get("errorText"), p.get("type")) for t in (tab1, tab2, tab3)
                      for p in t.failed_loads()]
            if failed:
                raise CheckFailed("requests failed: %s" % failed)
            statuses = sorted({r["status"] for t in (tab1, tab2, tab3) for r in t.responses()})
            return "response statuses %s" % statuses

        results.check("no request failed in any tab", no_failed_loads)

        # Closing the browser finishes its NetLog.
        try:
            dt.call("Browser.close", timeout=10)
        except CheckFailed:
            pass
        try:
            chromium.wait(15)
        except subprocess.TimeoutExpired:
            print("note: Chromium did not exit after Browser.close", flush=True)
        stop(chromium, "Chromium", group=True)
        netlog_checks(results, os.path.join(tmp, "netlog.json"), origin, sink)

        def camtls_log_clean():
            if camtls.poll() is not None:
                raise CheckFailed("camtls exited with status %s" % camtls.returncode)
            with open(camtls_log) as f:
                lines = f.read().splitlines()
            bad = [line for line in lines
                   if "TLS handshake" in line or line.startswith(("WARN", "ERROR"))]
            if bad:
                raise CheckFailed("camtls logged:\n  " + "\n  ".join(bad[:10]))
            served = sum(1 for line in lines if re.search(r'"GET [^"]*" \d{3}$', line))
            ws = sum(1 for line in lines if re.search(r'"GET /ws" 101$', line))
            return "%d requests served, %d WebSockets, no failed handshake" % (served, ws)

        results.check("camtls still runs and logged no failed handshake", camtls_log_clean)
    except Deadline:
        results.failed += 1
        print("FAIL the test did not finish in %d s (--timeout)" % args.timeout, flush=True)
    except CheckFailed as e:
        results.failed += 1
        print("FAIL %s" % e, flush=True)
    except KeyboardInterrupt as e:
        interrupted = e
    except Exception as e:  # setting up failed in a way not foreseen: say how
        results.failed += 1
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
    finally:
        signal.alarm(0)
        stop(chromium, "Chromium", group=True)
        stop(camtls, "camtls")
        stop(cam, "camera")
        camera_log.close()
        if sink_socket:
            sink_socket.close()
        if results.failed:
            for name in kept[1:]:
                if os.path.exists(os.path.join(tmp, name)):
                    shutil.copy(os.path.join(tmp, name), os.path.join(args.out, name))
            if os.path.exists(camtls_log):
                with open(camtls_log) as f:
                    tail = f.read().splitlines()[-15:]
                print("camtls log, last lines:\n  " + "\n  ".join(tail))
            print("logs kept in %s" % shown(args.out))
        if args.keep:
            print("temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        print("interrupted (%s)" % interrupted)
        results.failed += 1
    print("%d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
