-- Policy: deploy every newly published version to the dev environment.
-- Use it as .skafos/config.lua:
--   skafos scripts dump examples/deploy-after-publish > .skafos/config.lua
return {
  after_publish = function(result)
    local skafos = require "skafos"
    local deployed, err = skafos.deploy {
      org = result.org, app = result.app, model = result.model,
      version = result.version, environment = "dev",
    }
    if not deployed then error("published, but deploying to dev failed: " .. tostring(err), 0) end
    io.stderr:write(("Deployed version %s to dev\n"):format(tostring(deployed.version)))
  end,
}
