-- Exercises tests/helpers/emulator.lua the way a busted spec would; run by
-- test/lua_helper.test.js from any directory. Prints "ok" at the end.
local root = assert(arg[1], "usage: lua5.4 helper_check.lua REPO_ROOT")
package.path = root .. "/tests/helpers/?.lua;" .. package.path
local emu = require "emulator"
local cjson = require "cjson"

local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

assert(emu.root == root, "root " .. emu.root .. " ~= " .. root)
local e = emu.start{ url_ttl = 120 }
assert(e.api:match("^http://127%.0%.0%.1:%d+/v2$"), e.api)
assert(e.download:match("^http://127%.0%.0%.1:%d+/v2$"))
assert(e.storage:match("^http://127%.0%.0%.1:%d+$"))
assert(e.admin:match("/admin$"))
assert(e:env().SKAFOS_API_TOKEN == "demo-token")

local orgs = cjson.decode(sh("curl -sS -H 'X-API-TOKEN: demo-token' " .. e.api .. "/organizations"))
assert(orgs[1].display_name == "demo-org")

local rule = e:fault{ role = "api", action = { type = "status", status = 503 } }
assert(type(rule.id) == "number")
local code = sh("curl -s -o /dev/null -w '%{http_code}' -H 'X-API-TOKEN: demo-token' " .. e.api .. "/organizations")
assert(code == "503", code)
local log = e:requests()
assert(#log.api == 2 and log.api[2].status == 503 and #log.storage == 0)
e:clear_requests()
assert(#e:requests().api == 0)
e:fault{ role = "api", times = -1, action = { type = "delay", ms = 1 } }
assert(e:clear_faults().cleared == 1)

local url = e:presign{ method = "GET", key = "no/such/key" }
assert(sh("curl -s -o /dev/null -w '%{http_code}' '" .. url .. "'") == "404")

local data_dir = e.data_dir
local state = e:state()
assert(next(state.models) ~= nil)
e:restart()
assert(e.data_dir == data_dir)
local orgs_after = cjson.decode(sh("curl -sS -H 'X-API-TOKEN: demo-token' " .. e.api .. "/organizations"))
assert(orgs_after[1].display_name == "demo-org")
e:stop()
e:stop() -- twice is fine
assert(io.open(data_dir .. "/state.json") == nil, "data dir removed")

do
  local scoped <close> = emu.start{}
  assert(scoped.api)
end
print("ok")
