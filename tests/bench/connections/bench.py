#!/usr/bin/env python3
"""Many connections: `skafos fetch -o` and the streamed `skafos fetch --unzip DIR` against
`aria2c -x8 -s8` and `curl -o` of the same archive, on the emulator shaped as a far store
that limits each connection (20 MiB/s and 50 ms before the first byte by default), and on
plain loopback against a single connection; then an upload of a smaller archive to the
same shaped storage, `skafos.s3.put` and `skafos publish` of the .zip as it is against
`curl -T` to a presigned PUT. Peak memory of every command is GNU time's %M. Prints a
Markdown report (medians of alternated runs, ratios from this run).

usage: bench.py --skafos build/skafos [--size-mib 1024] [--runs 3] [--loopback-runs 7]
                [--upload-mib 256] [--rate-mib 20] [--first-byte-ms 50] [--connections N]
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import MiB, admin, start_emulator, version, write_random  # noqa: E402
MODEL = "organizations/demo-org/apps/demo-app/models/demo-model"




def presigned(urls):
    """The storage URL E8 redirects to (asked for just before each run)."""
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}",
                          "-H", "X-API-TOKEN: demo-token", f"{urls['download']}/{MODEL}"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


RSS = {}  # the peak resident set (KiB, GNU time's %M) of each run, by command name


def timed(cmd, env, cwd):
    """Seconds the command took; its peak memory goes into RSS[cmd[0] ...] via time -f %M."""
    rss = os.path.join(cwd, "rss")
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss] + cmd, env=env, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    with open(rss) as f:
        timed.last_rss = int(f.read().split()[-1])
    return dt




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skafos", required=True)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--loopback-runs", type=int, default=7)
    ap.add_argument("--upload-mib", type=int, default=256)
    ap.add_argument("--rate-mib", type=float, default=20)
    ap.add_argument("--first-byte-ms", type=int, default=50)
    ap.add_argument("--connections", type=int, default=None, help="skafos --connections (default: its own)")
    a = ap.parse_args()
    skafos = os.path.abspath(a.skafos)
    for tool in ("curl", "aria2c", "node", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (make deps installs it)")

    work = tempfile.mkdtemp(prefix="skafos-bench-conn-")
    emu = None
    started = time.time()
    load0 = os.getloadavg()
    try:
        emu, urls, env = start_emulator(work, SKAFOS_MODEL_NAME="demo-model")
        src = os.path.join(work, "weights.bin")
        write_random(src, a.size_mib * MiB)
        subprocess.run([skafos, "publish", src, "--progress", "none", "-q"], env=env, cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        os.remove(src)
        size = max(v["size"] or 0 for v in admin(urls, "GET", "/state")["model_versions"].values())
        out = os.path.join(work, "out.zip")
        tree = os.path.join(work, "tree")
        conn = [] if a.connections is None else ["--connections", str(a.connections)]

        def skafos_fetch(extra):
            return lambda: timed([skafos, "fetch", "-o", out, "--force", "--progress", "none", "-q"] + extra,
                                 env, work)

        def skafos_unzip(extra):
            return lambda: timed([skafos, "fetch", "--unzip", tree, "--force", "--progress", "none", "-q"] + extra,
                                 env, work)

        def curl():
            url = presigned(urls)
            return timed(["curl", "-sS", "-o", out, url], env, work)

        def aria2():
            url = presigned(urls)
            return timed(["aria2c", "-x8", "-s8", "-q", "--allow-overwrite=true", "--file-allocation=none",
                          "--auto-file-renaming=false", "-d", work, "-o", "out.zip", url], env, work)

        def run(cases, runs=a.runs):
            times = {name: [] for name, _ in cases}
            for r in range(runs):
                order = cases[r % len(cases):] + cases[:r % len(cases)]
                for name, fn in order:
                    times[name].append(fn())
                    RSS.setdefault(name, []).append(timed.last_rss)
                    for f in (out, out + ".aria2"):
                        if os.path.exists(f):
                            os.remove(f)
                    shutil.rmtree(tree, ignore_errors=True)
            return times

        rate = int(a.rate_mib * MiB)
        admin(urls, "PUT", "/shaping", {s: {"rate": rate, "first_byte_ms": a.first_byte_ms}
                                        for s in ("download", "storage")})
        shaped = run([("skafos fetch -o", skafos_fetch(conn)), ("aria2c -x8 -s8", aria2), ("curl -o", curl),
                      ("skafos fetch --unzip DIR (streamed)", skafos_unzip(conn))])
        admin(urls, "DELETE", "/shaping")
        one = "skafos fetch -o --connections 1 (one connection, as before)"
        one_unzip = "skafos fetch --unzip DIR --connections 1 (one connection, as before)"
        plain = run([("skafos fetch -o", skafos_fetch(conn)), (one, skafos_fetch(["--connections", "1"])),
                     ("skafos fetch --unzip DIR (streamed)", skafos_unzip(conn)),
                     (one_unzip, skafos_unzip(["--connections", "1"])),
                     ("curl -o", curl), ("aria2c -x8 -s8", aria2)], a.loopback_runs)

        # Upload: a stored zip of random bytes, sent as it is, to the shaped storage.
        upzip = os.path.join(work, "up.zip")
        subprocess.run([sys.executable, "-c", f"""
import os, zipfile
with zipfile.ZipFile({upzip!r}, "w", zipfile.ZIP_STORED, allowZip64=True) as z, z.open("w.bin", "w", force_zip64=True) as f:
    for _ in range({a.upload_mib} // 16):
        f.write(os.urandom(16 << 20))
"""], check=True)
        upsize = os.path.getsize(upzip)
        putlua = os.path.join(work, "put.lua")
        with open(putlua, "w") as f:
            f.write('assert(require("skafos.s3").put(arg[1], arg[2]))\n')

        def put_url():
            """A fresh presigned PUT (E4 of the emulator's API) for each run."""
            req = urllib.request.Request(f"{urls['api']}/{MODEL}/model_versions", method="POST",
                                         data=json.dumps({"filename": "up.zip"}).encode(),
                                         headers={"X-API-TOKEN": "demo-token", "Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())["presigned_url"]

        def skafos_put():
            return timed([skafos, "run", putlua, put_url(), upzip], env, work)

        def skafos_publish():
            return timed([skafos, "publish", upzip, "--progress", "none", "-q"], env, work)

        def curl_put():
            return timed(["curl", "-sS", "-f", "-o", "/dev/null", "-T", upzip, "-H",
                          "Content-Type: application/octet-stream", put_url()], env, work)

        admin(urls, "PUT", "/shaping", {s: {"rate": rate, "first_byte_ms": a.first_byte_ms}
                                        for s in ("download", "storage")})
        upload = run([("skafos.s3.put (skafos run)", skafos_put), ("curl -T", curl_put),
                      ("skafos publish up.zip (sent as it is)", skafos_publish)])
        admin(urls, "DELETE", "/shaping")
    finally:
        if emu:
            emu.terminate()
            emu.wait()
        shutil.rmtree(work, ignore_errors=True)

    med = lambda xs: statistics.median(xs)
    def table(title, times, ref, nbytes=None):
        nbytes = nbytes or size
        lines = [f"| {title} | median s | MiB/s | vs {ref} | min-max s | peak RSS MiB (max) |",
                 "|---|---|---|---|---|---|"]
        r = med(times[ref])
        for name, xs in times.items():
            m = med(xs)
            lines.append(f"| {name} | {m:.2f} | {nbytes / MiB / m:.0f} | {m / r:.2f}× | {min(xs):.2f}-{max(xs):.2f} "
                         f"| {max(RSS[name]) / 1024:.1f} |")
        return "\n".join(lines)

    s_ref, p_ref = med(shaped["skafos fetch -o"]), med(plain["skafos fetch -o"])
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} ({(time.time() - started) / 60:.0f} min)")
    print(f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; load average "
          f"{' '.join(f'{x:.2f}' for x in load0)} at the start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print(f"- archive: {size} bytes ({size / MiB:.0f} MiB, a stored zip of random bytes), {a.runs} alternated runs "
          f"per row on the shaped link, {a.loopback_runs} on loopback; upload: {upsize} bytes ({upsize / MiB:.0f} MiB), "
          f"{a.runs} runs")
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
    print(f"Upload to the shaped storage ({a.rate_mib:g} MiB/s a connection, {a.first_byte_ms} ms before each answer): "
          "one presigned PUT, one connection, for every tool.")
    print()
    print(table("upload", upload, "curl -T", upsize))
    print()
    print("| ratio (this run) | value |")
    print("|---|---|")
    print(f"| shaped: aria2c -x8 -s8 / skafos fetch -o (≥ 1: skafos at least as fast) | {med(shaped['aria2c -x8 -s8']) / s_ref:.2f} |")
    print(f"| shaped: curl -o / skafos fetch -o (target ≥ 4) | {med(shaped['curl -o']) / s_ref:.2f} |")
    unz = "skafos fetch --unzip DIR (streamed)"
    print(f"| shaped: skafos fetch --unzip (streamed) / aria2c -x8 -s8 (target ≤ 1.2) | "
          f"{med(shaped[unz]) / med(shaped['aria2c -x8 -s8']):.2f} |")
    print(f"| shaped: skafos fetch --unzip (streamed), largest peak RSS MiB (target ≤ 32) | {max(RSS[unz]) / 1024:.1f} |")
    print(f"| loopback: one connection / skafos fetch -o (≥ 1: no slower than before) | {med(plain[one]) / p_ref:.2f} |")
    print(f"| loopback: one connection / skafos fetch --unzip (≥ 1: no slower than before) | "
          f"{med(plain[one_unzip]) / med(plain[unz]):.2f} |")
    print(f"| loopback: curl -o / skafos fetch -o | {med(plain['curl -o']) / p_ref:.2f} |")
    print(f"| upload: skafos.s3.put / curl -T (≤ 1: skafos no slower) | "
          f"{med(upload['skafos.s3.put (skafos run)']) / med(upload['curl -T']):.2f} |")
    print(f"| upload: skafos publish up.zip / curl -T (includes the checks and API calls) | "
          f"{med(upload['skafos publish up.zip (sent as it is)']) / med(upload['curl -T']):.2f} |")


if __name__ == "__main__":
    main()
