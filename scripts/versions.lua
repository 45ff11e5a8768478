-- skafos versions: the model's finalized versions, oldest first.
local config = require "skafos.config"
local errors = require "skafos.errors"
local json = require "skafos.json"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "List the model's versions",
  options = config.with(config.options, config.output_options),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local sess, err = session.open { flags = args, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  local versions, verr = sess.client:versions()
  if not versions then errors.throw(verr) end
  ui:result(json.array(versions), function(out)
    if #versions == 0 then
      out:write(("Model '%s' has no versions yet: publish one with skafos publish FILE\n"):format(sess.settings.model))
      return
    end
    local rows = {}
    for _, v in ipairs(versions) do
      rows[#rows + 1] = { tostring(v.version), v.updated_at or "", v.description or "" }
    end
    ui_mod.table(out, { "VERSION", "UPDATED", "DESCRIPTION" }, rows)
  end, function(out)
    for _, v in ipairs(versions) do out:write(tostring(v.version), "\n") end
  end)
end

return W
