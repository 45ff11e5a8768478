#!/bin/sh
# A SKAFOS_PORTABLE build takes no Linux-only or x86-only path: none of its binaries
# imports a Linux-only function, names /proc, or contains the x86 CRC-32 code; so the
# suite that runs on it really runs the fallbacks.
# Usage: check_imports.sh FILE...   (the executable and the shared objects)
set -eu
[ $# -gt 0 ] || { echo "usage: check_imports.sh FILE..." >&2; exit 2; }
status=0
for f in "$@"; do
  [ -f "$f" ] || { echo "FAIL: no such file: $f" >&2; status=1; continue; }
  imports=$(nm -D --undefined-only "$f" | awk '{ print $NF }' | sed 's/@.*//')
  [ -n "$imports" ] || { echo "FAIL: $f imports nothing (not a dynamic ELF file?)" >&2; status=1; }
  bad=$(printf '%s\n' "$imports" |
    grep -E '^(sync_file_range|fallocate(64)?|posix_fadvise(64)?|dladdr1|getauxval|malloc_trim)$' || :)
  if [ -n "$bad" ]; then
    echo "FAIL: $f imports Linux-only functions:" $bad >&2
    status=1
  fi
  if grep -q '/proc/' "$f"; then
    echo "FAIL: $f names a /proc file" >&2
    status=1
  fi
  if nm "$f" 2>/dev/null | grep -qE ' (crc_pclmul|crc_vpclmul|crc_armv8)'; then
    echo "FAIL: $f contains a processor-specific CRC-32" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "portable/imports: $# files take only the portable paths"
exit $status
