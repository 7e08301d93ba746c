#!/usr/bin/env python3
"""Checks the system calls of one traced run against an architecture's floor.

    census.py --arch mips-o32 --floor 2.6.22 --table mips-o32-2.6.22.txt \
        --fallbacks fallbacks.txt --flags flags.txt --report OUT TRACE...

TRACE files are qemu-user -strace logs (`-D DIR/%d`, one per process). Every
call and every flag of flags.txt that the run makes is looked up: in the
floor table, it is fine; a call or flag newer than the floor must have a line
in fallbacks.txt whose old calls are in the table, whose bound on calls per
process holds, and, when that line says the census run proves it, which the
run did refuse (ENOSYS, EINVAL) and then went on with the old call. Writes
the census to OUT and prints one line per finding; exits 1 on any failure.
"""
import argparse
import collections
import os
import re
import sys

ERRNO = {  # ENOSYS, EINVAL as the guest sees them
    "mips-o32": {89: "ENOSYS", 22: "EINVAL"},
    "arm-eabi": {38: "ENOSYS", 22: "EINVAL"},
}
# Calls whose flags qemu prints as a number: the argument that holds them.
# O_CLOEXEC is 0x80000 on both; O_NONBLOCK differs. These flags came with
# their calls, so a fallback for the call covers them (its fcntl sets them).
NUMERIC_FLAGS = {"epoll_create1": 0, "pipe2": 1, "eventfd2": 1, "accept4": 3,
                 "timerfd_create": 1, "dup3": 2, "inotify_init1": 0, "signalfd4": 3}
FLAG_BITS = {"mips-o32": {"O_CLOEXEC": 0x80000, "O_NONBLOCK": 0x80},
             "arm-eabi": {"O_CLOEXEC": 0x80000, "O_NONBLOCK": 0x800}}
CALL = re.compile(r"(?:^|(?<=[^0-9]))(\d+) ([a-z_][a-z0-9_]*)\(")
UNKNOWN = re.compile(r"(?:^|(?<=[^0-9]))(\d+) Unknown syscall (\d+)")
RESULT = re.compile(r"\s*= (-?\d+|0x[0-9a-f]+)(?: errno=(\d+))?")


def version(s):
    return tuple(int(x) for x in s.split("."))


def data_lines(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def calls_in(text):
    """(name, args, errno) for every call in a trace's text."""
    spans = []
    for m in CALL.finditer(text):
        spans.append((m.start(), m.end(), m.group(2)))
    for m in UNKNOWN.finditer(text):
        spans.append((m.start(), m.end(), "#" + m.group(2)))
    spans.sort()
    for start, end, name in spans:
        if name.startswith("#"):
            yield name, "", None
            continue
        depth, i = 1, end
        while i < len(text) and depth:
            c = text[i]
            if c == '"':  # skip a quoted string
                i += 1
                while i < len(text) and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "\n":
                break
            i += 1
        args = text[end : i - 1]
        m = RESULT.match(text, i)
        err = int(m.group(2)) if m and m.group(2) else None
        yield name, args, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--fallbacks", required=True)
    ap.add_argument("--flags", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("traces", nargs="+")
    o = ap.parse_args()
    errnames = ERRNO[o.arch]
    floor = version(o.floor)

    table = {}  # name -> number
    for line in data_lines(o.table):
        nr, name = line.split()[:2]
        table[name] = int(nr)
    by_nr = {nr: name for name, nr in table.items()}

    fallbacks = {}
    for line in data_lines(o.fallbacks):
        key, where, old, bound, proof = line.split(None, 4)
        arches = {}
        for w in where.split(","):
            arch, _, nr = w.partition(":")
            arches[arch] = int(nr) if nr else None
        if o.arch not in arches:
            continue
        fallbacks[key] = (arches[o.arch], old, None if bound == "-" else int(bound), proof)
        if arches[o.arch] is not None:
            by_nr.setdefault(arches[o.arch], key)

    flags = collections.defaultdict(list)  # call -> [(flag, since)]
    for line in data_lines(o.flags):
        call, flag, since = line.split()
        flags[call].append((flag, version(since)))

    count = collections.Counter()
    per_process = collections.Counter()  # most in one trace
    refused = collections.Counter()
    flag_seen = collections.Counter()
    flag_refused = collections.Counter()
    other_flags = collections.Counter()  # flags that came with their call
    for path in o.traces:
        with open(path, errors="replace") as f:
            text = f.read()
        here = collections.Counter()
        for name, args, err in calls_in(text):
            if name.startswith("#"):
                name = by_nr.get(int(name[1:]), "syscall " + name[1:])
            count[name] += 1
            here[name] += 1
            if err in errnames:
                refused[(name, errnames[err])] += 1
            tokens = set(re.findall(r"[A-Z][A-Z0-9_]+", args))
            if name in NUMERIC_FLAGS:
                words = args.split(",")
                try:
                    v = int(words[NUMERIC_FLAGS[name]], 0)
                except (IndexError, ValueError):
                    v = 0
                for flag, bit in FLAG_BITS[o.arch].items():
                    if v & bit:
                        other_flags[(name, flag)] += 1
            for flag, _ in flags.get(name, ()):
                if flag in tokens:
                    flag_seen[(name, flag)] += 1
                    if errnames.get(err) == "EINVAL":
                        flag_refused[(name, flag)] += 1
        for name, n in here.items():
            per_process[name] = max(per_process[name], n)

    failures = []
    lines = []

    def old_calls_ok(old):
        if old == "-":
            return True
        # Made in the run: an old call, or a newer one that has a fallback of its own.
        return all(
            any(count[a] > 0 and (a in table or a in fallbacks) for a in alt.split("|"))
            for alt in old.split(",")
        )

    def judge(key, seen_refused):
        nr, old, bound, proof = fallbacks[key]
        kind = proof.split(None, 1)[0].rstrip(";:,")
        problems = []
        for alt in old.split(","):
            if old != "-" and not any(a in table for a in alt.split("|")):
                problems.append(f"its old call {alt} is not in the {o.floor} table either")
        call = key.split(":")[0]
        if bound is not None and ":" not in key and per_process[call] > bound:
            problems.append(f"made {per_process[call]} times by one process, at most {bound} expected")
        if kind == "census":
            if not seen_refused:
                problems.append("said to be refused in the census run, but it never was")
            elif not old_calls_ok(old):
                problems.append(f"refused, but the run never made the old call ({old})")
        elif kind == "bound" and not old_calls_ok(old):
            problems.append(f"the run never made the old call ({old})")
        how = {"census": "refused here, then", "bound": "bounded here, then"}.get(kind, "by")
        return problems, f"fallback {old}; shown {how} {proof if kind not in ('census', 'bound') else proof.split(None, 1)[1]}"

    for name in sorted(count):
        n = count[name]
        ref = ", ".join(f"{e} x{c}" for (c_name, e), c in sorted(refused.items()) if c_name == name)
        fl = ", ".join([f"{f} x{flag_seen[(name, f)]}" for f, _ in flags.get(name, ()) if flag_seen[(name, f)]]
                       + [f"{f} x{c}" for (c_name, f), c in sorted(other_flags.items()) if c_name == name])
        info = f"{n} calls, at most {per_process[name]} in one process" + (f"; refused: {ref}" if ref else "") + (
            f"; flags: {fl}" if fl else "")
        if name in table:
            lines.append(f"ok   {name} ({table[name]}): in the {o.floor} table; {info}")
        elif name in fallbacks:
            problems, how = judge(name, any(c == name for (c, _) in refused))
            for p in problems:
                failures.append(f"{name}: {p}")
            lines.append(f"{'FAIL' if problems else 'ok  '} {name}: not in {o.floor}; {how}; {info}")
        else:
            failures.append(f"{name}: not in the {o.floor} table and no fallback is known")
            lines.append(f"FAIL {name}: not in the {o.floor} table, no fallback known; {info}")
        for flag, since in flags.get(name, ()):
            if not flag_seen[(name, flag)] or since <= floor:
                continue
            key = f"{name}:{flag}"
            if key not in fallbacks:
                failures.append(f"{key}: newer than {o.floor} and no fallback is known")
                lines.append(f"FAIL {key}: flag of {'.'.join(map(str, since))}, no fallback known")
                continue
            problems, how = judge(key, flag_refused[(name, flag)] > 0)
            for p in problems:
                failures.append(f"{key}: {p}")
            lines.append(f"{'FAIL' if problems else 'ok  '} {key}: flag of {'.'.join(map(str, since))}; {how}")

    # Remembered fallbacks the run did not need at all: say so, with the old call's count.
    for key, (nr, old, bound, proof) in sorted(fallbacks.items()):
        if ":" in key or count[key] or proof.split(None, 1)[0].rstrip(";:,") != "bound":
            continue
        olds = ", ".join(f"{a} {count[a]} calls" for alt in old.split(",") for a in alt.split("|"))
        if old_calls_ok(old):
            lines.append(f"ok   {key}: not made at all (at most {bound} per process allowed); {olds}")
        else:
            failures.append(f"{key}: neither it nor its old call ({old}) was made")
            lines.append(f"FAIL {key}: not made, nor its old call ({old})")

    # std's timed futex waits (FUTEX_WAIT_BITSET, an absolute deadline on
    # CLOCK_MONOTONIC), as the old 32-bit futex call reads their
    # timespec: a deadline of 0 seconds (big-endian, a 64-bit timespec read
    # as two 32-bit words) or a fraction of a second that is always zero
    # (little-endian) is the bug src/compat.rs's futex32 fixes.
    timed = []
    for path in o.traces:
        with open(path, errors="replace") as f:
            timed += re.findall(r"futex\([^)]*WAIT_BITSET[^)]*\{tv_sec = (\d+),tv_nsec = (\d+)\}", f.read())
    if timed:
        zero_secs = sum(1 for sec, _ in timed if int(sec) == 0)
        fractions = sum(1 for _, nsec in timed if int(nsec) != 0)
        ok = zero_secs == 0 and (fractions > 0 or len(timed) < 5)
        lines.append(f"{'ok  ' if ok else 'FAIL'} futex timeouts: {len(timed)} timed waits, "
                     f"{zero_secs} with a deadline of 0 s, {fractions} with a fraction of a second")
        if not ok:
            failures.append("futex timeouts read wrongly by the 32-bit call")

    os.makedirs(os.path.dirname(os.path.abspath(o.report)), exist_ok=True)
    with open(o.report, "w") as f:
        f.write(f"# census: {o.arch}, floor {o.floor}, {len(o.traces)} processes, {sum(count.values())} calls\n")
        f.write("\n".join(lines) + "\n")
    for line in lines:
        print(line)
    for fail in failures:
        print(f"FAIL {o.arch} {o.floor}: {fail}")
    print(f"{o.arch} on {o.floor}: {len(count)} distinct calls in {len(o.traces)} processes, "
          f"{len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
