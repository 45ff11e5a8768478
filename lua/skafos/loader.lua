-- Script and module lookup for the runtime. Loaded by core/runtime.c before anything
-- else (with skafos.core as its argument); installs the searcher that lets files on disk
-- shadow the copies compiled into the binary. Order, first match wins:
--   $SKAFOS_PATH (';'-separated; an empty item stands for the defaults below)
--   ./.skafos/{scripts,lua}   $XDG_CONFIG_HOME/skafos/{scripts,lua}
--   <exe>/../share/skafos/{scripts,lua}   the embedded copy
local core = ...
if package.loaded["skafos.loader"] then return package.loaded["skafos.loader"] end

local M = {}

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function parent_dir(path)
  return (path:gsub("/[^/]*$", ""))
end

---The default locations for one kind of file ("scripts" or "lua"), in order.
---@param kind string
---@return {path: string, origin: string}[]
local function default_dirs(kind)
  local dirs = { { path = "./.skafos/" .. kind, origin = "project" } }
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if not xdg or xdg == "" then
    local home = os.getenv("HOME")
    xdg = home and home ~= "" and home .. "/.config" or nil
  end
  if xdg then dirs[#dirs + 1] = { path = xdg .. "/skafos/" .. kind, origin = "user" } end
  local exe = core.exe_dir()
  if exe then
    dirs[#dirs + 1] = { path = parent_dir(exe) .. "/share/skafos/" .. kind, origin = "installed" }
  end
  return dirs
end

---Directories searched for workflows (kind "scripts") or modules (kind "lua").
---@param kind string
---@return {path: string, origin: string}[]
function M.dirs(kind)
  local spec = os.getenv("SKAFOS_PATH")
  if not spec or spec == "" then return default_dirs(kind) end
  local dirs, defaults_added = {}, false
  for item in (spec .. ";"):gmatch("([^;]*);") do
    if item == "" then
      if not defaults_added then
        for _, d in ipairs(default_dirs(kind)) do dirs[#dirs + 1] = d end
        defaults_added = true
      end
    else
      dirs[#dirs + 1] = { path = item, origin = "SKAFOS_PATH" }
    end
  end
  return dirs
end

-- The embedded copy comes precompiled (core/tools/embed.c): no parsing at start-up.
local function load_embedded(path)
  local chunk, err = core.load_embedded(path)
  if not chunk and err then error(err, 0) end
  return chunk
end

-- Whether the file at path holds exactly the source of embedded file key; nil when either
-- is missing.
local function same_as_embedded(path, key)
  local src = core.embedded(key)
  local f = src and io.open(path, "rb")
  if not f then return nil end
  local disk = f:read("a")
  f:close()
  return disk == src
end

-- The installed share directory holds copies of the embedded files, there to read and
-- copy; a copy left unchanged loads from the embedded bytecode instead of being parsed.
local function load_file(path, origin, key)
  if origin == "installed" and key and same_as_embedded(path, key) then return load_embedded(key) end
  return loadfile(path, "t")
end

---Finds module `name` on disk or embedded.
---@return string|nil path, string|nil origin, string|nil key  the embedded file it stands for
function M.find_module(name)
  local rel = name:gsub("%.", "/")
  local keys = { "lua/" .. rel .. ".lua", "lua/" .. rel .. "/init.lua" }
  for _, d in ipairs(M.dirs("lua")) do
    for _, key in ipairs(keys) do
      local candidate = d.path .. key:sub(#"lua" + 1)
      if exists(candidate) then return candidate, d.origin, key end
    end
  end
  for _, key in ipairs(keys) do
    if core.embedded(key) then return key, "embedded", key end
  end
  return nil
end

-- A module embedded from elsewhere (argparse, the system's copy at build time) gives way
-- to a different copy on package.path: embedding it only saves parsing the same file.
local function differs_on_path(name, key)
  if key:match("^lua/skafos/") then return false end
  local file = package.searchpath(name, package.path)
  return file ~= nil and same_as_embedded(file, key) == false
end

local function searcher(name)
  local path, origin, key = M.find_module(name)
  if not path then return "\n\tno skafos module '" .. name .. "' on the skafos path" end
  if origin == "embedded" then
    if differs_on_path(name, key) then return "\n\ta different " .. name .. " is on package.path" end
    return load_embedded(path), path
  end
  local chunk, err = load_file(path, origin, key)
  if not chunk then error(err, 0) end
  return chunk, path
end

---Where workflow `name` resolves from: path (a file, or "scripts/<name>.lua" embedded),
---origin ("SKAFOS_PATH", "project", "user", "installed" or "embedded").
---@param name string
---@return string|nil path, string|nil origin
function M.find_workflow(name)
  if type(name) ~= "string" or not name:match("^[%w_][%w_%-]*$") then return nil end
  for _, d in ipairs(M.dirs("scripts")) do
    local candidate = d.path .. "/" .. name .. ".lua"
    if exists(candidate) then return candidate, d.origin end
  end
  local embedded = "scripts/" .. name .. ".lua"
  if core.embedded(embedded) then return embedded, "embedded" end
  return nil
end

---Loads the chunk of a workflow found by find_workflow.
---@return function|nil chunk, string|nil err
function M.load_workflow(path, origin)
  if origin == "embedded" then return load_embedded(path) end
  return load_file(path, origin, "scripts/" .. path:match("([^/]+)$"))
end

---Every workflow name visible on the lookup path, with where it resolves from.
---@return {name: string, path: string, origin: string}[]
function M.workflows()
  local fs = require "skafos.fs"
  local seen, list = {}, {}
  local function add(name)
    if not seen[name] then
      seen[name] = true
      local path, origin = M.find_workflow(name)
      if path then list[#list + 1] = { name = name, path = path, origin = origin } end
    end
  end
  for _, d in ipairs(M.dirs("scripts")) do
    for _, entry in ipairs(fs.dir(d.path) or {}) do
      local name = entry:match("^([%w_][%w_%-]*)%.lua$")
      if name then add(name) end
    end
  end
  for _, path in ipairs(core.embedded_list("scripts/")) do
    local name = path:match("^scripts/([%w_][%w_%-]*)%.lua$")
    if name then add(name) end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- Relative entries would let any file in the current directory shadow a module.
local function without_relative(path)
  local kept = {}
  for item in path:gmatch("[^;]+") do
    if not item:match("^%./") then kept[#kept + 1] = item end
  end
  return table.concat(kept, ";")
end

package.path = without_relative(package.path)
package.cpath = without_relative(package.cpath)
table.insert(package.searchers, 2, searcher)
package.loaded["skafos.loader"] = M
return M
