"""What the Python benchmarks share: the emulator they run against (as the seed's demo user,
HOME and configuration inside the work directory), its admin API, random inputs and the
versions of the tools measured."""
import json
import os
import subprocess
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SERVER = os.path.join(ROOT, "tests", "emulator", "server.js")
MiB = 1 << 20


def start_emulator(work, **extra):
    """Starts the emulator on work/data; returns its process, its URLs and the environment
    of a skafos run against it (extra adds or replaces variables)."""
    emu = subprocess.Popen(["node", SERVER, "--data", os.path.join(work, "data")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    urls = json.loads(emu.stdout.readline())
    env = dict(os.environ, SKAFOS_API_URL=urls["api"], SKAFOS_DOWNLOAD_URL=urls["download"],
               SKAFOS_API_TOKEN="demo-token", SKAFOS_ORG_NAME="demo-org", SKAFOS_APP_NAME="demo-app",
               XDG_CONFIG_HOME=os.path.join(work, "config"), HOME=work, **extra)
    return emu, urls, env


def admin(urls, method, sub, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(urls["admin"] + sub, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def write_random(path, size):
    """size random bytes into path, 16 MiB at a time."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"
