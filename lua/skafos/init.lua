-- `require "skafos"`: the library face of the runtime. The native modules are reachable
-- as skafos.http, skafos.s3, skafos.zip, skafos.fs (loaded on first use), and
-- skafos.run(name, argv) runs a workflow as the command line would.
local core = require "skafos.core"

local M = { version = core.version }

local NATIVE = { http = true, s3 = true, zip = true, fs = true }

setmetatable(M, {
  __index = function(t, k)
    if NATIVE[k] then
      local mod = require("skafos." .. k)
      rawset(t, k, mod)
      return mod
    end
  end,
})

---Runs workflow `name` with command-line arguments; returns its exit code. Errors are
---raised as tables {code, message, exit}.
---@param name string
---@param argv? string[]
---@return integer
function M.run(name, argv)
  return require("skafos.cli").run_workflow(name, argv or {})
end

return M
