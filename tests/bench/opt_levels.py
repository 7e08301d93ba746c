#!/usr/bin/env python3
"""make bench-opt: camtls with its OpenSSL built size-first and speed-first.

For each target, static camtls binaries that tests/bench/opt-build.sh makes:
OpenSSL as shipped (-Os -DOPENSSL_SMALL_FOOTPRINT), speed-first (-O2, no
OPENSSL_SMALL_FOOTPRINT) and, where they were built, each change alone
(os-nosmall, o2-small). Each runs under the dynamic qemu-user of
its target with the counting plugin of make bench-mips
(tests/bench/insn-count.c), and the figures are guest instructions, counted
as bench_mips.py counts them (a phase's growth less the idle rate, over the
operations in it):

  per handshake  a full TLS 1.3 handshake and one 1 KiB request, on a new
                 connection, ECDSA P-256 and RSA-2048 (Python's ssl)
  per MiB        a 16 MiB download less a 1 KiB one, AES-128-GCM (curl)

x86_64 runs natively too: CPU seconds of the proxy per handshake, every
build in the same run, interleaved, as a ratio only.

Clients and the backend run natively and talk to 127.0.0.1.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_mips  # noqa: E402  (sets up the client's TLS 1.3 suite first)
import bench  # noqa: E402

MIB = bench.MIB
HANDSHAKES = 30
# qemu binary and CPU per target: the dynamic qemu-user (the static one loads
# no plugin), and a CPU like the routers': Cortex-A53 (AES and PMULL
# instructions), Cortex-A7 (NEON, no AES instructions); on x86_64, qemu's
# max (AES-NI, PCLMULQDQ, AVX2).
QEMU = {
    "x86_64-unknown-linux-musl": ("qemu-x86_64", "max"),
    "aarch64-unknown-linux-musl": ("qemu-aarch64", "cortex-a53"),
    "armv7-unknown-linux-musleabihf": ("qemu-arm", "cortex-a7"),
}
# tests/bench/opt-build.sh's variants: as shipped first, the ratios are to it.
OPTS = ("size", "speed", "os-nosmall", "o2-small")


class Qemu(bench_mips.Qemu):
    def __init__(self, qemu, cpu, plugin, wd):
        super().__init__(qemu, "/", plugin, wd, {})
        self.cpu = cpu

    def __call__(self, cmd):
        out = os.path.join(self.wd, "insn-%d.count" % len(self.files))
        self.files.append(out)
        return [self.qemu, "-cpu", self.cpu, "-plugin", "%s,out=%s" % (self.plugin, out)] + cmd


def measure(proxy, qemu):
    res = {}
    qemu.reset()
    proxy.start()
    try:
        bench.get_1k(proxy.port_ec)
        bench.get_1k(proxy.port_rsa)
        time.sleep(0.5)
        c0, t0 = qemu.count(), time.monotonic()
        time.sleep(2.0)
        meter = bench_mips.Meter(qemu, (qemu.count() - c0) / (time.monotonic() - t0))
        insns, res["tls"] = meter(bench_mips.handshakes, proxy.port_ec, HANDSHAKES)
        res["hs_ec"] = insns / HANDSHAKES
        insns, _ = meter(bench_mips.handshakes, proxy.port_rsa, HANDSHAKES)
        res["hs_rsa"] = insns / HANDSHAKES
        suite = bench_mips.SUITES["aes"]
        small, _ = meter(bench_mips.download, proxy.port_ec, "/1k", suite)
        big, size = meter(bench_mips.download, proxy.port_ec, "/16m", suite)
        res["mib_aes"] = (big - small) / (size / MIB)
    finally:
        proxy.stop()
    return res


def native_cpu(proxy, n):
    """CPU seconds of the native proxy per ECDSA and per RSA handshake."""
    proxy.start()
    try:
        bench.get_1k(proxy.port_ec)
        bench.get_1k(proxy.port_rsa)
        res = {}
        for kind, port in (("ec", proxy.port_ec), ("rsa", proxy.port_rsa)):
            pids = proxy.all_pids()
            c0 = bench.cpu_seconds(pids)
            bench_mips.handshakes(port, n)
            res[kind] = (bench.cpu_seconds(pids) - c0) / n
        return res
    finally:
        proxy.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="holds camtls-{size,speed}-TRIPLE")
    ap.add_argument("--plugin", required=True, help="insn.so (tests/bench/mips-setup.sh)")
    ap.add_argument("--targets", default=",".join(QEMU))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--native", type=int, default=1000,
                    help="native x86_64 handshakes per build and round (0: none)")
    args = ap.parse_args()
    os.sched_setaffinity(0, {bench.LOAD_CORE})
    bench.Server.start_timeout = 60.0
    wd = tempfile.mkdtemp(prefix="camtls-bench-opt-")
    os.chmod(wd, 0o755)  # the backend nginx's worker runs as nobody
    backend, rows, native = None, [], {}
    try:
        certs = bench.make_certs(wd)
        backend = bench.start_backend(wd, bench.free_port())
        with open(os.path.join(wd, "www", "16m"), "wb") as f:
            f.write(os.urandom(16 * MIB))
        for triple in args.targets.split(","):
            qemu_bin, cpu = QEMU[triple]
            qemu = Qemu(shutil.which(qemu_bin), cpu, os.path.abspath(args.plugin), wd)
            res = {}
            for opt in OPTS:
                path = os.path.abspath(os.path.join(args.dir, "camtls-%s-%s" % (opt, triple)))
                if not os.path.exists(path) and opt not in ("size", "speed"):
                    continue
                proxy = bench.Camtls(wd, certs, backend.port, path)
                proxy.launcher = qemu
                rounds = []
                for rnd in range(args.rounds):
                    bench.log("bench-opt: %s %s round %d" % (triple, opt, rnd + 1))
                    rounds.append(measure(proxy, qemu))
                res[opt] = {k: sorted(r[k] for r in rounds)[len(rounds) // 2]
                            for k in ("hs_ec", "hs_rsa", "mib_aes")}
                res[opt]["size"] = os.path.getsize(path)
                res[opt]["tls"] = rounds[0]["tls"]
            rows.append((triple, cpu, res))
            if triple.startswith("x86_64") and args.native:
                for opt in res:
                    native[opt] = {"ec": [], "rsa": []}
                for rnd in range(3):  # interleaved, so all see the same machine
                    for opt in native:
                        path = os.path.join(args.dir, "camtls-%s-%s" % (opt, triple))
                        r = native_cpu(bench.Camtls(wd, certs, backend.port,
                                                    os.path.abspath(path)), args.native)
                        for k in r:
                            native[opt][k].append(r[k])
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(wd, ignore_errors=True)

    labels = [("size", "binary, bytes"), ("hs_ec", "ECDSA P-256 handshake + 1 KiB, insns"),
              ("hs_rsa", "RSA-2048 handshake + 1 KiB, insns"),
              ("mib_aes", "per MiB AES-128-GCM, insns")]
    for triple, cpu, res in rows:
        opts = [o for o in OPTS if o in res]
        print("\n%s (qemu -cpu %s)\n" % (triple, cpu))
        print("| figure | " + " | ".join(opts) + " | "
              + " | ".join("%s/size" % o for o in opts[1:]) + " |")
        print("|---|" + "---:|" * (2 * len(opts) - 1))
        for key, label in labels:
            print("| %s | " % label + " | ".join("%.0f" % res[o][key] for o in opts) + " | "
                  + " | ".join("%.3f" % (res[o][key] / res["size"][key]) for o in opts[1:])
                  + " |")
    if native:
        print("\nnative x86_64, proxy CPU per handshake + 1 KiB (median of 3 interleaved "
              "rounds of %d), relative to size:" % args.native)
        for k in ("ec", "rsa"):
            med = {o: sorted(native[o][k])[1] for o in native}
            print("  %s: " % k + ", ".join("%s %.3f (rounds %s us)" % (
                o, med[o] / med["size"], "/".join("%.0f" % (v * 1e6) for v in native[o][k]))
                for o in med))
    print("TLS: %s" % rows[0][2]["size"]["tls"] if rows else "")


if __name__ == "__main__":
    main()
