-- skafos auth status: which token is in use, where it comes from, and whether the API
-- accepts it. The token itself is never printed.
local api = require "skafos.api"
local config = require "skafos.config"
local errors = require "skafos.errors"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "Authentication: 'skafos auth status' (see also 'skafos login' and 'skafos logout')",
  commands = {
    { "status", "Say where the API token comes from and whether the API accepts it, without showing it",
      options = config.with(config.options, config.output_options) },
  },
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local s, err = config.resolve(args)
  if not s then errors.throw(err) end
  for _, w in ipairs(s.warnings) do ui:warn("%s", w) end
  if not s.token then
    errors.raise("AUTH", "not logged in: no API token (run 'skafos login', set SKAFOS_API_TOKEN or pass --token-file)")
  end
  local client = api.new(s, { retry = session.policy(nil, ui:on_retry()) })
  local orgs, oerr = client:organizations()
  local doc = { source = s.sources.token, api_url = s.api_url, accepted = orgs ~= nil,
    organizations = orgs and #orgs or nil }
  if not orgs and oerr.code ~= "AUTH" then errors.throw(oerr) end
  ui:result(doc, function(out)
    out:write(("Token from %s\n"):format(s.sources.token))
    if orgs then
      out:write(("  accepted by %s; it sees %d organization%s\n"):format(s.api_url, #orgs, #orgs == 1 and "" or "s"))
    else
      out:write(("  rejected by %s\n"):format(s.api_url))
    end
  end, orgs and "accepted" or "rejected")
  if not orgs then return errors.EXIT.AUTH end
end

return W
