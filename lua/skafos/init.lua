-- `require "skafos"`: the library face of the runtime, the same functions the commands
-- use. Each takes one table of options (the command's long options with '_' for '-',
-- plus org, app, model, token, api_url, ...) and returns a result table or `nil, err`.
--
--   local skafos = require "skafos"
--   local v = assert(skafos.publish { files = { "Model.mlmodel" }, model = "churn", description = "nightly" })
--   print(v.version, v.sha256)
--
-- The native modules are there too: skafos.http, skafos.s3, skafos.zip, skafos.fs, and
-- skafos.tasks to run several of these calls at once.
local core = require "skafos.core"
local errors = require "skafos.errors"
local loader = require "skafos.loader"

local M = { version = core.version }

-- Every function of the library returns its results, or nil and an error table
-- {code, message, exit, ...} with __tostring: whatever goes wrong inside (a setting, the
-- API, a native module, a hook, an interrupt) never raises out of it. It runs with the
-- skafos module lookup (loader.within), so configs and hooks may require project modules.
local function as_error(e)
  if errors.is(e) then
    if getmetatable(e) == nil or e.exit == nil then
      local fields = {}
      for k, v in pairs(e) do fields[k] = v end
      return errors.new(e.code, e.message, fields)
    end
    return e
  end
  return errors.new("FAILED", tostring(e))
end

local function api(fn)
  return function(...)
    local res = table.pack(pcall(loader.within, fn, ...))
    if not res[1] then return nil, as_error(res[2]) end
    if res[2] == nil and res[3] ~= nil then return nil, as_error(res[3]) end
    return table.unpack(res, 2, res.n)
  end
end

local NATIVE = { http = true, s3 = true, zip = true, fs = true, tasks = true }

setmetatable(M, {
  __index = function(t, k)
    if NATIVE[k] then
      local mod = require("skafos." .. k)
      rawset(t, k, mod)
      return mod
    end
  end,
})

local function session(opts, needs)
  return require("skafos.session").open { flags = opts, hooks = opts.hooks, needs = needs,
    on_warning = opts.on_warning }
end

---Publishes files as a new model version.
---@param opts {files: string[], description?: string, level?: string|integer, dry_run?: boolean,
---  hooks?: table, progress?: function, org?: string, app?: string, model?: string, token?: string}
---@return table|nil result {version, model_version_id, bytes, sha256, md5, seconds, ...}
---@return table|nil err also beside a result when the version is published but the
---  after_publish hook failed (err.exit 8)
M.publish = api(function(opts)
  opts = opts or {}
  local result, err = require("skafos.publish").publish {
    flags = opts, files = opts.files, description = opts.description, level = opts.level,
    dry_run = opts.dry_run, allow_empty = opts.allow_empty, hooks = opts.hooks, progress = opts.progress,
    on_retry = opts.on_retry,
    on_warning = opts.on_warning,
  }
  if result and result.hook_error then
    return result, errors.new(result.hook_error.code, result.hook_error.message,
      { hook = result.hook_error.hook, exit = errors.EXIT.AFTER_HOOK, version = result.version })
  end
  return result, err
end)

---Downloads a version (latest by default), verified; `unzip = true|DIR` extracts it.
---@param opts {version?: integer|string, output?: string, unzip?: boolean|string, force?: boolean}
---@return table|nil result {version, path, bytes, sha256, unzipped}
---@return table|nil err
M.fetch = api(function(opts)
  opts = opts or {}
  return require("skafos.fetch").fetch {
    flags = opts, version = opts.version, output = opts.output, unzip = opts.unzip, force = opts.force,
    progress = opts.progress, on_retry = opts.on_retry, on_warning = opts.on_warning,
  }
end)

---The model's finalized versions, ascending.
M.versions = api(function(opts)
  local s, err = session(opts or {})
  if not s then return nil, err end
  return s.client:versions()
end)

---Deploys `opts.version` (default "latest") to `opts.environment` (default "dev").
---@return table|nil {version, message}
M.deploy = api(function(opts)
  opts = opts or {}
  local s, err = session(opts)
  if not s then return nil, err end
  return s.client:deploy(opts.version or "latest", opts.environment or "dev")
end)

---The model's environments with their device counts.
M.environments = api(function(opts)
  local s, err = session(opts or {})
  if not s then return nil, err end
  return s.client:environments()
end)

---Rows {org, app, model, updated_at} for everything the token can see.
M.summary = api(function(opts)
  local s, err = session(opts or {}, { "token" })
  if not s then return nil, err end
  local orgs, oerr = s.client:organizations()
  if not orgs then return nil, oerr end
  local rows = {}
  for _, o in ipairs(orgs) do
    local apps, aerr = s.client:apps(o.display_name)
    if not apps then return nil, aerr end
    for _, a in ipairs(apps) do
      for _, m in ipairs(a.models or {}) do
        rows[#rows + 1] = { org = o.display_name, app = a.name, model = m.name,
          updated_at = m.updated_at }
      end
    end
  end
  return rows
end)

---The models of the app (`opts.app` in `opts.org`, or the settings'), by name.
---@return table|nil rows {name, description, updated_at}[]
---@return table|nil err
M.models = api(function(opts)
  local s, err = session(opts or {}, { "token", "org", "app" })
  if not s then return nil, err end
  local apps, aerr = s.client:apps(s.settings.org)
  if not apps then return nil, aerr end
  for _, a in ipairs(apps) do
    if a.name == s.settings.app then
      local rows = {}
      for _, m in ipairs(a.models or {}) do
        rows[#rows + 1] = { name = m.name, description = m.description, updated_at = m.updated_at }
      end
      table.sort(rows, function(x, y) return x.name < y.name end)
      return rows
    end
  end
  return nil, errors.new("NOT_FOUND", ("no app %s in organization %s"):format(s.settings.app, s.settings.org))
end)

---Creates model `opts.name` in the app.
M.create_model = api(function(opts)
  opts = opts or {}
  local s, err = session(opts, { "token", "org", "app" })
  if not s then return nil, err end
  return s.client:create_model(opts.name, opts.description)
end)

---Runs workflow `name` with command-line arguments, as `skafos NAME ARGS...` would
---(its output on stdout and stderr); returns its exit code, and the error (a table
---{code, message, exit}) when it failed. Never raises for a failure of the workflow.
---@param name string
---@param argv? string[]
---@return integer code, table|nil err
function M.run(name, argv)
  local ok, res = pcall(require("skafos.cli").run_workflow, name, argv or {})
  if ok then return res end
  local err = as_error(res)
  return err.exit or errors.EXIT.FAILED, err
end

return M
