#!/usr/bin/env python3
"""Concurrent transfers for scripts: one `skafos run` script fetching 8 models at once with
skafos.tasks, against 8 `skafos fetch` runs one after the other, on the emulator shaped as
a far store that limits each connection (20 MiB/s and 50 ms before the first byte by
default). Both ways of fetching: `--unzip` (extracted as it downloads, one connection per
model) and `-o` (the archive, over several connections each). Prints a Markdown report
(medians of alternated runs, ratios from this run).

usage: bench.py --skafos build/skafos [--models 8] [--size-mib 64] [--runs 3]
                [--rate-mib 20] [--first-byte-ms 50]
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import MiB, admin, start_emulator, version, write_random  # noqa: E402

# argv: the models; TASKS_HOW: "unzip" or "output"
SCRIPT = """
local skafos = require "skafos"
local tasks = require "skafos.tasks"
local how = os.getenv("TASKS_HOW")
local jobs = {}
for i, name in ipairs(arg) do
  jobs[i] = function()
    if how == "unzip" then return skafos.fetch { model = name, unzip = name, force = true } end
    return skafos.fetch { model = name, output = name .. ".zip", force = true }
  end
end
local results, failed = tasks.run(jobs, { concurrency = #jobs })
for i, r in ipairs(results) do
  if not r.ok then io.stderr:write(arg[i], ": ", tostring(r.error), "\\n") end
end
return failed == 0 and 0 or 1
"""




def run_ok(cmd, env, cwd):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skafos", required=True)
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate-mib", type=float, default=20)
    ap.add_argument("--first-byte-ms", type=int, default=50)
    a = ap.parse_args()
    skafos = os.path.abspath(a.skafos)
    if not shutil.which("node"):
        sys.exit("bench: node is missing (make deps installs it)")

    work = tempfile.mkdtemp(prefix="skafos-bench-tasks-")
    emu = None
    started = time.time()
    load0 = os.getloadavg()
    try:
        emu, urls, env = start_emulator(work)
        names = [f"bench-{i + 1}" for i in range(a.models)]
        src = os.path.join(work, "weights.bin")
        for name in names:
            run_ok([skafos, "models", "create", name], env, work)
            write_random(src, a.size_mib * MiB)
            run_ok([skafos, "publish", src, "--progress", "none", "-q"], dict(env, SKAFOS_MODEL_NAME=name), work)
        os.remove(src)
        script = os.path.join(work, "fetch-all.lua")
        with open(script, "w") as f:
            f.write(SCRIPT)
        out = os.path.join(work, "out")
        os.mkdir(out)

        def sequential(how):
            def go():
                for name in names:
                    args = ["--unzip", name] if how == "unzip" else ["-o", name + ".zip"]
                    run_ok([skafos, "fetch", "--force", "--progress", "none", "-q"] + args,
                           dict(env, SKAFOS_MODEL_NAME=name), out)
            return go

        def concurrent(how):
            return lambda: run_ok([skafos, "run", script] + names, dict(env, TASKS_HOW=how), out)

        def clean():
            for entry in os.listdir(out):
                p = os.path.join(out, entry)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

        cases = [
            (f"{a.models} sequential `skafos fetch --unzip`", sequential("unzip")),
            (f"one script, {a.models} `skafos.fetch{{unzip}}` tasks at once", concurrent("unzip")),
            (f"{a.models} sequential `skafos fetch -o`", sequential("output")),
            (f"one script, {a.models} `skafos.fetch{{output}}` tasks at once", concurrent("output")),
        ]
        admin(urls, "PUT", "/shaping", {s: {"rate": int(a.rate_mib * MiB), "first_byte_ms": a.first_byte_ms}
                                        for s in ("download", "storage")})
        times = {name: [] for name, _ in cases}
        for r in range(a.runs):
            order = cases[r % len(cases):] + cases[:r % len(cases)]
            for name, fn in order:
                t = time.monotonic()
                fn()
                times[name].append(time.monotonic() - t)
                clean()
    finally:
        if emu:
            emu.terminate()
            emu.wait()
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    total = a.models * a.size_mib
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} ({(time.time() - started) / 60:.0f} min)")
    print(f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; load average "
          f"{' '.join(f'{x:.2f}' for x in load0)} at the start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print(f"- {a.models} models of {a.size_mib} MiB each (stored zips of random bytes; {total} MiB a row), "
          f"{a.runs} alternated runs per row; {version([skafos, '--version'])}")
    print(f"- shaped link: every connection to the download and storage hosts limited to {a.rate_mib:g} MiB/s, "
          f"{a.first_byte_ms} ms before each answer's first byte")
    print()
    print("| fetching every model | median s | MiB/s | min-max s |")
    print("|---|---|---|---|")
    for name, xs in times.items():
        m = med(xs)
        print(f"| {name} | {m:.2f} | {total / m:.0f} | {min(xs):.2f}-{max(xs):.2f} |")
    print()
    print("| ratio (this run) | value |")
    print("|---|---|")
    print(f"| `--unzip`: sequential / tasks (> 1: the script is faster) | "
          f"{med(times[cases[0][0]]) / med(times[cases[1][0]]):.2f} |")
    print(f"| `-o`: sequential / tasks | {med(times[cases[2][0]]) / med(times[cases[3][0]]):.2f} |")


if __name__ == "__main__":
    main()
