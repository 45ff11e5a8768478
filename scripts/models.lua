-- skafos models create NAME: create a model (a "bin" for versions) in the app.
local config = require "skafos.config"
local errors = require "skafos.errors"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "Manage models: 'skafos models create NAME [-m TEXT]'",
  commands = {
    { "create", "Create a model (a \"bin\" for versions) in the app", options = config.with({
      { "name", "The new model's name", argname = "NAME" },
      { "-m --description", "Description of the model", argname = "TEXT" },
    }, config.options, config.output_options) },
  },
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local sess, err = session.open { flags = args, needs = { "token", "org", "app" }, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  local model, merr = sess.client:create_model(args.name, args.description)
  if not model then errors.throw(merr) end
  ui:result(model, function(out)
    out:write(("Created model '%s' in %s/%s\n"):format(model.name or args.name, sess.settings.org,
      sess.settings.app))
  end, tostring(model.name or args.name))
end

return W
