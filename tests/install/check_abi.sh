#!/bin/sh
# The installed libraries export exactly their public names: libskafos.so the functions of
# skafos.h and the Lua entry points, skafos.so and libskafos-net.so the Lua entry points;
# libskafos.so's soname is libskafos.so.<SKAFOS_ABI>; skafos_version.h agrees with the
# project version; the executable exports only the runtime functions libskafos-net.so
# needs from it, and all of them.
# Usage: check_abi.sh BUILD_DIR SKAFOS_ABI PROJECT_VERSION
set -eu
BUILD=$1 ABI=$2 VERSION=$3
. "$(dirname "$0")/lib.sh"
install_build

# defined dynamic symbols; versioned ones (name@VERSION: glibc's stdout, stderr copied into
# the executable) are someone else's
exports() { nm -D --defined-only "$1" | awk '{print $3}' | grep -v @ | sort -u; }
# compares two sorted lists; names what is only in one of them
same_set() { # what, expected-file, actual-file
  if ! cmp -s "$2" "$3"; then
    echo "$1: exported but not public:" >&2; comm -13 "$2" "$3" | sed 's/^/  /' >&2
    echo "$1: public but not exported (a skafos.h function without SKAFOS_API?):" >&2
    comm -23 "$2" "$3" | sed 's/^/  /' >&2
    fail "$1 does not export exactly its public names"
  fi
}

lib=$(readlink -f "$LIBDIR/libskafos.so")
net=$(ls "$LIBDIR"/libskafos-net.so.* 2>/dev/null | head -n 1)
mod=$(find "$PREFIX" -path '*/lua/5.4/skafos.so' | head -n 1)
[ -f "$lib" ] && [ -n "$net" ] && [ -n "$mod" ] || fail "libskafos.so, libskafos-net.so or skafos.so not installed"

# public: every skafos_ function the installed header declares (comments dropped by the
# preprocessor), and the luaopen_skafos* functions of the library
cc -E -P -I"$PREFIX/include" $(pkg-config --cflags lua5.4) -x c "$PREFIX/include/skafos.h" \
  | grep -o 'skafos_[a-z0-9_]* *(' | sed 's/ *($//' | sort -u > "$WORK/header"
[ -s "$WORK/header" ] || fail "no function found in skafos.h"
nm --defined-only "$LIBDIR/libskafos.a" 2>/dev/null | awk '$2 == "T" {print $3}' \
  | grep '^luaopen_skafos' | sort -u > "$WORK/luaopen"
grep -qx luaopen_skafos "$WORK/luaopen" || fail "libskafos.a has no luaopen_skafos"
sort -u "$WORK/header" "$WORK/luaopen" > "$WORK/public"

exports "$lib" > "$WORK/lib.exports"
same_set libskafos.so "$WORK/public" "$WORK/lib.exports"
exports "$mod" > "$WORK/mod.exports"
same_set skafos.so "$WORK/luaopen" "$WORK/mod.exports"
printf 'luaopen_skafos_http\nluaopen_skafos_s3\nluaopen_skafos_tasks\n' > "$WORK/net.public"
exports "$net" > "$WORK/net.exports"
same_set libskafos-net.so "$WORK/net.public" "$WORK/net.exports"

soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libskafos.so.$ABI" ] || fail "libskafos.so's soname is $soname, not libskafos.so.$ABI (SKAFOS_ABI)"
[ "$(readlink "$LIBDIR/libskafos.so")" = "libskafos.so.$ABI" ] || fail "libskafos.so does not link to libskafos.so.$ABI"
netsoname=$(objdump -p "$net" | awk '$1 == "SONAME" {print $2}')
[ "$netsoname" = "libskafos-net.so.$VERSION" ] || fail "libskafos-net.so's soname is $netsoname"

# the executable: only skafos_* and luaopen_skafos* (besides the linker's own symbols), and
# every skafos_* that libskafos-net.so leaves to it
exports "$PREFIX/bin/skafos" | grep -v '^_\|^data_start$' > "$WORK/exe.exports"
if grep -v '^skafos_\|^luaopen_skafos' "$WORK/exe.exports" > "$WORK/exe.extra"; then
  sed 's/^/  /' "$WORK/exe.extra" >&2
  fail "the skafos executable exports more than skafos_* and luaopen_skafos*"
fi
nm -D --undefined-only "$net" | awk '{print $2}' | sed 's/@.*//' | grep '^skafos_' | sort -u > "$WORK/net.needs"
[ -s "$WORK/net.needs" ] || fail "libskafos-net.so needs nothing of the runtime: is it linked with it?"
if comm -23 "$WORK/net.needs" "$WORK/exe.exports" | grep .; then
  fail "libskafos-net.so needs the functions above, which the executable does not export"
fi

# the version macros, the library's version and the executable's agree with the project
h=$PREFIX/include/skafos_version.h
part() { sed -n "s/^#define SKAFOS_VERSION_$1 \([0-9]*\)\$/\1/p" "$h"; }
hv=$(part MAJOR).$(part MINOR).$(part PATCH)
[ "$hv" = "$VERSION" ] || fail "skafos_version.h says $hv, the project $VERSION"
grep -q "^#define SKAFOS_VERSION \"$VERSION\"\$" "$h" || fail "SKAFOS_VERSION is not \"$VERSION\""
[ "$("$PREFIX/bin/skafos" --version | cut -d' ' -f2)" = "$VERSION" ] || fail "skafos --version is not $VERSION"
echo "install/abi: ok ($(wc -l < "$WORK/lib.exports") names exported by libskafos.so.$ABI)"
