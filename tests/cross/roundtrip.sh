#!/bin/sh
# A cross-built skafos under its emulator (qemu-user), against the emulator of the service
# running natively: publish a model of several files (stored and deflated, small and
# multi-MiB, so the processor's CRC-32 and the compression threads both run), list it,
# fetch it back; the bytes must match and another zip reader must accept the archive's
# CRCs. Also proves the executable finds and loads its network library there.
# Usage: roundtrip.sh SKAFOS [EMULATOR ARGS...]   (ctest passes its crosscompiling emulator)
# SKAFOS_EXPECT_ELF_MACHINE: fail unless SKAFOS is built for that ELF machine number.
set -eu
SKAFOS=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
. "$(dirname "$0")/../install/lib.sh"
isolate

# ELF e_machine (bytes 18-19, little-endian): 183 is AArch64
machine=$(od -An -tu2 -j18 -N2 "$SKAFOS" | tr -d ' ')
echo "skafos is built for ELF machine $machine; running it through: ${*:-(natively)}"
if [ -n "${SKAFOS_EXPECT_ELF_MACHINE:-}" ] && [ "$machine" != "$SKAFOS_EXPECT_ELF_MACHINE" ]; then
  fail "skafos is not built for ELF machine $SKAFOS_EXPECT_ELF_MACHINE"
fi

version=$("$@" "$SKAFOS" --version) || fail "skafos --version under the emulator"
echo "$version"

start_emulator
mkdir -p "$WORK/model" "$WORK/out"
cd "$WORK/model"
# text compresses (deflated), random bytes do not (stored); 3 MiB spans several blocks
head -c 3145728 /dev/urandom > weights.bin
i=0
while [ $i -lt 20000 ]; do echo "label $i: a line of text that deflates well"; i=$((i + 1)); done > labels.txt
printf 'tiny\n' > tiny.txt
"$@" "$SKAFOS" publish -q -m "cross round trip" weights.bin labels.txt tiny.txt > "$WORK/published" \
  || fail "publish under the emulator"
"$@" "$SKAFOS" versions > "$WORK/versions" || fail "versions under the emulator"
grep -q "cross round trip" "$WORK/versions" || { cat "$WORK/versions" >&2; fail "the version is not listed"; }
cd "$WORK/out"
"$@" "$SKAFOS" fetch -o model.zip --unzip fetched > "$WORK/fetched" || fail "fetch under the emulator"
for f in weights.bin labels.txt tiny.txt; do
  cmp "$WORK/model/$f" "fetched/$f" || fail "$f: fetched bytes differ"
done
# another reader's CRC-32 agrees with the one the emulated processor computed
unzip -tq model.zip > "$WORK/unzip" 2>&1 || { cat "$WORK/unzip" >&2; fail "unzip rejects the archive"; }
unzip -v model.zip | grep -q 'Defl' || fail "nothing in the archive was deflated"
unzip -v model.zip | grep -q 'Stored' || fail "nothing in the archive was stored"
echo "cross/roundtrip: published, listed and fetched back intact"
