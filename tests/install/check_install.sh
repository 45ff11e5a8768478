#!/bin/sh
# Installs the build into a temporary prefix and checks what a user gets: the binary,
# the share directory it finds relative to itself (and the Lua module from its own place),
# the libraries, header, pkg-config file, man page and the Lua module.
set -eu
BUILD=$1
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/skafos-install.XXXXXX")
trap 'rm -rf "$PREFIX"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
for f in bin/skafos include/skafos.h share/skafos/scripts/publish.lua share/skafos/lua/skafos/api.lua \
         share/man/man1/skafos.1 share/bash-completion/completions/skafos share/zsh/site-functions/_skafos \
         share/fish/vendor_completions.d/skafos.fish; do
  [ -f "$PREFIX/$f" ] || fail "missing $f"
done
ls "$PREFIX"/lib*/libskafos.a "$PREFIX"/lib*/libskafos.so >/dev/null 2>&1 || ls "$PREFIX"/lib/*/libskafos.a >/dev/null || fail "missing libskafos"
pc=$(find "$PREFIX" -name skafos.pc | head -n 1)
[ -n "$pc" ] || fail "missing skafos.pc"
grep -q "^Libs: .*-lskafos" "$pc" || fail "skafos.pc has no Libs line"
so=$(find "$PREFIX" -path '*lua/5.4/skafos.so' | head -n 1)
[ -n "$so" ] || fail "missing the Lua module skafos.so"

"$PREFIX/bin/skafos" --version | grep -q '^skafos ' || fail "installed skafos --version"
printf 'print(type(require("skafos.http").request), type(require("skafos.s3").put))\n' > "$PREFIX/net.lua"
[ "$("$PREFIX/bin/skafos" run "$PREFIX/net.lua")" = "$(printf 'function\tfunction')" ] || fail "the installed skafos cannot load its network library"
# an unchanged installed copy of a module runs from the embedded bytecode; an edited one
# from the file itself
printf 'print(debug.getinfo(require("skafos.errors").new, "S").source)\n' > "$PREFIX/src.lua"
[ "$(cd "$PREFIX" && "$PREFIX/bin/skafos" run src.lua)" = "@lua/skafos/errors.lua" ] \
  || fail "an unchanged installed module is not loaded from the embedded copy"
echo '-- edited' >> "$PREFIX/share/skafos/lua/skafos/errors.lua"
case "$(cd "$PREFIX" && "$PREFIX/bin/skafos" run src.lua)" in
  @*/share/skafos/lua/skafos/errors.lua) ;;
  *) fail "an edited installed module is not the one loaded" ;;
esac
# the installed share directory is on the lookup path, found from the executable
"$PREFIX/bin/skafos" scripts | grep -q "$PREFIX/bin/../share/skafos/scripts\|$PREFIX/share/skafos/scripts" \
  || fail "share directory not on the lookup path"
echo 'return { run = function() print("from share") end }' > "$PREFIX/share/skafos/scripts/sharetest.lua"
[ "$(cd "$PREFIX" && HOME="$PREFIX" XDG_CONFIG_HOME="$PREFIX/x" "$PREFIX/bin/skafos" sharetest)" = "from share" ] \
  || fail "a workflow in the share directory does not run"
[ "$(cd "$PREFIX" && ${SKAFOS_SANITIZER_PRELOAD:+env LD_PRELOAD=$SKAFOS_SANITIZER_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
  lua5.4 -e "package.cpath='$(dirname "$so")/?.so'" -l skafos -e 'print(skafos.version)')" = \
  "$("$PREFIX/bin/skafos" --version | cut -d' ' -f2)" ] || fail "lua5.4 -l skafos from the install"
# a stock lua5.4 (whose own share directory is elsewhere) runs the workflows of the install
# its skafos.so belongs to
[ "$(cd "$PREFIX" && HOME="$PREFIX" XDG_CONFIG_HOME="$PREFIX/x" \
  ${SKAFOS_SANITIZER_PRELOAD:+env LD_PRELOAD=$SKAFOS_SANITIZER_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
  lua5.4 -e "package.cpath='$(dirname "$so")/?.so'" -e 'os.exit(require("skafos").run("sharetest"))')" = \
  "from share" ] || fail "lua5.4 with the installed skafos.so does not use the install's share directory"
echo "install: ok"
