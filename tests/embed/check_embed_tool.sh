#!/bin/sh
# The build's Lua embedder (core/tools/embed.c): a file with a syntax error fails the build
# with its name and line and writes nothing; good files come out as source and bytecode.
set -eu
TOOL=$1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skafos-embed.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$WORK/lua" "$WORK/elsewhere"
printf 'return { answer = 42 }\n' > "$WORK/lua/good.lua"
printf 'local x = 1\nreturn x +\n' > "$WORK/lua/bad.lua"
printf 'return "other"\n' > "$WORK/elsewhere/other.lua"

if "$TOOL" "$WORK/out.c" "$WORK" lua/good.lua lua/bad.lua 2> "$WORK/err"; then
  fail "a syntax error was embedded"
fi
grep -q 'lua/bad.lua:[23]:' "$WORK/err" || fail "the error does not name file and line: $(cat "$WORK/err")"
[ ! -e "$WORK/out.c" ] || fail "an output was written despite the error"

"$TOOL" "$WORK/out.c" "$WORK" lua/good.lua "lua/named.lua=$WORK/elsewhere/other.lua" \
  || fail "good files were refused"
grep -q '{"lua/good.lua", (const char \*)s0, 23, (const char \*)c0, [1-9]' "$WORK/out.c" \
  || fail "lua/good.lua is not embedded with its source and bytecode"
grep -q '{"lua/named.lua", (const char \*)s1, 15,' "$WORK/out.c" || fail "NAME=PATH is not embedded under NAME"
# bytecode starts with Lua's signature, ESC "Lua"
grep -q '^static const unsigned char c0\[\] = {$' "$WORK/out.c" || fail "no bytecode array"
sed -n '/^static const unsigned char c0/{n;p;}' "$WORK/out.c" | grep -q '^0x1b,0x4c,0x75,0x61,' \
  || fail "the bytecode does not start with Lua's signature"
# the release that compiled the bytecode, which the runtime compares with its own
grep -q '^const char skafos_embedded_lua_ident\[\] = "\$LuaVersion: Lua 5\.4' "$WORK/out.c" \
  || fail "the Lua release of the bytecode is not recorded"
# a second run with the same input leaves the file alone (a no-op build stays a no-op)
before=$(stat -c %Y.%i "$WORK/out.c")
sleep 1
"$TOOL" "$WORK/out.c" "$WORK" lua/good.lua "lua/named.lua=$WORK/elsewhere/other.lua"
[ "$(stat -c %Y.%i "$WORK/out.c")" = "$before" ] || fail "an unchanged output was rewritten"
echo "embed tool: ok"
