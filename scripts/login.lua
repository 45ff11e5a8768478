-- skafos login: keep an API token for later commands, once the API has accepted it.
local api = require "skafos.api"
local config = require "skafos.config"
local errors = require "skafos.errors"
local fs = require "skafos.fs"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "Store an API token for later commands, once the API accepts it",
  epilog = "The token is read from a prompt that does not show it, or from standard input when that is not a "
    .. "terminal (skafos login < token.txt). One request checks it; it is then kept in "
    .. "$XDG_CONFIG_HOME/skafos/token (mode 0600) and used when neither SKAFOS_API_TOKEN nor a token file "
    .. "is given. 'skafos logout' removes it; 'skafos auth status' says which token is in use.",
  options = config.with(config.options, config.output_options),
}

local function read_token()
  if fs.isatty(0) then
    local line, err = fs.read_secret("Paste your Skafos API token (it is not shown): ")
    if not line then errors.throw(err) end
    return line
  end
  local text = io.stdin:read(config.MAX_TOKEN_FILE + 1) or ""
  if #text > config.MAX_TOKEN_FILE then
    errors.raise("USAGE", ("standard input holds more than %d bytes: give the token alone")
      :format(config.MAX_TOKEN_FILE))
  end
  return text
end

function W.run(_, args)
  local ui = ui_mod.new(args)
  local token = read_token():match("^%s*(.-)%s*$")
  if token == "" then errors.raise("USAGE", "no token given: paste it at the prompt, or pipe it in") end
  local problem = config.token_problem(token)
  if problem then errors.raise("USAGE", "the token " .. problem) end
  local flags = {}
  for k, v in pairs(args) do flags[k] = v end
  flags.token, flags.token_file = token, nil
  local s, err = config.resolve(flags)
  if not s then errors.throw(err) end
  local client = api.new(s, { retry = session.policy(nil, ui:on_retry()) })
  local orgs, oerr = client:organizations()
  if not orgs then errors.throw(oerr) end
  local path = config.login_file()
  if not path then errors.raise("USAGE", "no place to keep the token: set HOME or XDG_CONFIG_HOME") end
  local dir = path:match("^(.*)/[^/]*$")
  local ok, merr = fs.mkdir(dir, { parents = true, mode = 448 }) -- 0700
  if not ok and merr.code ~= "EXISTS" then errors.throw(merr) end
  ok, merr = fs.write_file(path, token .. "\n", 384) -- 0600
  if not ok then errors.throw(merr) end
  local doc = { stored = path, api_url = s.api_url, organizations = #orgs }
  ui:result(doc, function(out)
    out:write(("Logged in to %s: the token sees %d organization%s. Kept in %s\n"):format(s.api_url, #orgs,
      #orgs == 1 and "" or "s", path))
  end, path)
  if os.getenv("SKAFOS_API_TOKEN") and os.getenv("SKAFOS_API_TOKEN") ~= "" then
    ui:warn("SKAFOS_API_TOKEN is set in this environment and takes precedence over the stored token")
  end
end

return W
