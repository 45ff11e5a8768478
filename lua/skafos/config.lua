-- Settings and where they come from: flag > environment > .skafos/config.lua (searched
-- upwards from the current directory) > $XDG_CONFIG_HOME/skafos/config.lua > defaults.
-- Config files are Lua chunks returning a table of settings and policy hooks; a project's
-- runs only when skafos.loader trusts it. The token is registered as a secret (never
-- printed) and goes only over https, or plain http to loopback.
local core = require "skafos.core"
local errors = require "skafos.errors"
local fs = require "skafos.fs"
local loader = require "skafos.loader"

local M = {}

M.HOSTS = {
  production = { api_url = "https://api.skafos.ai/v2", download_url = "https://download.skafos.ai/v2" },
  staging = { api_url = "https://api.skafos.wtf/v2", download_url = "https://download.skafos.wtf/v2" },
}

-- setting -> environment variable
M.ENV = {
  org = "SKAFOS_ORG_NAME", app = "SKAFOS_APP_NAME", model = "SKAFOS_MODEL_NAME",
  api_url = "SKAFOS_API_URL", download_url = "SKAFOS_DOWNLOAD_URL", ca_file = "SKAFOS_CA_FILE",
}

M.SETTINGS = { "org", "app", "model", "api_url", "download_url", "hosts", "ca_file", "speed_limit", "speed_time",
  "timeout", "max_entries", "connections" }

---Defaults of the transfer deadlines: a transfer slower than speed_limit bytes/s for
---speed_time seconds is abandoned (and retried); no overall timeout. A download uses up
---to `connections` connections, each fetching ranges of the archive. An archive of more
---than max_entries entries is refused (0: no limit).
M.DEFAULTS = { speed_limit = 1024, speed_time = 30, max_entries = 1000000, connections = 8 }

-- Numeric settings: the smallest value each takes, those that are whole numbers, and the
-- largest where there is one.
local NUMERIC = { speed_limit = 1, speed_time = 1, timeout = 0.001, max_entries = 0, connections = 1 }
local WHOLE = { speed_limit = true, speed_time = true, max_entries = true, connections = true }
local NUMERIC_MAX = { connections = 32 }

---The option of the workflows that read archives (fetch, and publish of a .zip as it is).
M.archive_options = {
  { "--max-entries", "Refuse an archive of more than N entries before anything is written (default "
    .. "1000000; 0: no limit)", type = "integer", argname = "N" },
}

M.HOOKS = { "select_files", "compression", "before_create", "after_publish", "retry" }

---The connection options every API workflow accepts (argparse specs, see skafos.workflow).
M.options = {
  { "--org", "Organization (display name); env SKAFOS_ORG_NAME", argname = "ORG" },
  { "--app", "App name; env SKAFOS_APP_NAME", argname = "APP" },
  { "--model", "Model name; env SKAFOS_MODEL_NAME", argname = "MODEL" },
  { "--api-url", "API base URL; env SKAFOS_API_URL", argname = "URL" },
  { "--download-url", "Download base URL; env SKAFOS_DOWNLOAD_URL", argname = "URL" },
  { "--hosts", "Hosts to use when no URL is set: production or staging", argname = "NAME",
    choices = { "production", "staging" } },
  { "--token-file", "Read the API token from this file (else SKAFOS_API_TOKEN)", argname = "FILE" },
  { "--ca-file", "Verify the servers with the CA certificates (PEM) in this file instead of the "
    .. "system's, e.g. for a private CA or a TLS-inspecting proxy; env SKAFOS_CA_FILE", argname = "FILE" },
  { "--speed-limit", "Abandon (and retry) a transfer slower than this many bytes/s for --speed-time "
    .. "(default 1024)", type = "integer", argname = "BYTES" },
  { "--speed-time", "Seconds a transfer may stay under --speed-limit (default 30)", type = "integer",
    argname = "SECONDS" },
  { "--timeout", "Give up the whole command after this many seconds (exit 6; what was downloaded is kept)",
    type = "number", argname = "SECONDS" },
}

---The same list (kept for workflows written when --env also chose the hosts: --env is
---now only ever a deployment environment).
M.options_hosts_only = M.options

---Output options shared by the workflows.
M.output_options = {
  { "--json", "Print the result as one JSON document on stdout", flag = true },
  { "-q --quiet", "Print only the essential result (publish: the version; fetch: the path; lists: one "
    .. "name per line) and errors", flag = true },
  { "--progress", "Progress display (default: bar on a terminal, else plain)", argname = "MODE",
    choices = { "bar", "plain", "none" } },
}

---Concatenates option lists into a new list.
function M.with(...)
  local out = {}
  for i = 1, select("#", ...) do
    for _, o in ipairs((select(i, ...))) do out[#out + 1] = o end
  end
  return out
end

local function dirname(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

---Loads a config file: a Lua chunk returning a table.
---@return table|nil cfg, string|nil err
function M.load_file(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, err end
  local ok, cfg = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(cfg) end
  if type(cfg) ~= "table" then
    return nil, path .. ": a config file must return a table, e.g. return { org = \"my-org\" }"
  end
  return cfg
end

-- Whether the upward search may look in dir: it belongs to the current user or root,
-- and not everyone may write to it (as in /tmp, where anyone could plant a .skafos).
local function searchable(dir, euid)
  local st = fs.stat(dir)
  return st ~= nil and (st.uid == euid or st.uid == 0) and st.mode & 2 == 0
end

---The project config: .skafos/config.lua in the current directory or the nearest parent.
---The search stops at a directory of another user's, or one everyone may write to.
---@return string|nil path, string|nil project the directory holding .skafos
function M.find_project_file(start)
  local dir = start or fs.getcwd()
  local euid = fs.geteuid()
  while dir do
    local candidate = (dir == "/" and "" or dir) .. "/.skafos/config.lua"
    if fs.lstat(candidate) then return candidate, dir end
    if dir == "/" or not searchable(dir, euid) then break end
    dir = dirname(dir)
    if not searchable(dir, euid) then break end
  end
  return nil
end

---The user's skafos directory: $XDG_CONFIG_HOME/skafos, else ~/.config/skafos.
---@return string|nil
function M.user_dir(getenv)
  getenv = getenv or os.getenv
  local xdg = getenv("XDG_CONFIG_HOME")
  if not xdg or xdg == "" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    xdg = home .. "/.config"
  end
  return xdg .. "/skafos"
end

function M.user_file(getenv)
  local dir = M.user_dir(getenv)
  local path = dir and dir .. "/config.lua"
  if path and fs.stat(path) then return path end
  return nil
end

---Where `skafos login` keeps the token (used when nothing else gives one).
---@return string|nil
function M.login_file(getenv)
  local dir = M.user_dir(getenv)
  return dir and dir .. "/token"
end

local function nonempty(v)
  if v == nil or v == "" then return nil end
  return v
end

M.MAX_TOKEN_FILE = 4096

local function read_token_file(path)
  local st = fs.stat(path)
  if st and st.type == "directory" then return nil, ("token file %s is a directory"):format(path) end
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read token file: " .. tostring(err) end
  -- a pipe (--token-file <(vault read ...)) is fine; only the size is bounded
  local token = f:read(M.MAX_TOKEN_FILE + 1) or ""
  f:close()
  if #token > M.MAX_TOKEN_FILE then
    return nil, ("token file %s is larger than %d bytes: it should hold only the token"):format(path,
      M.MAX_TOKEN_FILE)
  end
  token = token:match("^%s*(.-)%s*$")
  if token == "" then return nil, "token file " .. path .. " is empty" end
  local warning
  if st and st.type == "file" and st.mode & 0x3f ~= 0 then
    warning = ("token file %s can be read by %s (mode %04o); run: chmod 600 %s"):format(path,
      st.mode & 0x7 ~= 0 and "everyone" or "its group", st.mode, loader.shell_quote(path))
  end
  return token, nil, warning
end

-- A token is sent as a header value: whitespace or control characters inside it would
-- break the request or smuggle another header.
function M.token_problem(token)
  local at = token:find("[%c%s]")
  if not at then return nil end
  local c = token:byte(at)
  return ("contains %s at character %d; a token is one word of printable characters")
    :format(c == 32 and "a space" or ("a control character (byte %d)"):format(c), at)
end

local LOOPBACK = { localhost = true, ["::1"] = true }

---Whether host (as written in a URL, without brackets) is a loopback address.
---@param host string
---@return boolean
function M.is_loopback(host)
  host = host:lower()
  if LOOPBACK[host] or host:match("%.localhost$") then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

---Splits an absolute URL: scheme (lower case) and host (no brackets, port or user), or nil.
---@param url string
---@return string|nil scheme, string|nil host
function M.url_parts(url)
  local scheme, rest = url:match("^(%a[%w+.%-]*)://(.*)$")
  if not scheme then return nil end
  local authority = rest:match("^([^/?#]*)"):gsub("^.*@", "")
  local host = authority:match("^%[([^%]]*)%]") or authority:match("^([^:]*)")
  return scheme:lower(), host
end

---Why the token may not be sent to url, or nil: it must be https, or plain http to a
---loopback address (the local emulator).
---@param url string
---@return string|nil problem
function M.url_problem(url)
  local scheme, host = M.url_parts(url)
  if not scheme then return "it has no scheme" end
  if host == "" then return "it names no host" end
  if scheme == "https" then return nil end
  if scheme == "http" then
    if M.is_loopback(host) then return nil end
    return "it is plain http to a host other than this machine, so the token would travel in clear"
  end
  return ("its scheme %s is not supported"):format(scheme)
end

local function https_form(url)
  local scheme, rest = url:match("^(%a[%w+.%-]*)://(.*)$")
  if scheme then return "https://" .. rest end
  return "https://" .. url
end

---Resolves every setting.
---@param flags? table parsed command-line options (org, app, model, api_url, download_url, env, token_file;
---  library callers may also pass token)
---@param opts? {env?: fun(name: string): string?, cwd?: string}
---@return table|nil settings {org, app, model, api_url, download_url, token, sources = {name = origin},
---  hooks = {name = fn}, warnings = {...}, files = {...}}
---@return table|nil err {code = "USAGE", message}
function M.resolve(flags, opts)
  flags = flags or {}
  opts = opts or {}
  local getenv = opts.env or os.getenv
  local layers = {}
  local files = {}
  local project, project_dir = M.find_project_file(opts.cwd)
  if project then
    local ok, terr = loader.check_trust(project, project_dir)
    if not ok then return nil, terr end
  end
  local user = M.user_file(getenv)
  for _, spec in ipairs { { project, "project" }, { user, "user" } } do
    local path, origin = spec[1], spec[2]
    if path then
      local cfg, err = M.load_file(path)
      if not cfg then return nil, errors.new("USAGE", "bad config file: " .. err) end
      layers[#layers + 1] = { cfg = cfg, origin = origin .. " config " .. path, dir = dirname(path) }
      files[#files + 1] = path
    end
  end

  local s = { sources = {}, hooks = {}, warnings = {}, files = files }
  local function pick(name)
    local flag = nonempty(flags[name])
    if flag then return flag, "flag --" .. name:gsub("_", "-") end
    local var = M.ENV[name]
    local from_env = var and nonempty(getenv(var))
    if from_env then return from_env, "environment " .. var end
    for _, layer in ipairs(layers) do
      local v = nonempty(layer.cfg[name])
      if v ~= nil then return v, layer.origin, layer end
    end
  end
  for _, name in ipairs(M.SETTINGS) do
    local layer
    s[name], s.sources[name], layer = pick(name)
    if name == "ca_file" and layer and type(s.ca_file) == "string" and s.ca_file:sub(1, 1) ~= "/" then
      s.ca_file = layer.dir .. "/" .. s.ca_file -- a config's paths are relative to the config
    end
  end
  for name, least in pairs(NUMERIC) do
    if s[name] == nil then
      s[name], s.sources[name] = M.DEFAULTS[name], M.DEFAULTS[name] and "default" or nil
    end
    local v = s[name]
    if v ~= nil and (type(v) ~= "number" or v < least or (WHOLE[name] and not math.tointeger(v))) then
      return nil, errors.new("USAGE", ("%s (%s) must be a %s, at least %s"):format(name,
        s.sources[name], WHOLE[name] and "whole number" or "number", tostring(least)))
    end
    if v ~= nil and NUMERIC_MAX[name] and v > NUMERIC_MAX[name] then
      return nil, errors.new("USAGE", ("%s (%s) must be at most %s"):format(name, s.sources[name],
        tostring(NUMERIC_MAX[name])))
    end
    if WHOLE[name] and v ~= nil then s[name] = math.tointeger(v) end
  end
  local env_name = s.hosts or "production"
  if not M.HOSTS[env_name] then
    return nil, errors.new("USAGE", ("unknown host set '%s' (%s): use production or staging")
      :format(tostring(env_name), s.sources.hosts))
  end
  for _, key in ipairs { "api_url", "download_url" } do
    if not s[key] then
      s[key], s.sources[key] = M.HOSTS[env_name][key], "default (" .. env_name .. ")"
    end
    if type(s[key]) ~= "string" then
      return nil, errors.new("USAGE", ("%s (%s) must be a string"):format(key, s.sources[key]))
    end
    s[key] = s[key]:gsub("/+$", "")
    local problem = M.url_problem(s[key])
    if problem then
      return nil, errors.new("USAGE", ("refusing %s %s (%s): %s. Use %s (plain http is "
        .. "allowed only to this machine, e.g. http://127.0.0.1:PORT for the emulator)")
        :format(key == "api_url" and "API URL" or "download URL", s[key], s.sources[key], problem,
          https_form(s[key])))
    end
  end

  -- the token: --token-file > SKAFOS_API_TOKEN > token_file in a config
  local token_file, token_origin = nonempty(flags.token_file), "flag --token-file"
  local env_token = nonempty(getenv("SKAFOS_API_TOKEN"))
  if nonempty(flags.token) and not token_file then
    -- library callers may pass the token itself (never a command-line flag: argv is public)
    s.token, s.sources.token = flags.token, "argument"
  elseif not token_file and env_token then
    s.token, s.sources.token = env_token, "environment SKAFOS_API_TOKEN"
  elseif not token_file then
    for _, layer in ipairs(layers) do
      local tf = nonempty(layer.cfg.token_file)
      if tf then
        local home = getenv("HOME")
        if tf:sub(1, 2) == "~/" and home then
          tf = home .. tf:sub(2)
        elseif tf:sub(1, 1) ~= "/" then
          tf = layer.dir .. "/" .. tf
        end
        token_file, token_origin = tf, layer.origin
        break
      end
    end
    local stored = not token_file and M.login_file(getenv)
    if stored and fs.lstat(stored) then token_file, token_origin = stored, "skafos login" end
  end
  if token_file then
    local token, err, warning = read_token_file(token_file)
    if not token then return nil, errors.new("USAGE", err .. " (" .. token_origin .. ")") end
    s.token, s.sources.token = token, "file " .. token_file .. " (" .. token_origin .. ")"
    if warning then s.warnings[#s.warnings + 1] = warning end
  end
  if s.token ~= nil then
    if type(s.token) ~= "string" then
      return nil, errors.new("USAGE", ("the API token (%s) must be a string"):format(s.sources.token))
    end
    core.add_secret(s.token)
    local problem = M.token_problem(s.token)
    if problem then
      return nil, errors.new("USAGE", ("the API token (%s) %s"):format(s.sources.token, problem))
    end
  end

  -- policy hooks: s.hooks has the project's over the user's; s.hook_layers has both,
  -- the user's first, for skafos.session to run in order
  s.hook_layers = {}
  for i = #layers, 1, -1 do
    local found = {}
    for _, name in ipairs(M.HOOKS) do
      local fn = layers[i].cfg[name]
      if fn ~= nil then
        if type(fn) ~= "function" then
          return nil, errors.new("USAGE", ("%s: '%s' must be a function"):format(layers[i].origin, name))
        end
        s.hooks[name] = fn
        found[name] = fn
      end
    end
    s.hook_layers[#s.hook_layers + 1] = { origin = layers[i].origin, hooks = found }
  end
  -- other values a config may carry for custom workflows
  s.extra = {}
  for i = #layers, 1, -1 do
    for k, v in pairs(layers[i].cfg) do
      if type(k) == "string" and s[k] == nil and s.hooks[k] == nil then s.extra[k] = v end
    end
  end
  return s
end

---Checks that the settings an API call needs are present.
---@param s table resolved settings
---@param needs string[] e.g. {"token", "org", "app", "model"}
---@return true|nil ok, table|nil err
function M.require(s, needs)
  local how = {
    token = "run 'skafos login', set SKAFOS_API_TOKEN or pass --token-file FILE",
    org = "pass --org or set SKAFOS_ORG_NAME (or org in .skafos/config.lua)",
    app = "pass --app or set SKAFOS_APP_NAME (or app in .skafos/config.lua)",
    model = "pass --model or set SKAFOS_MODEL_NAME (or model in .skafos/config.lua)",
  }
  for _, name in ipairs(needs) do
    if not s[name] then
      if name == "token" then
        return nil, errors.new("AUTH", "no API token: " .. how.token)
      end
      return nil, errors.new("USAGE", ("no %s given: %s"):format(name, how[name]))
    end
  end
  return true
end

return M
