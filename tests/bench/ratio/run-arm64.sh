#!/bin/sh
# make bench-arm64: tests/bench/ratio/zratio.c, cross-built for 64-bit ARM, run under
# qemu-user; its tables replace the "Under arm64 emulation" section of
# tests/bench/RESULTS.md (appended when missing). Emulation makes absolute figures
# meaningless: read only the ratios against zlib, measured in the same run.
# usage: sh tests/bench/ratio/run-arm64.sh BUILD_DIR [MiB]
set -eu
build=${1:?usage: run-arm64.sh BUILD_DIR [MiB]}
mib=${2:-8}
here=$(cd "$(dirname "$0")" && pwd)
results=$here/../RESULTS.md
heading="## Under arm64 emulation: CRC-32 and the zip module against zlib"
out=$(mktemp)
trap 'rm -f "$out" "$out.md"' EXIT
load0=$(cut -d' ' -f1-3 /proc/loadavg)
qemu-aarch64-static -L / "$build/tests/zratio" "$mib" > "$out"
cat "$out"
{
  printf '%s\n\n' "$heading"
  printf 'Written by `make bench-arm64` (`BENCH_MIB=%s`).\n\n' "$mib"
  printf -- '- date: %s UTC\n' "$(date -u '+%Y-%m-%d %H:%M')"
  printf -- '- host: %s cores, %s\n' "$(nproc)" "$(uname -srm)"
  printf -- '- emulator: %s\n' "$(qemu-aarch64-static --version | head -n 1)"
  printf -- '- tree: %s\n' "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf -- '- load average at the start and the end: %s, %s\n\n' "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
  cat <<'TXT'
qemu-user translates each ARM instruction; the CRC32 instructions become a call into a
helper, so under emulation they can be slower than zlib's table code, which turns into
plain loads and shifts. These ratios show that every path runs and gives zlib's values on
arm64; they say nothing about an ARM processor, where the CRC32 instructions do one 8-byte
word per instruction. The zip module computes its CRCs with zcrc32 and zlib's side here
with zlib's crc32, so the stored rows carry the same handicap.

TXT
  sed 's/^### /#### /' "$out"
} > "$out.md"
# drop an earlier copy of the section (up to the next "## " heading) and trailing blank
# lines, then append
awk -v h="$heading" '
  $0 == h { skip = 1; next }
  skip && /^## / { skip = 0 }
  skip { next }
  $0 == "" { blank++; next }
  { for (; blank > 0; blank--) print ""; print }' "$results" > "$results.tmp"
printf '\n' >> "$results.tmp"
cat "$out.md" >> "$results.tmp"
mv "$results.tmp" "$results"
echo "Wrote the section to $results"
