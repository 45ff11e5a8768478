#!/bin/sh
# Programs built against an installed skafos only, as its users build them: a C program
# through pkg-config, the same through CMake's find_package (linking libskafos.so, then
# libskafos.a) and a C++ program through pkg-config. Each publishes a file to the emulator
# and fetches it back (the archive checked by unzip). They run from a directory of their own beside a stale
# share/skafos (whose workflows fail), which they must not use: libskafos.so finds its own
# share directory, where this test puts a workflow each must run (libskafos.a, linked into
# the program, can only know the configured one).
# Usage: check_consumers.sh BUILD_DIR PROJECT_VERSION
set -eu
BUILD=$1 VERSION=$2
. "$(dirname "$0")/lib.sh"
install_build
isolate

# the sources are copied out, so nothing of the source tree is on any include path
cp -r "$ROOT/tests/install/consumer" "$WORK/src"
HOST=$WORK/host
mkdir -p "$HOST/bin" "$HOST/share/skafos/scripts"
for w in publish fetch where; do
  printf 'return { run = function() io.stderr:write("stale %s.lua beside the host ran\\n") return 1 end }\n' \
    "$w" > "$HOST/share/skafos/scripts/$w.lua"
done
printf 'return { run = function() print("where: the library'"'"'s own install") end }\n' \
  > "$PREFIX/share/skafos/scripts/where.lua"

# ---- pkg-config ------------------------------------------------------------------------
cflags=$(pkg-config --cflags skafos) || fail "pkg-config --cflags skafos"
libs=$(pkg-config --libs skafos) || fail "pkg-config --libs skafos"
libdir=$(pkg-config --variable=libdir skafos)
[ "$(cd "$libdir" && pwd -P)" = "$(cd "$LIBDIR" && pwd -P)" ] \
  || fail "skafos.pc's libdir is $libdir, not the install's $LIBDIR"
case "$cflags" in *minizip*) fail "skafos.pc's Cflags name minizip's include directory: $cflags" ;; esac
case "$cflags $libs" in *"$ROOT"*) fail "skafos.pc points into the source tree: $cflags $libs" ;; esac
[ "$(pkg-config --modversion skafos)" = "$VERSION" ] || fail "skafos.pc's version is not $VERSION"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$HOST/bin/consumer-pc" "$WORK/src/consumer.c" \
  $cflags $libs -Wl,-rpath,"$libdir" || fail "the C consumer does not build with pkg-config's flags"
# shellcheck disable=SC2086
c++ -std=c++17 -Wall -Wextra -Werror -pedantic -o "$HOST/bin/consumer-cxx" \
  "$WORK/src/consumer.cpp" "$WORK/src/state.cpp" "$WORK/src/version.cpp" \
  $cflags $libs -Wl,-rpath,"$libdir" || fail "the C++ consumer does not build with pkg-config's flags"

# ---- CMake -----------------------------------------------------------------------------
cmake -S "$WORK/src" -B "$WORK/cmake-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DSKAFOS_WANTED_VERSION="$VERSION" \
  > "$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log" >&2; fail "find_package(skafos) in a user's project"; }
found=$(sed -n 's/^-- skafos_DIR=//p' "$WORK/cmake.log")
case "$found" in "$PREFIX"/*) ;; *) fail "find_package found skafos in '$found', not in $PREFIX" ;; esac
cmake --build "$WORK/cmake-build" > "$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; fail "the CMake consumer does not build"; }
cp "$WORK/cmake-build/consumer" "$HOST/bin/consumer-cmake"
cp "$WORK/cmake-build/consumer_static" "$HOST/bin/consumer-static"
if grep -q -- '-I[^ ]*minizip' "$WORK/cmake-build/CMakeFiles/consumer.dir/flags.make"; then
  fail "skafos::skafos gives its users minizip's include directory"
fi

# ---- each publishes and fetches ------------------------------------------------------------
start_emulator
n=0
for prog in consumer-pc consumer-cmake consumer-static consumer-cxx; do
  n=$((n + 1))
  run=$WORK/run-$prog
  mkdir -p "$run"
  { printf '%s %s\n' "$prog" "$n"; head -c 200000 /dev/urandom; } > "$run/model-$n.bin"
  where="-- where"
  [ "$prog" = consumer-static ] && where=
  # shellcheck disable=SC2086
  (cd "$run" && "$HOST/bin/$prog" publish -q -m "from $prog" "model-$n.bin" -- \
     fetch -o "model-$n.zip" --unzip fetched $where) > "$run/out" 2> "$run/err" \
    || { cat "$run/out" "$run/err" >&2; fail "$prog: publish, fetch or where failed"; }
  grep -q "^consumer[^:]*: skafos $VERSION\$" "$run/out" || fail "$prog: no version line"
  [ "$(sed -n 2p "$run/out")" = "$n" ] || { cat "$run/out" >&2; fail "$prog: published version is not $n"; }
  cmp "$run/model-$n.bin" "$run/fetched/model-$n.bin" || fail "$prog: fetched bytes differ"
  # checked by another zip reader: skafos's own would agree with a replaced zcrc32
  unzip -tq "$run/model-$n.zip" > "$run/unzip" 2>&1 \
    || { cat "$run/unzip" >&2; fail "$prog: the published archive is damaged (the host's zcrc32 used?)"; }
  if [ -n "$where" ] && ! grep -q "^where: the library's own install\$" "$run/out"; then
    cat "$run/out" "$run/err" >&2
    fail "$prog: the install's share directory was not used"
  fi
  echo "$prog: published and fetched version $n"
done
echo "install/consumers: ok"
