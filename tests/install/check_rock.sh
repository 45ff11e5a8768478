#!/bin/sh
# The rock: `luarocks make` of skafos-<version>-1.rockspec into a tree, from a copy of the
# sources, then a stock lua5.4 with that tree's paths requires skafos and uses it: the
# version, a zip written and read back, the network modules, and no share directory (the
# workflows are compiled in; nothing outside the tree is read).
# Usage: check_rock.sh SOURCE_DIR PROJECT_VERSION
set -eu
VERSION=$2
. "$(dirname "$0")/lib.sh"
command -v luarocks >/dev/null || fail "luarocks is not installed (apt-get install luarocks)"
isolate
rockspec=skafos-$VERSION-1.rockspec
[ -f "$ROOT/$rockspec" ] || fail "no $rockspec for project version $VERSION"

# luarocks builds in the directory it runs in (build.luarocks/): a copy, not the checkout
mkdir -p "$WORK/src"
(cd "$ROOT" && cp -r CMakeLists.txt cmake core lua scripts "$rockspec" "$WORK/src/")
TREE=$WORK/tree
(cd "$WORK/src" && CMAKE_BUILD_PARALLEL_LEVEL=2 luarocks --lua-version 5.4 make --tree "$TREE") \
  > "$WORK/rock.log" 2>&1 || { tail -n 40 "$WORK/rock.log" >&2; fail "luarocks make"; }
[ -f "$TREE/lib/lua/5.4/skafos.so" ] || fail "the rock did not install lib/lua/5.4/skafos.so"
luarocks --lua-version 5.4 --tree "$TREE" list --porcelain | grep -q "^skafos	$VERSION-1	installed" \
  || fail "luarocks does not list skafos $VERSION-1 as installed"

eval "$(luarocks --lua-version 5.4 --tree "$TREE" path)"
cd "$WORK"
cat > use.lua <<'LUA'
local skafos = require "skafos"
local zip, fs = require "skafos.zip", require "skafos.fs"
assert(package.searchpath("skafos", package.cpath):find(os.getenv("TREE"), 1, true), "not the tree's skafos.so")
local f = assert(io.open("in.txt", "w")); f:write(("model bytes "):rep(1000)); f:close()
assert(zip.create("out.zip", { "in.txt" }))
local names = {}
for _, e in ipairs(assert(zip.list("out.zip"))) do names[#names + 1] = e.name end
assert(table.concat(names, ",") == "in.txt", "zip.list: " .. table.concat(names, ","))
assert(zip.extract("out.zip", "x"))
assert(fs.stat("x/in.txt").size == 12000, "extracted size")
assert(type(require("skafos.http").request) == "function" and type(require("skafos.s3").get) == "function")
assert(require("skafos.core").share_dir() == nil, "a share directory outside the tree")
print(skafos.version)
LUA
out=$(TREE=$TREE lua5.4 use.lua 2>&1) || { echo "$out" >&2; fail "stock lua5.4 using the rock"; }
[ "$out" = "$VERSION" ] || fail "the rock's skafos.version is '$out', not $VERSION"
echo "install/rock: ok (skafos $out from $TREE)"
