-- Script and module lookup for the runtime. Loaded by core/runtime.c before anything
-- else (with skafos.core as its argument); installs the searcher that lets files on disk
-- shadow the copies compiled into the binary. Order, first match wins:
--   $SKAFOS_PATH (';'-separated; an empty item stands for the defaults below)
--   ./.skafos/{scripts,lua}   $XDG_CONFIG_HOME/skafos/{scripts,lua}
--   this install's share/skafos/{scripts,lua} (core.share_dir)   the embedded copy
-- Other module names are looked up this way only while skafos runs (M.within): a host
-- interpreter keeps its package.path, cpath and searchers for everything else.
-- Project code (.skafos/config.lua, .skafos/scripts, .skafos/lua) is trusted the way git
-- trusts a repository: only when it and the directories holding it belong to the current
-- user or root and are writable by neither group nor others, or when the project
-- directory is listed as safe (SKAFOS_SAFE_DIRECTORIES, or safe_directories in the
-- user's config). Anything else stops the command with UNTRUSTED (exit 2).
local core = ...
if package.loaded["skafos.loader"] then return package.loaded["skafos.loader"] end

local M = {}

---False while showing help or listing scripts: project directories are then never
---searched for modules, and project workflows are listed by name, never loaded.
M.project_code = true

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function user_config_dir()
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if not xdg or xdg == "" then
    local home = os.getenv("HOME")
    xdg = home and home ~= "" and home .. "/.config" or nil
  end
  return xdg and xdg .. "/skafos" or nil
end

-- ---- trust ------------------------------------------------------------------------------
local function fs() return require "skafos.fs" end

local untrusted_mt = { __name = "skafos.Error", __tostring = function(e) return e.message end }

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local cwd = fs().getcwd() or "."
  path = path:gsub("^%./", "")
  return cwd .. "/" .. path
end

-- The directories the user listed as safe: SKAFOS_SAFE_DIRECTORIES (':'-separated) and
-- safe_directories in the user's own config file (which is theirs, so it may run).
local function safe_list()
  local list = {}
  for item in (os.getenv("SKAFOS_SAFE_DIRECTORIES") or ""):gmatch("[^:]+") do list[#list + 1] = item end
  local dir = user_config_dir()
  local chunk = dir and exists(dir .. "/config.lua") and loadfile(dir .. "/config.lua", "t")
  if chunk then
    local ok, cfg = pcall(chunk)
    if ok and type(cfg) == "table" and type(cfg.safe_directories) == "table" then
      for _, item in ipairs(cfg.safe_directories) do
        if type(item) == "string" then list[#list + 1] = item end
      end
    end
  end
  return list
end

---A word for a POSIX shell: as it is when it needs no quoting, else in single quotes.
---@param s string
---@return string
function M.shell_quote(s)
  if s:match("^[%w%-%./_:=,+@]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function canonical(path)
  return (fs().realpath(path) or path):gsub("/+$", "")
end

---Whether the user listed `dir` (a project directory) as safe: its path, "DIR/*" for every
---directory under DIR, or "*" for all.
---@param dir string
---@return boolean
function M.is_safe(dir)
  local real = canonical(dir)
  for _, item in ipairs(safe_list()) do
    if item == "*" then return true end
    local prefix = item:match("^(.-)/%*$")
    if prefix then
      local base = canonical(prefix == "" and "/" or prefix)
      if real:sub(1, #base + 1) == (base == "" and "/" or base .. "/") then return true end
    elseif canonical(item) == real then
      return true
    end
  end
  return false
end

-- Why path may not be trusted, or nil: it must belong to the current user or root and be
-- writable by neither group nor others.
local function ownership_problem(path, euid)
  local st = fs().stat(path)
  if not st then return nil end
  if st.uid ~= euid and st.uid ~= 0 then
    return ("%s belongs to another user (uid %d; you are uid %d)"):format(path, st.uid, euid)
  end
  if st.mode & 18 ~= 0 then -- 0022
    return ("%s is writable by %s (mode %04o)"):format(path, st.mode & 2 ~= 0 and "others" or "its group",
      st.mode)
  end
  return nil
end

---Checks that project code at `path` may run: `path` and every directory from it up to
---the `.skafos` directory of `project` pass ownership_problem, or `project` is listed as
---safe. Returns true, or nil and an UNTRUSTED error that says how to allow it.
---@param path string a file or directory inside <project>/.skafos
---@param project string the project directory
---@return true|nil ok, table|nil err
function M.check_trust(path, project)
  local euid = fs().geteuid()
  local top = absolute(project):gsub("/+$", "") .. "/.skafos"
  local p = absolute(path)
  local problem
  while true do
    problem = ownership_problem(p, euid)
    if problem or p == top or #p <= #top then break end
    p = p:match("^(.*)/[^/]*$")
  end
  if not problem or M.is_safe(project) then return true end
  local dir = canonical(project)
  local q = M.shell_quote
  return nil, setmetatable({
    code = "UNTRUSTED", exit = 2, path = path,
    message = ("refusing to run project code: %s\n"
      .. "  If you trust %s, allow it with:\n"
      .. "    export SKAFOS_SAFE_DIRECTORIES=%s\n"
      .. "  or with safe_directories = { %q } in %s/config.lua,\n"
      .. "  or give it to yourself: chown -R %d %s && chmod -R go-w %s")
      :format(problem, dir, q(dir), dir, user_config_dir() or "~/.config/skafos", euid, q(dir .. "/.skafos"),
        q(dir .. "/.skafos")),
  }, untrusted_mt)
end

-- Raises the error of check_trust for a file found in a project directory.
local function require_trust(path)
  local ok, err = M.check_trust(path, fs().getcwd() or ".")
  if not ok then error(err, 0) end
end

---The first `description = "..."` in a workflow file, read as text (never run).
---@param path string
---@return string|nil
function M.describe(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local src = f:read(65536) or ""
  f:close()
  local _, text = src:match("description%s*=%s*([\"'])(.-)%1")
  text = text or src:match("description%s*=%s*%[(=*)%[(.-)%]%1%]")
  return text
end

---The default locations for one kind of file ("scripts" or "lua"), in order.
---@param kind string
---@param with_project? boolean include ./.skafos/<kind> even while project code is off
---@return {path: string, origin: string}[]
local function default_dirs(kind, with_project)
  local dirs = {}
  if M.project_code or with_project then dirs[1] = { path = "./.skafos/" .. kind, origin = "project" } end
  local user = user_config_dir()
  if user then dirs[#dirs + 1] = { path = user .. "/" .. kind, origin = "user" } end
  local share = core.share_dir()
  if share then dirs[#dirs + 1] = { path = share .. "/" .. kind, origin = "installed" } end
  return dirs
end

---Directories searched for workflows (kind "scripts") or modules (kind "lua").
---@param kind string
---@param with_project? boolean include the project's even while project code is off
---@return {path: string, origin: string}[]
function M.dirs(kind, with_project)
  local spec = os.getenv("SKAFOS_PATH")
  if not spec or spec == "" then return default_dirs(kind, with_project) end
  local dirs, defaults_added = {}, false
  for item in (spec .. ";"):gmatch("([^;]*);") do
    if item == "" then
      if not defaults_added then
        for _, d in ipairs(default_dirs(kind, with_project)) do dirs[#dirs + 1] = d end
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
  for _, dir in ipairs(M.script_dirs) do
    for _, key in ipairs(keys) do
      local candidate = dir .. key:sub(#"lua" + 1)
      if exists(candidate) then return candidate, "script", key end
    end
  end
  for _, d in ipairs(M.dirs("lua")) do
    for _, key in ipairs(keys) do
      local candidate = d.path .. key:sub(#"lua" + 1)
      if exists(candidate) then
        if d.origin == "project" then require_trust(candidate) end
        return candidate, d.origin, key
      end
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

---Greater than 0 while skafos itself runs (a command, or a call of the library's): any
---module name is then looked up as the README says. Outside, only skafos's own names
---are, so a host interpreter that did `require "skafos"` finds its other modules as before.
M.scope = 0

---Runs fn(...) with every module name looked up on the skafos path; returns its results
---and passes its errors on.
function M.within(fn, ...)
  M.scope = M.scope + 1
  local res = table.pack(pcall(fn, ...))
  M.scope = M.scope - 1
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

---Directories of scripts run with `skafos run FILE`: modules beside the script come first.
M.script_dirs = {}

local function ours(name)
  return name == "skafos" or name:sub(1, 7) == "skafos."
end

local function searcher(name)
  if M.scope == 0 and not ours(name) then return nil end
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
---origin ("SKAFOS_PATH", "project", "user", "installed" or "embedded"). A project file is
---found even while project code is off (help names it), but only loaded when it is on.
---@param name string
---@return string|nil path, string|nil origin
function M.find_workflow(name)
  if type(name) ~= "string" or not name:match("^[%w_][%w_%-]*$") then return nil end
  for _, d in ipairs(M.dirs("scripts", true)) do
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
  if origin == "project" then
    if not M.project_code then return nil, path .. ": project code is not run while showing help" end
    require_trust(path)
  end
  return load_file(path, origin, "scripts/" .. path:match("([^/]+)$"))
end

---Every workflow name visible on the lookup path, with where it resolves from.
---@return {name: string, path: string, origin: string}[]
function M.workflows()
  local seen, list = {}, {}
  local function add(name)
    if not seen[name] then
      seen[name] = true
      local path, origin = M.find_workflow(name)
      if path then list[#list + 1] = { name = name, path = path, origin = origin } end
    end
  end
  for _, d in ipairs(M.dirs("scripts", true)) do
    for _, entry in ipairs(fs().dir(d.path) or {}) do
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

table.insert(package.searchers, 2, searcher)
package.loaded["skafos.loader"] = M
return M
