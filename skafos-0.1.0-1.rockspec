-- The Lua module skafos.so for LuaRocks: the runtime, its native modules and the workflows
-- compiled in, built with CMake from this checkout (no download):
--   luarocks --lua-version 5.4 make --tree TREE
--   eval "$(luarocks --lua-version 5.4 --tree TREE path)"; lua5.4 -e 'require "skafos"'
-- The C libraries are Debian's: see external_dependencies.
rockspec_format = "3.0"
package = "skafos"
version = "0.1.0-1"
source = {
  -- `luarocks make` builds the checkout it runs in; this is only where a packed rock says
  -- its source came from
  url = "git+file://./skafos",
  tag = "v0.1.0",
}
description = {
  summary = "Publish machine-learning model versions and fetch them back, from Lua",
  detailed = [[
`require "skafos"` gives skafos.publish, fetch, versions, deploy, ... and the native
modules skafos.http, skafos.s3 (streamed, verified transfers), skafos.zip and skafos.fs.]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- Debian: liblua5.4-dev libcurl4-openssl-dev lua-cjson-dev libminizip-dev zlib1g-dev
-- libssl-dev lua-argparse cmake pkg-config. Checked by library, since Debian keeps curl.h
-- in a multiarch directory LuaRocks does not search.
external_dependencies = {
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" },
  LUA_CJSON = { library = "lua5.4-cjson" },
  MINIZIP = { library = "minizip" },
  ZLIB = { library = "z" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    SKAFOS_LUA_MODULE_ONLY = "ON",
    SKAFOS_LUA_CMOD_DIR = "$(LIBDIR)",
    BUILD_TESTING = "OFF",
  },
}
