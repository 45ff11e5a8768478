#!/bin/sh
# Peak memory with many entries (GNU time's %M), against tools doing the same work on
# the same inputs in the same run: publish of 100,000 files against zip -r; fetch -o,
# fetch --unzip (streamed, no archive kept) and zip.list of archives of 100,000 and
# 1,000,000 empty entries against unzip -t (fetch -o verifies what it downloads), unzip,
# unzip -l, bsdtar and Python's zipfile. The last rows give the growth per entry between
# the two sizes. Memory, not time: nothing here is timed. About ten minutes.
# usage: sh tests/bench/memory/run.sh path/to/skafos
set -eu
SKAFOS=$(cd "$(dirname "${1:?usage: sh tests/bench/memory/run.sh path/to/skafos}")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skafos-membench.XXXXXX")
EMU_PID=
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

. "$ROOT/tests/helpers/emulator.sh"
emulator_start "$ROOT" "$WORK"
export SKAFOS_API_URL="$(emulator_url api)" SKAFOS_DOWNLOAD_URL="$(emulator_url download)"
export SKAFOS_API_TOKEN=demo-token SKAFOS_ORG_NAME=demo-org SKAFOS_APP_NAME=demo-app
export XDG_CONFIG_HOME="$WORK/xdg" HOME="$WORK/home"
mkdir -p "$WORK/home"

# peak KiB of one command (its output thrown away); fails the run when the command does
rss() {
  /usr/bin/time -f %M -o "$WORK/rss" "$@" > /dev/null 2> "$WORK/err" || {
    echo "failed: $*" >&2; cat "$WORK/err" >&2; exit 1; }
  cat "$WORK/rss"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row() { # row WHAT KIB [REF_KIB] [NOTE]
  if [ -n "${3:-}" ]; then
    printf '%-48s %9s MiB %9s MiB %7s  %s\n' "$1" "$(mib "$2")" "$(mib "$3")" \
      "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')" "${4:-}"
  else
    printf '%-48s %9s MiB %13s %7s  %s\n' "$1" "$(mib "$2")" "" "" "${4:-}"
  fi
}
per_entry() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f B/entry over 900,000", (b - a) * 1024 / 900000 }'; }

echo "Generating: 100,000 files, and archives of 100,000 and 1,000,000 empty entries" >&2
python3 - "$WORK" <<'EOF'
import os, sys, zipfile
work = sys.argv[1]
for i in range(100000):
    d = os.path.join(work, "files", "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
        f.write(b"x" * (i % 50))
for n, name in ((100000, "e100k.zip"), (1000000, "e1m.zip")):
    with zipfile.ZipFile(os.path.join(work, name), "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for i in range(n):
            z.writestr(zipfile.ZipInfo("d%04d/f%07d.bin" % (i // 1000, i), (2020, 1, 1, 0, 0, 0)), b"")
EOF

cd "$WORK"
for m in files e100k e1m; do "$SKAFOS" models create "$m" > /dev/null; done
cat > "$WORK/list.lua" <<'EOF'
local listing = assert(require("skafos.zip").list(arg[1]))
local n = 0
for _ in ipairs(listing) do n = n + 1 end
assert(n == #listing)
EOF
cat > "$WORK/list.py" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    n = sum(1 for _ in z.infolist())
EOF

printf '%-48s %13s %13s %7s\n' "" "skafos" "reference" "ratio"
pub=$(SKAFOS_MODEL_NAME=files rss "$SKAFOS" publish -q -m bench files)
ref=$(rss zip -q -r -6 "$WORK/files.zip" files)
row "publish 100,000 files (auto) vs zip -r -6" "$pub" "$ref" "target <= 32 MiB"

for n in e100k e1m; do
  label=$([ $n = e100k ] && echo 100,000 || echo 1,000,000)
  SKAFOS_MODEL_NAME=$n "$SKAFOS" publish -q -m bench "$n.zip" > /dev/null
  o=$(SKAFOS_MODEL_NAME=$n rss "$SKAFOS" fetch -q -o "got-$n.zip")
  ref=$(rss unzip -tqq "got-$n.zip")
  row "fetch -o, $label entries vs unzip -t" "$o" "$ref"
  eval "o_$n=$o"
  x=$(SKAFOS_MODEL_NAME=$n rss "$SKAFOS" fetch -q --unzip "x-$n")
  ux=$(rss unzip -qq "got-$n.zip" -d "u-$n")
  row "fetch --unzip (streamed), $label vs unzip" "$x" "$ux"
  eval "x_$n=$x"
  rm -rf "x-$n" "u-$n"
  l=$(rss "$SKAFOS" run "$WORK/list.lua" "got-$n.zip")
  ul=$(rss unzip -l "got-$n.zip")
  row "zip.list, $label vs unzip -l" "$l" "$ul"
  eval "l_$n=$l"
  row "  the same against bsdtar -tf" "$l" "$(rss bsdtar -tf "got-$n.zip")"
  row "  the same against Python's zipfile" "$l" "$(rss python3 "$WORK/list.py" "got-$n.zip")"
done
echo
# shellcheck disable=SC2154 # set by eval above
{
  row "fetch -o, growth" "$o_e1m" "" "$(per_entry "$o_e100k" "$o_e1m") (target <= 64)"
  row "fetch --unzip, growth" "$x_e1m" "" "$(per_entry "$x_e100k" "$x_e1m") (target <= 64)"
  row "zip.list, growth" "$l_e1m" "" "$(per_entry "$l_e100k" "$l_e1m") (target <= 64)"
}
