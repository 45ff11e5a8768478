#!/usr/bin/python3
"""Benchmark of skafos.zip against Info-ZIP zip/unzip, pigz, Python's zipfile and cp.

Not a test: it prints a table (median wall time of --runs runs after a warm-up, ratio to
skafos, median CPU time (user + sys: what counts when the machine is shared), output size,
peak RSS of the measured process) and the load average when the table was done. Datasets are generated into a
temporary directory and removed at the end:
  random   --mb MiB of random bytes (one file)
  floats   --mb MiB of float32 weights (gaussian; deflate saves 10-20 %)
  small    2,000 files of 4 KiB of text
Usage: tests/bench/zip/bench.py [--mb 1024] [--runs 3] [--bin build/skafos] [--only small]
       [--compare before=/path/to/older/skafos] [--tools "zip -6,cp"] [--no-extract]
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def run(argv, cwd=None):
    """Runs argv; returns (seconds, CPU seconds, peak RSS in MiB) of that process."""
    t = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, close_fds=False)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t
    if status != 0:
        raise SystemExit("failed: %s (status %d)" % (" ".join(argv), status))
    return dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def write_blocks(path, block, mb):
    with open(path, "wb") as f:
        for _ in range(max(1, (mb << 20) // len(block))):
            f.write(block)


def make_data(tmp, mb):
    rnd = os.path.join(tmp, "random")
    os.makedirs(rnd)
    with open(os.path.join(rnd, "weights.bin"), "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    flt = os.path.join(tmp, "floats")
    os.makedirs(flt)
    rng = random.Random(42)
    block = bytearray(struct.pack("<%df" % (4 << 20), *(rng.gauss(0.0, 0.05) for _ in range(4 << 20))))
    # trained weights rarely use all 23 mantissa bits: clear the lowest 5 (deflate then
    # saves 10-20 %, as on real models)
    block[0::4] = bytes(b & 0xE0 for b in block[0::4])
    write_blocks(os.path.join(flt, "weights.bin"), bytes(block), mb)
    small = os.path.join(tmp, "small")
    words = ("layer weight bias conv dense relu softmax label class token embedding "
             "attention head norm scale shift input output tensor shape").split()
    for i in range(2000):
        d = os.path.join(small, "part%02d" % (i % 20))
        os.makedirs(d, exist_ok=True)
        text = " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(900))
        with open(os.path.join(d, "f%04d.txt" % i), "w") as f:
            f.write(text[:4096])
    return {"random": rnd, "floats": flt, "small": small}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure(specs, runs, cleanup):
    """Times each (name, argv_fn, out, cwd) `runs` times, alternating the tools round by
    round so a change in the machine's load hits them all alike; round 0 warms the page
    cache and is not counted."""
    acc = {spec[0]: {"times": [], "cpus": [], "rss": 0.0, "size": None} for spec in specs}
    for i in range(runs + 1):
        for name, argv_fn, out, cwd in specs:
            cleanup()
            dt, cpu, r = run(argv_fn(), cwd=cwd)
            if i > 0:
                m = acc[name]
                m["times"].append(dt)
                m["cpus"].append(cpu)
                m["rss"] = max(m["rss"], r)
                m["size"] = os.path.getsize(out) if out and os.path.isfile(out) else None
    return [{"tool": name, "time": median(acc[name]["times"]), "cpu": median(acc[name]["cpus"]),
             "size": acc[name]["size"], "rss": acc[name]["rss"]} for name, _, _, _ in specs]


def table(title, rows, ref):
    base = next(r for r in rows if r["tool"] == ref)
    print("\n### %s\n" % title)
    print("| tool | median s | time / %s | CPU s | output MiB | size / %s | peak RSS MiB |" % (ref, ref))
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        size = "%.1f" % (r["size"] / 1048576.0) if r["size"] else "-"
        sratio = "%.3f" % (r["size"] / float(base["size"])) if r["size"] and base["size"] else "-"
        print("| %s | %.3f | %.2f | %.3f | %s | %s | %.0f |" % (r["tool"], r["time"],
              r["time"] / base["time"], r["cpu"], size, sratio, r["rss"]))
    print("\nload average: %.2f %.2f %.2f" % os.getloadavg())
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "skafos"))
    ap.add_argument("--only", default="random,floats,small")
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=BIN",
                    help="also time another skafos binary (say, the build before a change)")
    ap.add_argument("--tools", help="only these rows, comma-separated (skafos -6 always)")
    ap.add_argument("--no-extract", action="store_true", help="time creation only")
    ap.add_argument("--data", help="use the datasets already in DIR (random/, floats/, small/ "
                    "as --generate makes them) instead of generating and removing them")
    ap.add_argument("--generate", metavar="DIR", help="only generate the datasets into DIR")
    a = ap.parse_args()
    if a.generate:
        make_data(a.generate, a.mb)
        return
    script = os.path.join(HERE, "ours.lua")
    ours = [a.bin, "run", script]
    others = [(c.split("=", 1)[0], [c.split("=", 1)[1], "run", script]) for c in a.compare]
    tmp = tempfile.mkdtemp(prefix="skafos-zipbench.")
    try:
        if a.data:
            data = {k: os.path.join(os.path.abspath(a.data), k) for k in ("random", "floats", "small")}
        else:
            # generated in a child: a forked child's peak RSS starts at its parent's
            subprocess.check_call([sys.executable, __file__, "--generate", tmp, "--mb", str(a.mb)])
            data = {k: os.path.join(tmp, k) for k in ("random", "floats", "small")}
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        zo = os.path.join(out, "o.zip")

        def rm_out():
            for n in os.listdir(out):
                p = os.path.join(out, n)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

        pyzip = ("import sys, zipfile, os\n"
                 "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=6) as z:\n"
                 "    for root, dirs, files in os.walk(sys.argv[2]):\n"
                 "        for f in sorted(files):\n"
                 "            p = os.path.join(root, f)\n"
                 "            z.write(p, os.path.relpath(p, os.path.dirname(sys.argv[2])))\n")
        for ds in a.only.split(","):
            src = data[ds]
            name = os.path.basename(src)
            cwd = os.path.dirname(src)
            weights = os.path.join(src, "weights.bin")
            gz = os.path.join(out, "o.gz")
            specs = []
            for label, argv in [("skafos", ours)] + others:
                if ds == "random":
                    specs.append((label + " auto", lambda argv=argv: argv + ["create", zo, "auto", src], zo, None))
                specs.append((label + " -6", lambda argv=argv: argv + ["create", zo, "6", src], zo, None))
                specs.append((label + " -1", lambda argv=argv: argv + ["create", zo, "1", src], zo, None))
            if ds == "random":
                specs.append(("cp", lambda: ["cp", weights, zo], zo, None))
            specs.append(("zip -6", lambda: ["zip", "-q", "-r", "-6", zo, name], zo, cwd))
            specs.append(("zip -1", lambda: ["zip", "-q", "-r", "-1", zo, name], zo, cwd))
            if ds != "small":
                specs.append(("pigz -6", lambda: ["bash", "-c", "exec pigz -6 -c \"$1\" > \"$2\"", "-",
                                                  weights, gz], gz, None))
            specs.append(("python zipfile -6", lambda: ["python3", "-c", pyzip, zo, src], zo, None))
            if a.tools:
                keep = a.tools.split(",")
                specs = [sp for sp in specs if sp[0] in keep or sp[0] == "skafos -6"]
            table("%s: create (%s)" % (ds, "%d MiB" % (os.path.getsize(weights) >> 20)
                                       if ds != "small" else "2,000 x 4 KiB"),
                  measure(specs, a.runs, rm_out), "skafos -6")
            if a.no_extract:
                continue
            # extraction of the level-6 archive made by zip
            run(["zip", "-q", "-r", "-6", os.path.join(tmp, "x.zip"), name], cwd=cwd)
            xz = os.path.join(tmp, "x.zip")
            xd = os.path.join(out, "x")
            rows = measure([("skafos extract", lambda: ours + ["extract", xz, xd], None, None),
                            ("unzip", lambda: ["unzip", "-q", "-o", xz, "-d", xd], None, None)],
                           a.runs, rm_out)
            table("%s: extract" % ds, rows, "skafos extract")
            os.remove(xz)
            rm_out()
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
