#!/usr/bin/env python3
"""End-to-end benchmark of `skafos publish` and `skafos fetch` against the tools users would
otherwise use, on a fresh emulator, with datasets generated on the fly.

usage: bench.py --skafos PATH [--runs N] [--results FILE] [--smoke] [--datasets a,b] [--keep]

Every figure is the median of N runs; the tools of a phase run in turn within a round and
the order rotates every round, so each tool runs once in each position. Wall time is
measured around the whole process tree; peak RSS comes from GNU time (%M) over the same
tree, which for a script is the largest single process of it (its steps run one after
another). Every run writes to a fresh output path; the outputs of a round (and the objects
the emulator stored for it) are kept until the round ends, then deleted.

Exits 1 if any run failed or the tables could not be written.
"""
import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
GNU_TIME = "/usr/bin/time"
HAVE_GNU_TIME = os.access(GNU_TIME, os.X_OK)
MIB = 1 << 20
ORG, APP, MODEL, TOKEN = "demo-org", "demo-app", "demo-model", "demo-token"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- datasets

# Top byte of a little-endian float32 (sign and the high 7 exponent bits) for weights of
# magnitude 2^-7 .. 2^-1, weighted like a trained layer's; the other three bytes are random.
WEIGHT_TOP = bytes(sum(([v] * n for v, n in [
    (0x3a, 8), (0x3b, 24), (0x3c, 48), (0x3d, 48), (0xba, 8), (0xbb, 24), (0xbc, 48), (0xbd, 48)]), []))
PRUNED = 0.10  # fraction of 64-weight blocks that are zero (pruned): deflate -6 saves ~15%
CHUNK = 16 * MIB


def write_random(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n


def weights_bytes(rng, n):
    buf = bytearray(rng.randbytes(n))
    buf[3::4] = rng.randbytes(len(buf[3::4])).translate(WEIGHT_TOP)
    blocks = n // 256
    zero = bytes(256)
    for b in rng.sample(range(blocks), int(blocks * PRUNED)):
        buf[b * 256:(b + 1) * 256] = zero
    return bytes(buf)


def write_weights(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(weights_bytes(rng, n))
            left -= n


def small_file_text(rng, size):
    """A JSON-ish text file of about `size` bytes, as a compiled model's small files are."""
    parts = ['{"layer": "layer_%d", "type": "%s", "params": [' % (rng.randrange(10000),
                                                                  rng.choice(["conv", "dense", "norm", "attn"]))]
    n = len(parts[0])
    while n < size - 4:
        s = "%.6f, " % rng.gauss(0, 0.05)
        parts.append(s)
        n += len(s)
    parts.append("0]}\n")
    return "".join(parts).encode()


def write_coreml(root, nfiles, weights_size, seed):
    """A Core ML-style package: nfiles small files of ~4 KiB and one large weights file."""
    rng = random.Random(seed)
    pkg = os.path.join(root, "Model.mlpackage")
    data = os.path.join(pkg, "Data", "com.apple.CoreML")
    os.makedirs(os.path.join(data, "weights"))
    with open(os.path.join(pkg, "Manifest.json"), "w") as f:
        json.dump({"fileFormatVersion": "1.0.0", "itemInfoEntries": {}, "rootModelIdentifier": "model"}, f)
    write_weights(os.path.join(data, "weights", "weight.bin"), weights_size, seed + 1)
    for i in range(nfiles - 1):  # the manifest counts as one of the small files
        d = os.path.join(data, "assets", "group-%02d" % (i // 50))
        if i % 50 == 0:
            os.makedirs(d)
        with open(os.path.join(d, "item-%04d.json" % i), "wb") as f:
            f.write(small_file_text(rng, rng.randint(3 * 1024, 5 * 1024)))
    return "Model.mlpackage"


def tree_digest(path, with_hashes):
    """(number of files, total bytes, sorted sha256 list or None) of a file or a tree."""
    count = total = 0
    hashes = [] if with_hashes else None
    paths = [path] if os.path.isfile(path) else (
        os.path.join(r, n) for r, _, names in os.walk(path) for n in names)
    for p in paths:
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        count += 1
        total += os.path.getsize(p)
        if with_hashes:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(MIB), b""):
                    h.update(chunk)
            hashes.append(h.hexdigest())
    return count, total, sorted(hashes) if with_hashes else None


class Dataset:
    def __init__(self, key, title, directory, name, level6_ref):
        self.key, self.title, self.dir, self.name = key, title, directory, name
        self.path = os.path.join(directory, name)
        self.level6_ref = level6_ref  # compare competitors with `skafos --level 6`
        self.count, self.bytes, self.hashes = tree_digest(self.path, False)


def make_datasets(work, args):
    specs = {
        "random": ("%s of random bytes" % human(args.size), "random.bin",
                   lambda d: write_random(os.path.join(d, "random.bin"), args.size, 1)),
        "weights": ("%s of float32 weights (deflate -6 saves 10-20%%)" % human(args.size), "weights.bin",
                    lambda d: write_weights(os.path.join(d, "weights.bin"), args.size, 2)),
        "coreml": ("Core ML-style package: %d files of ~4 KiB + one %s weights file"
                   % (args.files, human(args.weights_size)), "Model.mlpackage",
                   lambda d: write_coreml(d, args.files, args.weights_size, 3)),
    }
    out = []
    for key in args.datasets:
        title, name, gen = specs[key]
        d = os.path.join(work, "data", key)
        os.makedirs(d)
        t0 = time.perf_counter()
        gen(d)
        ds = Dataset(key, title, d, name, key == "weights")
        if args.smoke:
            ds.hashes = tree_digest(ds.path, True)[2]
        log("dataset %s: %d files, %s, generated in %.1f s" % (key, ds.count, human(ds.bytes),
                                                              time.perf_counter() - t0))
        out.append(ds)
    return out


def human(n):
    if n >= 1 << 30 and n % (1 << 30) == 0:
        return "%d GiB" % (n >> 30)
    return "%.1f MiB" % (n / MIB) if n % MIB else "%d MiB" % (n // MIB)


# --------------------------------------------------------------------------- emulator

class Emulator:
    def __init__(self, work):
        self.data = os.path.join(work, "emulator")
        self.err = open(os.path.join(work, "emulator.log"), "w")
        self.proc = subprocess.Popen(
            ["node", os.path.join(ROOT, "tests", "emulator", "server.js"), "--data", self.data,
             "--url-ttl", "86400"], stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the emulator did not start (see %s)" % self.err.name)
        self.urls = json.loads(line)
        self.objects = os.path.join(self.data, "objects")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()

    def model_path(self):
        return "organizations/%s/apps/%s/models/%s" % (ORG, APP, MODEL)

    def versions(self):
        url = "%s/%s/model_versions?order_by=version" % (self.urls["api"], self.model_path())
        req = urllib.request.Request(url, headers={"X-API-TOKEN": TOKEN})
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def latest_presigned(self):
        """The presigned GET the download host redirects to for the latest version."""
        u = urllib.parse.urlsplit("%s/%s" % (self.urls["download"], self.model_path()))
        c = http.client.HTTPConnection(u.hostname, u.port)
        c.request("GET", u.path, headers={"X-API-TOKEN": TOKEN})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 302:
            raise RuntimeError("download host answered %d" % r.status)
        return r.getheader("Location")

    def drop_objects(self, keep):
        """Delete stored archives no later run needs (the harness owns this data directory)."""
        for name in os.listdir(self.objects):
            if name not in keep:
                os.unlink(os.path.join(self.objects, name))

    def object_files(self):
        return set(os.listdir(self.objects))


# --------------------------------------------------------------------------- running

class Run:
    def __init__(self, ok, wall, rss_kib, size=None, note="", extra=None):
        self.ok, self.wall, self.rss_kib, self.size, self.note = ok, wall, rss_kib, size, note
        self.extra = extra or {}


class Tool:
    """One competitor: argv(run_dir) builds the command; check(run_dir, proc) -> (ok, size, note)."""

    def __init__(self, label, argv, cwd=None, check=None, env=None, ref=False, direct=False):
        self.label, self.argv, self.cwd, self.check = label, argv, cwd, check
        self.env, self.ref = env or {}, ref
        self.direct = direct  # time it without GNU time in between; RSS from a second run
        self.runs = []


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.failures = []
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith("SKAFOS_")}
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, ".config"))
        self.base_env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))

    def pool(self, ds):
        """Scratch to free before each run: more than any run of this dataset writes (an
        archive, the emulator's copy of it, an extracted tree or a whole archive in memory)."""
        return 0 if self.args.no_prefill else 3 * ds.bytes + 64 * MIB

    def env(self, emu, extra=None):
        e = dict(self.base_env)
        e.update(SKAFOS_API_URL=emu.urls["api"], SKAFOS_DOWNLOAD_URL=emu.urls["download"],
                 SKAFOS_API_TOKEN=TOKEN, SKAFOS_ORG_NAME=ORG, SKAFOS_APP_NAME=APP, SKAFOS_MODEL_NAME=MODEL)
        e.update(extra or {})
        return e

    def run_once(self, tool, run_dir, env, timeout):
        os.makedirs(run_dir)
        cmd = tool.argv(run_dir)
        tfile = os.path.join(run_dir, ".time")
        rss = None
        with open(os.path.join(run_dir, ".stdout"), "wb") as out, \
                open(os.path.join(run_dir, ".stderr"), "wb") as err:
            if HAVE_GNU_TIME and not tool.direct:
                t0 = time.perf_counter()
                try:
                    rc = subprocess.run([GNU_TIME, "-f", "%e %M", "-o", tfile] + cmd, cwd=tool.cwd or run_dir,
                                        env=env, stdout=out, stderr=err, timeout=timeout).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                wall = time.perf_counter() - t0
                try:
                    with open(tfile) as f:
                        rss = int(f.read().strip().splitlines()[-1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
            else:  # wall time only: a forked child's maxrss starts at this Python's, so no RSS
                t0 = time.perf_counter()
                try:
                    rc = subprocess.run(cmd, cwd=tool.cwd or run_dir, env=env, stdout=out, stderr=err,
                                        timeout=timeout).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                wall = time.perf_counter() - t0
        if tool.direct and HAVE_GNU_TIME and rc == 0:
            with open(os.path.join(run_dir, ".stdout2"), "wb") as out:
                subprocess.run([GNU_TIME, "-f", "%e %M", "-o", tfile] + cmd, cwd=tool.cwd or run_dir, env=env,
                               stdout=out, stderr=subprocess.DEVNULL, timeout=timeout)
            try:
                with open(tfile) as f:
                    rss = int(f.read().strip().splitlines()[-1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
        if rc != 0:
            with open(os.path.join(run_dir, ".stderr"), errors="replace") as f:
                tail = f.read()[-600:].strip()
            return Run(False, wall, rss, note="exit %s: %s" % (rc, tail))
        ok, size, note, extra = True, None, "", {}
        if tool.check:
            ok, size, note, extra = tool.check(run_dir)
        return Run(ok, wall, rss, size, note, extra)

    def prefill(self, nbytes):
        """Write and delete nbytes of scratch, so that the next run writes into memory just
        freed whatever ran before it (see the memory regime note of the report)."""
        if nbytes <= 0:
            return
        path = os.path.join(self.work, "prefill")
        block = bytes(MIB)
        with open(path, "wb") as f:
            for _ in range(nbytes // MIB):
                f.write(block)
        os.unlink(path)

    def rounds(self, phase, tools, runs, env_for, after_run, stem, prefill=0):
        """Run `tools` `runs` times, alternated, rotating the order every round. Each run's
        outputs are deleted right after it (after_run cleans what it left elsewhere)."""
        n = len(tools)
        for r in range(runs):
            order = tools[r % n:] + tools[:r % n]
            round_dir = os.path.join(self.work, "runs", "%s-r%d" % (stem, r + 1))
            for i, tool in enumerate(order):
                run_dir = os.path.join(round_dir, "%02d" % i)
                self.prefill(prefill)
                run = self.run_once(tool, run_dir, env_for(tool), self.args.timeout)
                shutil.rmtree(run_dir, ignore_errors=True)
                after_run()
                tool.runs.append(run)
                rss = "%.1f MiB" % (run.rss_kib / 1024) if run.rss_kib else "?"
                log("  %s r%d %-34s %8.3f s  %10s  %s" % (phase, r + 1, tool.label, run.wall, rss,
                                                         "ok" if run.ok else "FAILED " + run.note))
                if not run.ok:
                    self.failures.append("%s: %s run %d: %s" % (stem, tool.label, r + 1, run.note))
            shutil.rmtree(round_dir, ignore_errors=True)


def skafos_json(run_dir):
    try:
        with open(os.path.join(run_dir, ".stdout")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- phases

def publish_phase(b, emu, ds):
    args = b.args
    sk = args.skafos
    state = {"count": len(emu.versions())}

    def check_published(run_dir):
        vs = emu.versions()
        if len(vs) != state["count"] + 1:
            return False, None, "expected one new finished version, found %d" % (len(vs) - state["count"]), {}
        state["count"] = len(vs)
        newest = max(vs, key=lambda v: v["version"])
        return True, newest.get("size"), "", {"json": skafos_json(run_dir)}

    pub = lambda label, argv, ref=False: Tool(label, argv, cwd=ds.dir, check=check_published, ref=ref)
    script = os.path.join(HERE, "publish.sh")
    tools = []
    tools.append(pub("skafos publish (auto)",
                     lambda d: [sk, "publish", "--json", ds.name], ref=not ds.level6_ref))
    if ds.level6_ref:
        tools.append(pub("skafos publish --level 6",
                         lambda d: [sk, "publish", "--json", "--level", "6", ds.name], ref=True))
    tools += [
        pub("pigz -6 + curl -T" if os.path.isfile(ds.path) else "tar, pigz -6 + curl -T",
            lambda d: ["sh", script, "pigz6", os.path.join(d, "out.gz"), ds.name]),
        pub("zip -r -6 + curl -T", lambda d: ["sh", script, "zip6", os.path.join(d, "out.zip"), ds.name]),
    ]
    # On random bytes zip -1 does the same thing as zip -6 (deflate, then store what did not
    # shrink); the full run leaves it out there to stay near 40 minutes.
    if ds.key != "random" or args.smoke:
        tools.append(pub("zip -r -1 + curl -T", lambda d: ["sh", script, "zip1", os.path.join(d, "out.zip"), ds.name]))
    tools += [
        pub("Python zipfile + requests.put",
            lambda d: [sys.executable, os.path.join(HERE, "sdk_publish.py"), os.path.join(d, "out.zip"), ds.name]),
        pub("floor: curl -T of the raw bytes" if os.path.isfile(ds.path) else "floor: tar, then curl -T (raw bytes)",
            lambda d: ["sh", script, "raw", os.path.join(d, "out.tar"), ds.name]),
    ]
    # What skafos must do besides sending (MD5 for the ETag check, SHA-256 for the result),
    # done by openssl beside curl: the floor for any client that verifies what it uploaded.
    if ds.key == "random" or args.smoke:
        tools.append(pub("floor with hashes: curl -T + openssl MD5, SHA-256",
                         lambda d: ["sh", script, "rawhash", os.path.join(d, "out.tar"), ds.name]))
    limit = min(ds.bytes, args.zlib_limit)

    def check_zlib(run_dir):
        j = skafos_json(run_dir)
        ok = j.get("bytes") == limit
        return ok, None, "" if ok else "compressed %s bytes" % j.get("bytes"), {"json": j}

    floors = [
        Tool("floor: read the input (page cache)", lambda d: ["sh", "-c", 'find "$0" -type f -exec cat {} + >/dev/null',
                                                              ds.name], cwd=ds.dir),
        Tool("floor: zlib -6 on one core", lambda d: [sys.executable, os.path.join(HERE, "zlib_floor.py"), "6",
                                                      str(limit), ds.name], cwd=ds.dir, check=check_zlib),
    ]
    keep = emu.object_files()
    b.rounds("publish", tools + floors, args.runs, lambda t: b.env(emu), lambda: emu.drop_objects(keep),
             "%s-publish" % ds.key, prefill=b.pool(ds))
    return tools, floors


def fetch_phase(b, emu, ds):
    """Publish the fetch targets (untimed), then time the fetch tools on the latest version."""
    args = b.args
    env = b.env(emu)
    prep = os.path.join(b.work, "runs", "%s-prep" % ds.key)
    os.makedirs(prep)
    # The raw bytes as a version of their own, for the GET floor; then the archive to fetch.
    raw_target = os.path.join(prep, "raw.tar")
    subprocess.run(["sh", os.path.join(HERE, "publish.sh"), "raw", raw_target, ds.name], cwd=ds.dir, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    raw_url = emu.latest_presigned()
    raw_size = emu.versions()[-1]["size"]
    note = ""
    p = subprocess.run([args.skafos, "publish", "--json", ds.name], cwd=ds.dir, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        note = "skafos publish failed (%s), so the fetched archive is zip -6's" % p.stderr.decode()[-200:].strip()
        log("  " + note)
        b.failures.append("%s: fetch target: %s" % (ds.key, note))
        subprocess.run(["sh", os.path.join(HERE, "publish.sh"), "zip6", os.path.join(prep, "t.zip"), ds.name],
                       cwd=ds.dir, env=env, check=True, stdout=subprocess.DEVNULL)
    archive_size = max(emu.versions(), key=lambda v: v["version"])["size"]

    def check_tree(sub, kept=True):
        def check(run_dir):
            size = os.path.getsize(os.path.join(run_dir, "out.zip")) if kept else archive_size
            if kept and size != archive_size:
                return False, size, "archive is %d bytes, expected %d" % (size, archive_size), {}
            count, total, hashes = tree_digest(os.path.join(run_dir, sub), args.smoke)
            if (count, total) != (ds.count, ds.bytes) or (args.smoke and hashes != ds.hashes):
                return False, size, "extracted %d files, %d bytes: not the input" % (count, total), {}
            return True, size, "", {}
        return check

    def check_size(name, want):
        def check(run_dir):
            size = os.path.getsize(os.path.join(run_dir, name))
            return size == want, size, "" if size == want else "got %d bytes, expected %d" % (size, want), {}
        return check

    script = os.path.join(HERE, "fetch.sh")
    tools = [
        Tool("skafos fetch --unzip DIR (no archive kept)",
             lambda d: [args.skafos, "fetch", "--json", "--unzip", os.path.join(d, "x")],
             check=check_tree("x", kept=False), ref=True),
        Tool("skafos fetch -o OUT.zip --unzip DIR", lambda d: [args.skafos, "fetch", "--json", "-o",
                                                             os.path.join(d, "out.zip"), "--unzip",
                                                             os.path.join(d, "x"), "--force"],
             check=check_tree("x")),
        Tool("curl -L -o + unzip", lambda d: ["sh", script, "unzip", os.path.join(d, "out.zip"), os.path.join(d, "x")],
             check=check_tree("x")),
        Tool("curl -L -o (archive only)", lambda d: ["sh", script, "curl", os.path.join(d, "out.zip"), "-"],
             check=check_size("out.zip", archive_size)),
        Tool("Python requests stream + extractall",
             lambda d: [sys.executable, os.path.join(HERE, "sdk_fetch.py"), os.path.join(d, "out.zip"),
                        os.path.join(d, "x")], check=check_tree("x")),
        Tool("floor: curl GET of the raw bytes", lambda d: ["sh", script, "url", os.path.join(d, "raw"), "-"],
             check=check_size("raw", raw_size), env={"BENCH_URL": raw_url}),
    ]
    b.rounds("fetch", tools, args.runs, lambda t: b.env(emu, t.env), lambda: None, "%s-fetch" % ds.key,
             prefill=b.pool(ds))
    shutil.rmtree(prep, ignore_errors=True)
    return tools, note, archive_size


def cli_phase(b, emu):
    """skafos --version alone; skafos versions against one curl of the same request."""
    args = b.args
    runs = args.cli_runs
    api = "%s/%s/model_versions?order_by=version" % (emu.urls["api"], emu.model_path())
    version = [
        Tool("skafos --version", lambda d: [args.skafos, "--version"], ref=True, direct=True),
        Tool("floor: curl --version (the same libcurl and its libraries)", lambda d: ["curl", "--version"],
             direct=True),
        Tool("floor: lua5.4 -e '' (Lua alone)", lambda d: ["lua5.4", "-e", ""], direct=True),
        Tool("floor: /bin/true (process start)", lambda d: ["/bin/true"], direct=True),
    ]
    if not shutil.which("lua5.4"):
        del version[2]
    listing = [
        Tool("skafos versions", lambda d: [args.skafos, "versions"], ref=True, direct=True),
        Tool("curl of the same request (E7)",
             lambda d: ["curl", "-sS", "-f", "-o", os.path.join(d, "out.json"), "-H", "X-API-TOKEN: " + TOKEN, api],
             direct=True),
    ]
    b.rounds("cli", version, runs, lambda t: b.env(emu), lambda: None, "cli-version")  # no prefill: tiny
    b.rounds("cli", listing, runs, lambda t: b.env(emu), lambda: None, "cli-versions")
    return version, listing, len(emu.versions())


# --------------------------------------------------------------------------- report

def med(tool, attr="wall"):
    vals = [getattr(r, attr) for r in tool.runs if r.ok and getattr(r, attr) is not None]
    return statistics.median(vals) if vals else None


def rss_max(tool):
    vals = [r.rss_kib for r in tool.runs if r.ok and r.rss_kib]
    return max(vals) / 1024 if vals else None


def fmt_s(x):
    if x is None:
        return "n/a"
    return "%.3f" % x if x < 10 else "%.1f" % x


def fmt_ms(x):
    return "n/a" if x is None else "%.1f" % (x * 1000)


def table(title, tools, sizes=True, ms=False, ref=None):
    ref = ref or next((t for t in tools if t.ref), None)
    ref_med = med(ref) if ref else None
    unit = "ms" if ms else "s"
    fmt = fmt_ms if ms else fmt_s
    head = "| %s | median %s | vs skafos | min-max %s | peak RSS MiB (max) |%s" % (
        title, unit, unit, " archive MiB |" if sizes else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for t in tools:
        m = med(t)
        ok = [r for r in t.runs if r.ok]
        if t is ref:
            ratio = "1.00 (ref)"
        elif m is not None and ref_med:
            ratio = "%.2f×" % (m / ref_med)
        else:
            ratio = "n/a"
        span = "%s-%s" % (fmt(min(r.wall for r in ok)), fmt(max(r.wall for r in ok))) if ok else "n/a"
        rss = rss_max(t)
        failed = len(t.runs) - len(ok)
        name = t.label + (" (%d of %d runs failed)" % (failed, len(t.runs)) if failed else "")
        row = "| %s | %s | %s | %s | %s |" % (name, fmt(m), ratio, span, "%.1f" % rss if rss else "n/a")
        if sizes:
            size = med(t, "size")
            row += " %s |" % ("%.1f" % (size / MIB) if size else "")
        lines.append(row)
    return "\n".join(lines)


def ratio(a, b):
    return a / b if a is not None and b else None


def targets(results, cli):
    """Where we stand against each target of the issue, as ratios from this run."""
    rows = []

    def add(target, value, ok, how):
        rows.append("| %s | %s | %s | %s |" % (target, value, {True: "yes", False: "**no**", None: "n/a"}[ok], how))

    def find(tools, prefix):
        return next((t for t in tools if t.label.startswith(prefix)), None)

    def r2(x):
        return "n/a" if x is None else "%.2f×" % x

    r = results.get("random")
    if r:
        pub, fet = r["publish"], r["fetch"]
        sk, raw = find(pub, "skafos publish (auto)"), find(pub, "floor: curl -T")
        x = ratio(med(sk), med(raw))
        add("random: publish ≤ 1.1× curl -T of the raw bytes", r2(x), x is not None and x <= 1.1,
            "%s s / %s s" % (fmt_s(med(sk)), fmt_s(med(raw))))
        hashed = find(pub, "floor with hashes")
        if hashed:
            x = ratio(med(sk), med(hashed))
            add("random: publish against curl -T with openssl hashing the same bytes (context)", r2(x), None,
                "%s s / %s s" % (fmt_s(med(sk)), fmt_s(med(hashed))))
        cu, co = find(fet, "curl -L -o + unzip"), find(fet, "curl -L -o (archive")
        for sf, how in ((find(fet, "skafos fetch --unzip"), "--unzip"), (find(fet, "skafos fetch -o"), "-o --unzip")):
            x = ratio(med(sf), med(cu))
            add("random: fetch %s ≤ 0.5× curl -o + unzip" % how, r2(x), x is not None and x <= 0.5,
                "%s s / %s s" % (fmt_s(med(sf)), fmt_s(med(cu))))
            x = ratio(med(sf), med(co))
            add("random: fetch %s ≤ 1.5× curl -o of the archive" % how, r2(x), x is not None and x <= 1.5,
                "%s s / %s s" % (fmt_s(med(sf)), fmt_s(med(co))))
    w = results.get("weights")
    if w:
        pub = w["publish"]
        s6, z6, pg = find(pub, "skafos publish --level 6"), find(pub, "zip -r -6"), find(pub, "pigz")
        x = ratio(med(s6), med(z6))
        add("weights -6: publish ≤ 0.5× zip -6 + curl", r2(x), x is not None and x <= 0.5,
            "%s s / %s s" % (fmt_s(med(s6)), fmt_s(med(z6))))
        x = ratio(med(s6), med(pg))
        add("weights -6: publish ≤ 1.1× pigz -6 + curl", r2(x), x is not None and x <= 1.1,
            "%s s / %s s" % (fmt_s(med(s6)), fmt_s(med(pg))))
        a, zs = med(s6, "size"), med(z6, "size")
        x = ratio(a, zs)
        add("weights -6: archive within 1% of zip -6", "n/a" if x is None else "%.4f×" % x,
            x is not None and x <= 1.01, "%s / %s bytes" % (a and int(a), zs and int(zs)))
        au = find(pub, "skafos publish (auto)")
        if au and med(au):
            add("weights auto: time and size it chose", "%s s, %.1f MiB" % (fmt_s(med(au)), med(au, "size") / MIB),
                None, "%.2f× the -6 time, %.3f× the -6 size" % (med(au) / med(s6), med(au, "size") / a)
                if med(s6) and a else "")
    c = results.get("coreml")
    if c:
        pub = c["publish"]
        z6 = find(pub, "zip -r -6")
        for label in ("skafos publish (auto)", "skafos publish --level 6"):
            sk = find(pub, label)
            if not sk:
                continue
            x = ratio(med(z6), med(sk))
            add("%d small files + weights: publish %s≥ 1.5× faster than zip -r -6 + curl"
                % (c["count"] - 1, label.replace("skafos publish ", "").replace("(auto)", "")),
                "%s faster" % r2(x), x is not None and x >= 1.5, "%s s / %s s" % (fmt_s(med(z6)), fmt_s(med(sk))))
    skafos_runs = [run for res in results.values() for t in res["publish"] + res["fetch"]
                   if t.label.startswith("skafos") for run in t.runs if run.ok and run.rss_kib]
    if cli:
        skafos_runs += [run for t in cli[0] + cli[1] if t.label.startswith("skafos") for run in t.runs
                        if run.ok and run.rss_kib]
    if skafos_runs:
        top = max(r.rss_kib for r in skafos_runs) / 1024
        add("peak RSS ≤ 32 MiB for every skafos run", "%.1f MiB (max of %d runs)" % (top, len(skafos_runs)),
            top <= 32, "GNU time %M")
    if cli:
        v = med(cli[0][0])
        add("skafos --version median ≤ 5 ms", "%s ms" % fmt_ms(v), v is not None and v <= 0.005, "")
        sv, cv = med(cli[1][0]), med(cli[1][1])
        x = ratio(sv, cv)
        add("skafos versions ≤ 1.2× one curl of the same request", r2(x), x is not None and x <= 1.2,
            "%s ms / %s ms" % (fmt_ms(sv), fmt_ms(cv)))
    return "\n".join(["| target | measured | met | from |", "|---|---|---|---|"] + rows)


def first_line(argv, line=0):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
        return lines[line] if len(lines) > line else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        mem = "%.1f GiB" % (kib / (1 << 20))
    except (OSError, StopIteration, ValueError):
        pass
    return "%d cores, %s, %s RAM, Linux %s (%s)" % (os.cpu_count(), model, mem, platform.release(), platform.machine())


def versions(args):
    import zlib
    try:
        import requests
        req = requests.__version__
    except ImportError:
        req = "missing"
    return [
        ("skafos", "%s, tree %s when the run started (the binary: %s, built %s)"
         % (first_line([args.skafos, "--version"]), args.tree, args.skafos_src, args.skafos_built)),
        ("curl", first_line(["curl", "--version"])),
        ("zip", first_line(["zip", "-v"], 1)),
        ("unzip", first_line(["unzip", "-v"])),
        ("pigz", first_line(["pigz", "--version"])),
        ("tar", first_line(["tar", "--version"])),
        ("Python", "%s (%s), requests %s, zlib %s" % (platform.python_version(), sys.executable, req,
                                                      zlib.ZLIB_RUNTIME_VERSION)),
        ("node (emulator)", first_line(["node", "--version"])),
        ("peak RSS from", "GNU time %s" % first_line(["dpkg-query", "-W", "-f", "${Version}", "time"])
         if HAVE_GNU_TIME else "not measured: GNU time (Debian package time) is not installed"),
    ]


def report(args, datasets, results, cli, started, elapsed):
    out = ["# End-to-end benchmarks", ""]
    out.append("Written by `%s` (%s)." % ("make bench" if not args.smoke else "the smoke test",
                                          "smoke sizes, 1 run: not a measurement" if args.smoke else
                                          "%d alternated runs per figure" % args.runs))
    out += ["", "- date: %s (%.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(), elapsed / 60),
            "- machine: %s" % machine(),
            "- load average (1, 5, 15 min; other work shares this machine): %s at the start, %s at the end"
            % (args.load_start, " ".join("%.2f" % x for x in os.getloadavg()))]
    out += ["- %s: %s" % kv for kv in versions(args)]
    out += ["", "How to read these tables:", "",
            "- Each time is the median of %d runs, wall clock around the whole process tree, the three API calls "
            "included (create, PUT to the presigned URL, finalize; fetch: the download host's redirect). "
            "\"vs skafos\" is the tool's median over skafos's (ref) median: above 1 means skafos is faster."
            % args.runs,
            "- Runs alternate: within a round every tool runs once, and the order rotates every round.",
            "- Memory regime: the same for every tool. On this machine writing into memory that was not just "
            "freed costs about 2-3 s per GiB more than reusing memory just freed, and which one a run gets "
            "depends on what ran before it. So every run writes to a fresh output path, its outputs (and the "
            "archive the emulator stored) are deleted right after it, and %s"
            % ("just before every run the harness writes and deletes %s of scratch: every tool writes into "
               "memory just freed (the fast regime; a one-shot run on a machine that has been idle can be "
               "slower by up to ~2.7 s per GiB written, which weighs most on the tools that write the most)."
               % "three times the dataset's size" if not args.no_prefill else
               "nothing else is done, so a run reuses what the run before it freed."),
            "- The command-line figures (milliseconds) are timed without GNU time in between, so they include "
            "only the harness's own process start (see the /bin/true row); their RSS comes from one more run "
            "under GNU time.",
            "- Peak RSS is GNU time's %M over the whole process tree: for a script (curl, zip, unzip run one "
            "after another) that is the largest single process, not a sum. The maximum over the runs is shown.",
            "- The emulator (Node.js, on the same 2 cores) receives and stores every upload and serves every "
            "download, so its CPU time is in every figure; the floor rows show what it and the disk allow.",
            "- The zlib floor compresses the first %s of the input on one core and is scaled to the whole input "
            "(its archive column is empty); \"read the input\" reads from the page cache."
            % human(args.zlib_limit),
            ""]
    out += ["## Targets", "", targets(results, cli), ""]
    for ds in datasets:
        res = results[ds.key]
        out += ["## %s" % ds.title, "", "%d file%s, %s (%d bytes)." % (ds.count, "" if ds.count == 1 else "s", human(ds.bytes), ds.bytes), ""]
        out += [table("publish", res["publish"]), "", table("floor", res["floors"], sizes=False,
                                                                ref=next((t for t in res["publish"] if t.ref), None)), ""]
        auto = next((t for t in res["publish"] if t.label == "skafos publish (auto)"), None)
        if auto and auto.runs and auto.runs[-1].extra.get("json"):
            j = auto.runs[-1].extra["json"]
            keys = ("bytes", "streamed", "level", "seconds")
            out += ["skafos publish (auto) reported: %s" % ", ".join("%s=%s" % (k, json.dumps(j[k])) for k in keys
                                                                      if k in j), ""]
        out += [table("fetch (%s archive)" % human(res["archive_size"]), res["fetch"]), ""]
        if res["note"]:
            out += ["Note: " + res["note"], ""]
    if cli:
        out += ["## Command line", "", "The model has %d versions when these run." % cli[2], "",
                table("", cli[0], sizes=False, ms=True), "", table("", cli[1], sizes=False, ms=True), ""]
    return "\n".join(out)


def scale_zlib(floors, ds, limit):
    """Express the zlib floor as the time for the whole input at the measured speed."""
    t = next(t for t in floors if t.label.startswith("floor: zlib"))
    for r in t.runs:
        j = r.extra.get("json") or {}
        if r.ok and j.get("seconds"):
            r.wall = j["seconds"] * ds.bytes / j["bytes"]
    t.label = "floor: zlib -6 on one core (%.0f MiB/s)" % (ds.bytes / MIB / med(t)) if med(t) else t.label


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skafos", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cli-runs", type=int, default=21)
    ap.add_argument("--size-mib", type=float, default=1024)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--weights-mib", type=float, default=200)
    ap.add_argument("--zlib-limit-mib", type=float, default=128)
    ap.add_argument("--datasets", default="random,weights,coreml")
    ap.add_argument("--results", help="write the report here (default: only print it)")
    ap.add_argument("--smoke", action="store_true", help="a few MiB, 1 run, contents verified")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-prefill", action="store_true",
                    help="do not free scratch memory before each run (see the memory regime note)")
    args = ap.parse_args()
    if args.smoke:
        args.runs, args.cli_runs, args.size_mib, args.files, args.weights_mib = 1, 1, 4, 50, 2
        args.timeout = min(args.timeout, 120)
    args.size, args.weights_size = int(args.size_mib * MIB), int(args.weights_mib * MIB)
    args.zlib_limit = int(args.zlib_limit_mib * MIB)
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.skafos = os.path.abspath(args.skafos)
    if not os.access(args.skafos, os.X_OK):
        raise SystemExit("bench: %s is not there" % args.skafos)
    try:
        import requests  # noqa: F401 (the Python competitors need it)
    except ImportError:
        raise SystemExit("bench: %s has no requests module (Debian: python3-requests)" % sys.executable)

    # Stop cleanly (emulator, work directory) on SIGTERM, and on SIGINT even when started in
    # the background, where the shell ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    started = datetime.datetime.now().astimezone()
    args.load_start = " ".join("%.2f" % x for x in os.getloadavg())
    args.tree = first_line(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    args.skafos_src = os.path.relpath(args.skafos, ROOT) if args.skafos.startswith(ROOT + os.sep) else args.skafos
    args.skafos_built = datetime.datetime.fromtimestamp(os.path.getmtime(args.skafos)).astimezone().strftime(
        "%Y-%m-%d %H:%M %Z")
    t_start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="skafos-bench-")
    log("bench: work directory %s" % work)
    emu = None
    try:
        # A copy, so that a rebuild of the tree during a long run does not change the binary.
        binary = os.path.join(work, "bin", "skafos")
        os.makedirs(os.path.dirname(binary))
        shutil.copy2(args.skafos, binary)
        src_dir = os.path.dirname(args.skafos)  # and the libraries it loads from beside itself
        for name in os.listdir(src_dir):
            if name.startswith("libskafos") and ".so" in name:
                shutil.copy2(os.path.join(src_dir, name), os.path.join(os.path.dirname(binary), name),
                             follow_symlinks=False)
        args.skafos = binary
        datasets = make_datasets(work, args)
        emu = Emulator(work)
        b = Bench(args, work)
        results = {}
        for ds in datasets:
            log("%s: publish" % ds.key)
            pub, floors = publish_phase(b, emu, ds)
            scale_zlib(floors, ds, args.zlib_limit)
            log("%s: fetch" % ds.key)
            fet, note, archive_size = fetch_phase(b, emu, ds)
            emu.drop_objects(set())
            results[ds.key] = {"publish": pub, "floors": floors, "fetch": fet, "note": note,
                               "archive_size": archive_size, "count": ds.count}
            shutil.rmtree(ds.dir, ignore_errors=True)
        log("command line")
        cli = cli_phase(b, emu)
        text = report(args, datasets, results, cli, started, time.perf_counter() - t_start)
    finally:
        if emu:
            emu.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
        with open(args.results) as f:
            written = f.read()
        if written.count("| publish |") != len(datasets) or written.count("| fetch (") != len(datasets) \
                or "## Targets" not in written:
            log("bench: %s does not hold every table" % args.results)
            return 1
    if b.failures:
        log("bench: %d failed run(s):" % len(b.failures))
        for f in b.failures:
            log("  " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
