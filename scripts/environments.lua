-- skafos environments: the model's environment groups and how many devices each has.
local config = require "skafos.config"
local errors = require "skafos.errors"
local json = require "skafos.json"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "List the model's environments with their device counts",
  options = config.with(config.options, config.output_options),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local sess, err = session.open { flags = args, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  local envs, eerr = sess.client:environments()
  if not envs then errors.throw(eerr) end
  ui:result(json.array(envs), function(out)
    local rows = {}
    for _, e in ipairs(envs) do
      local deployed = e.deployed_version
      rows[#rows + 1] = { e.name or "", tostring(e.id or ""), tostring(e.device_count or 0),
        (deployed == nil or deployed == json.null) and "-" or tostring(deployed) }
    end
    ui_mod.table(out, { "ENVIRONMENT", "ID", "DEVICES", "DEPLOYED" }, rows)
  end, function(out)
    for _, e in ipairs(envs) do out:write(tostring(e.name), "\n") end
  end)
end

return W
