-- skafos logout: forget the token `skafos login` kept.
local config = require "skafos.config"
local errors = require "skafos.errors"
local fs = require "skafos.fs"
local ui_mod = require "skafos.ui"

local W = {
  description = "Remove the token 'skafos login' stored",
  options = config.with(config.output_options),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local path = config.login_file()
  local st = path and fs.lstat(path)
  if st then
    local ok, err = os.remove(path)
    if not ok then errors.raise("IO", ("cannot remove %s: %s"):format(path, tostring(err))) end
  end
  ui:result({ removed = st and path or nil, path = path }, function(out)
    if st then
      out:write(("Logged out: removed %s\n"):format(path))
    else
      out:write(("Not logged in: there is no %s\n"):format(tostring(path)))
    end
  end, st and path or nil)
  if os.getenv("SKAFOS_API_TOKEN") and os.getenv("SKAFOS_API_TOKEN") ~= "" then
    ui:warn("SKAFOS_API_TOKEN is still set in this environment")
  end
end

return W
