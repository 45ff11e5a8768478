-- skafos deploy: make a version the one an environment's devices download.
local config = require "skafos.config"
local errors = require "skafos.errors"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "Deploy a model version to an environment",
  options = config.with({
    { "--version", "Version number or latest", default = "latest", argname = "N" },
    { "-e --env", "Environment to deploy to (e.g. dev, prod)", default = "dev", argname = "ENV",
      target = "environment" },
  }, config.options, config.output_options),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local v = args.version
  if v ~= "latest" and not (math.tointeger(tonumber(v)) and tonumber(v) >= 1) then
    errors.raise("USAGE", ("bad version '%s': use a version number or latest"):format(v))
  end
  local sess, err = session.open { flags = args, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  local result, derr = sess.client:deploy(v, args.environment)
  if not result then errors.throw(derr) end
  result.environment = args.environment
  ui:result(result, function(out)
    out:write(("Deployed version %s to %s\n"):format(tostring(result.version), args.environment))
  end, tostring(result.version))
end

return W
