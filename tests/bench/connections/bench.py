#!/usr/bin/env python3
"""Many connections: `skafos fetch -o` against `aria2c -x8 -s8` and `curl -o` of the same
archive, on the emulator shaped as a far store that limits each connection (20 MiB/s and
50 ms before the first byte by default), and on plain loopback against today's single
connection. Prints a Markdown report (medians of alternated runs, ratios from this run).

usage: bench.py --skafos build/skafos [--size-mib 1024] [--runs 3] [--rate-mib 20]
                [--first-byte-ms 50] [--connections N]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SERVER = os.path.join(ROOT, "tests", "emulator", "server.js")
MODEL = "organizations/demo-org/apps/demo-app/models/demo-model"
MiB = 1 << 20


def admin(urls, method, sub, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(urls["admin"] + sub, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def presigned(urls):
    """The storage URL E8 redirects to (asked for just before each run)."""
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}",
                          "-H", "X-API-TOKEN: demo-token", f"{urls['download']}/{MODEL}"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def timed(cmd, env, cwd):
    t = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return dt


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skafos", required=True)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate-mib", type=float, default=20)
    ap.add_argument("--first-byte-ms", type=int, default=50)
    ap.add_argument("--connections", type=int, default=None, help="skafos --connections (default: its own)")
    a = ap.parse_args()
    skafos = os.path.abspath(a.skafos)
    for tool in ("curl", "aria2c", "node"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (make deps installs it)")

    work = tempfile.mkdtemp(prefix="skafos-bench-conn-")
    emu = None
    started = time.time()
    load0 = os.getloadavg()
    try:
        emu = subprocess.Popen(["node", SERVER, "--data", os.path.join(work, "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        urls = json.loads(emu.stdout.readline())
        env = dict(os.environ, SKAFOS_API_URL=urls["api"], SKAFOS_DOWNLOAD_URL=urls["download"],
                   SKAFOS_API_TOKEN="demo-token", SKAFOS_ORG_NAME="demo-org", SKAFOS_APP_NAME="demo-app",
                   SKAFOS_MODEL_NAME="demo-model", XDG_CONFIG_HOME=os.path.join(work, "config"),
                   HOME=work)
        src = os.path.join(work, "weights.bin")
        with open(src, "wb") as f:
            left = a.size_mib * MiB
            while left:
                n = min(left, 16 * MiB)
                f.write(os.urandom(n))
                left -= n
        subprocess.run([skafos, "publish", src, "--progress", "none", "-q"], env=env, cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        os.remove(src)
        size = max(v["size"] or 0 for v in admin(urls, "GET", "/state")["model_versions"].values())
        out = os.path.join(work, "out.zip")
        conn = [] if a.connections is None else ["--connections", str(a.connections)]

        def skafos_fetch(extra):
            return lambda: timed([skafos, "fetch", "-o", out, "--force", "--progress", "none", "-q"] + extra,
                                 env, work)

        def curl():
            url = presigned(urls)
            return timed(["curl", "-sS", "-o", out, url], env, work)

        def aria2():
            url = presigned(urls)
            return timed(["aria2c", "-x8", "-s8", "-q", "--allow-overwrite=true", "--file-allocation=none",
                          "--auto-file-renaming=false", "-d", work, "-o", "out.zip", url], env, work)

        def run(cases):
            times = {name: [] for name, _ in cases}
            for r in range(a.runs):
                order = cases[r % len(cases):] + cases[:r % len(cases)]
                for name, fn in order:
                    times[name].append(fn())
                    for f in (out, out + ".aria2"):
                        if os.path.exists(f):
                            os.remove(f)
            return times

        rate = int(a.rate_mib * MiB)
        admin(urls, "PUT", "/shaping", {s: {"rate": rate, "first_byte_ms": a.first_byte_ms}
                                        for s in ("download", "storage")})
        shaped = run([("skafos fetch -o", skafos_fetch(conn)), ("aria2c -x8 -s8", aria2), ("curl -o", curl)])
        admin(urls, "DELETE", "/shaping")
        plain = run([("skafos fetch -o", skafos_fetch(conn)),
                     ("skafos fetch -o --connections 1 (one connection, as before)", skafos_fetch(["--connections", "1"])),
                     ("curl -o", curl), ("aria2c -x8 -s8", aria2)])
    finally:
        if emu:
            emu.terminate()
            emu.wait()
        shutil.rmtree(work, ignore_errors=True)

    med = lambda xs: statistics.median(xs)
    def table(title, times, ref):
        lines = [f"| {title} | median s | MiB/s | vs skafos fetch -o | min-max s |", "|---|---|---|---|---|"]
        r = med(times[ref])
        for name, xs in times.items():
            m = med(xs)
            lines.append(f"| {name} | {m:.2f} | {size / MiB / m:.0f} | {m / r:.2f}× | {min(xs):.2f}-{max(xs):.2f} |")
        return "\n".join(lines)

    s_ref, p_ref = med(shaped["skafos fetch -o"]), med(plain["skafos fetch -o"])
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} ({(time.time() - started) / 60:.0f} min)")
    print(f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; load average "
          f"{' '.join(f'{x:.2f}' for x in load0)} at the start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print(f"- archive: {size} bytes ({size / MiB:.0f} MiB, a stored zip of random bytes), {a.runs} alternated runs per row")
    print(f"- skafos: {version([skafos, '--version'])}, `fetch -o` with "
          f"{'--connections ' + str(a.connections) if a.connections else 'its default connections'}; "
          f"{version(['aria2c', '--version'])}; {version(['curl', '--version'])}")
    print()
    print(f"Shaped link: every connection to the emulator's download and storage hosts limited to "
          f"{a.rate_mib:g} MiB/s, {a.first_byte_ms} ms before each answer's first byte.")
    print()
    print(table("shaped link", shaped, "skafos fetch -o"))
    print()
    print("Plain loopback, unshaped:")
    print()
    print(table("loopback", plain, "skafos fetch -o"))
    print()
    print("| ratio (this run) | value |")
    print("|---|---|")
    print(f"| shaped: aria2c -x8 -s8 / skafos fetch -o (≥ 1: skafos at least as fast) | {med(shaped['aria2c -x8 -s8']) / s_ref:.2f} |")
    print(f"| shaped: curl -o / skafos fetch -o (target ≥ 4) | {med(shaped['curl -o']) / s_ref:.2f} |")
    one = plain["skafos fetch -o --connections 1 (one connection, as before)"]
    print(f"| loopback: one connection / skafos fetch -o (≥ 1: no slower than before) | {med(one) / p_ref:.2f} |")
    print(f"| loopback: curl -o / skafos fetch -o | {med(plain['curl -o']) / p_ref:.2f} |")


if __name__ == "__main__":
    main()
