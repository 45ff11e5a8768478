-- Settings and where they come from: flag > environment > .skafos/config.lua (searched
-- upwards from the current directory) > $XDG_CONFIG_HOME/skafos/config.lua > defaults.
-- Config files are Lua chunks returning a table of settings and policy hooks.
local fs = require "skafos.fs"

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

M.SETTINGS = { "org", "app", "model", "api_url", "download_url", "env", "ca_file" }

M.HOOKS = { "select_files", "compression", "before_create", "after_publish", "retry" }

---The connection options every API workflow accepts (argparse specs, see skafos.workflow).
M.options = {
  { "--org", "Organization (display name); env SKAFOS_ORG_NAME", argname = "ORG" },
  { "--app", "App name; env SKAFOS_APP_NAME", argname = "APP" },
  { "--model", "Model name; env SKAFOS_MODEL_NAME", argname = "MODEL" },
  { "--api-url", "API base URL; env SKAFOS_API_URL", argname = "URL" },
  { "--download-url", "Download base URL; env SKAFOS_DOWNLOAD_URL", argname = "URL" },
  { "--env --hosts", "Hosts to use when no URL is set: production or staging", argname = "NAME",
    choices = { "production", "staging" }, target = "env" },
  { "--token-file", "Read the API token from this file (else SKAFOS_API_TOKEN)", argname = "FILE" },
  { "--ca-file", "Verify the servers with the CA certificates (PEM) in this file instead of the "
    .. "system's, e.g. for a private CA or a TLS-inspecting proxy; env SKAFOS_CA_FILE", argname = "FILE" },
}

---The same without the `--env` alias, for workflows where --env means something else
---(deploy's target environment): hosts are then chosen with --hosts.
M.options_hosts_only = {}
for i, o in ipairs(M.options) do
  if o[1] == "--env --hosts" then
    M.options_hosts_only[i] = { "--hosts", o[2], argname = o.argname, choices = o.choices, target = "env" }
  else
    M.options_hosts_only[i] = o
  end
end

---Output options shared by the workflows.
M.output_options = {
  { "--json", "Print the result as one JSON document on stdout", flag = true },
  { "-q --quiet", "Print only results and errors", flag = true },
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

---The project config: .skafos/config.lua in the current directory or the nearest parent.
---@return string|nil path
function M.find_project_file(start)
  local dir = start or fs.getcwd()
  while dir do
    local candidate = (dir == "/" and "" or dir) .. "/.skafos/config.lua"
    if fs.stat(candidate) then return candidate end
    if dir == "/" then break end
    dir = dirname(dir)
  end
  return nil
end

function M.user_file(getenv)
  getenv = getenv or os.getenv
  local xdg = getenv("XDG_CONFIG_HOME")
  if not xdg or xdg == "" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    xdg = home .. "/.config"
  end
  local path = xdg .. "/skafos/config.lua"
  if fs.stat(path) then return path end
  return nil
end

local function nonempty(v)
  if v == nil or v == "" then return nil end
  return v
end

local function read_token_file(path)
  local f, err = io.open(path, "r")
  if not f then return nil, "cannot read token file: " .. tostring(err) end
  local token = f:read("a") or ""
  f:close()
  token = token:match("^%s*(.-)%s*$")
  if token == "" then return nil, "token file " .. path .. " is empty" end
  local st = fs.stat(path)
  local warning
  if st and st.mode & 0x3f ~= 0 then
    warning = ("token file %s is readable by others (mode %03o); run: chmod 600 %s"):format(path, st.mode, path)
  end
  return token, nil, warning
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
  local project = M.find_project_file(opts.cwd)
  local user = M.user_file(getenv)
  for _, spec in ipairs { { project, "project" }, { user, "user" } } do
    local path, origin = spec[1], spec[2]
    if path then
      local cfg, err = M.load_file(path)
      if not cfg then return nil, { code = "USAGE", message = "bad config file: " .. err } end
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
  local env_name = s.env or "production"
  if not M.HOSTS[env_name] then
    return nil, { code = "USAGE", message = ("unknown environment '%s' (%s): use production or staging")
      :format(env_name, s.sources.env) }
  end
  for _, key in ipairs { "api_url", "download_url" } do
    if not s[key] then
      s[key], s.sources[key] = M.HOSTS[env_name][key], "default (" .. env_name .. ")"
    end
    s[key] = s[key]:gsub("/+$", "")
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
  end
  if token_file then
    local token, err, warning = read_token_file(token_file)
    if not token then return nil, { code = "USAGE", message = err .. " (" .. token_origin .. ")" } end
    s.token, s.sources.token = token, "file " .. token_file .. " (" .. token_origin .. ")"
    if warning then s.warnings[#s.warnings + 1] = warning end
  end

  -- policy hooks: the project's over the user's
  for i = #layers, 1, -1 do
    for _, name in ipairs(M.HOOKS) do
      local fn = layers[i].cfg[name]
      if fn ~= nil then
        if type(fn) ~= "function" then
          return nil, { code = "USAGE", message = ("%s: '%s' must be a function"):format(layers[i].origin, name) }
        end
        s.hooks[name] = fn
      end
    end
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
    token = "set SKAFOS_API_TOKEN or pass --token-file FILE",
    org = "pass --org or set SKAFOS_ORG_NAME (or org in .skafos/config.lua)",
    app = "pass --app or set SKAFOS_APP_NAME (or app in .skafos/config.lua)",
    model = "pass --model or set SKAFOS_MODEL_NAME (or model in .skafos/config.lua)",
  }
  for _, name in ipairs(needs) do
    if not s[name] then
      if name == "token" then
        return nil, { code = "AUTH", message = "no API token: " .. how.token }
      end
      return nil, { code = "USAGE", message = ("no %s given: %s"):format(name, how[name]) }
    end
  end
  return true
end

return M
