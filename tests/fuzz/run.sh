#!/bin/sh
# Builds the zip fuzz target with clang (libFuzzer + ASan + UBSan) and runs it for a short
# while, seeded with archives from our writer, Info-ZIP, Python and the hostile corpus.
# Usage: tests/fuzz/run.sh [seconds]   (default 30). Exit status: nonzero on a finding.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-30}
build=${FUZZ_BUILD:-$root/build-fuzz}
work=$(mktemp -d "${TMPDIR:-/tmp}/skafos-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DSKAFOS_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" --target fuzz_zip -j "$(nproc)" >/dev/null

# seeds: the hostile corpus, and small archives made by three writers
mkdir -p "$work/corpus" "$work/seeds"
python3 "$root/tests/zip/make_hostile.py" "$work/hostile" >/dev/null
for f in "$work/hostile"/*.zip; do
  if [ "$(stat -c %s "$f")" -le 65536 ]; then cp "$f" "$work/seeds/"; fi
done
mkdir -p "$work/src/d/e"
printf 'hello hello hello hello\n' > "$work/src/d/a.txt"
printf 'x' > "$work/src/d/e/b.bin"
(cd "$work/src" && zip -q -r -X "$work/seeds/infozip.zip" d)
python3 - "$work/seeds/py.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a/b.txt", "abc" * 50)
    z.writestr("c", b"\0\1\2", compress_type=zipfile.ZIP_STORED)
    i = zipfile.ZipInfo("l"); i.create_system = 3; i.external_attr = 0o120777 << 16
    z.writestr(i, "a/b.txt")
PY

cd "$work"
"$build/tests/fuzz/fuzz_zip" -max_total_time="$secs" -max_len=65536 -timeout=10 \
  -rss_limit_mb=1024 -print_final_stats=1 corpus seeds
