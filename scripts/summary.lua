-- skafos summary: every organization, app and model the token can see.
local config = require "skafos.config"
local errors = require "skafos.errors"
local json = require "skafos.json"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "List the organizations, apps and models the token can see",
  options = config.with({
    { "--compact", "As a tree {org: {app: [models]}}", flag = true },
  }, config.options, config.output_options),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local sess, err = session.open { flags = args, needs = { "token" }, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  local client = sess.client
  local orgs, oerr = client:organizations()
  if not orgs then errors.throw(oerr) end
  -- --org, --app and --model narrow the listing (their environment variables do not:
  -- summary is how one finds out what there is)
  local function wanted(flag, value) return args[flag] == nil or args[flag] == value end
  local kept = {}
  for _, o in ipairs(orgs) do
    if wanted("org", o.display_name) then kept[#kept + 1] = o end
  end
  if args.org and #kept == 0 then
    errors.raise("NOT_FOUND", ("organization '%s' not found (or not visible to this token)"):format(args.org))
  end
  orgs = kept
  local rows, tree = json.array {}, {}
  for _, o in ipairs(orgs) do
    local org = o.display_name
    tree[org] = {}
    local apps, aerr = client:apps(org)
    if not apps then errors.throw(aerr) end
    for _, a in ipairs(apps) do
      if wanted("app", a.name) then
        tree[org][a.name] = json.array {}
        for _, m in ipairs(a.models or {}) do
          if wanted("model", m.name) then
            table.insert(tree[org][a.name], m.name)
            rows[#rows + 1] = { org = org, app = a.name, model = m.name, updated_at = m.updated_at }
          end
        end
      end
    end
  end
  local doc = args.compact and tree or rows
  ui:result(doc, function(out)
    if args.compact then
      for _, o in ipairs(orgs) do
        out:write(o.display_name, "\n")
        local apps = {}
        for name in pairs(tree[o.display_name]) do apps[#apps + 1] = name end
        table.sort(apps)
        for _, app in ipairs(apps) do
          out:write("  ", app, ": ", table.concat(tree[o.display_name][app], ", "), "\n")
        end
      end
    else
      local t = {}
      for _, r in ipairs(rows) do t[#t + 1] = { r.org, r.app, r.model, r.updated_at or "" } end
      ui_mod.table(out, { "ORGANIZATION", "APP", "MODEL", "UPDATED" }, t)
    end
  end, function(out)
    for _, r in ipairs(rows) do out:write(r.org, "/", r.app, "/", r.model, "\n") end
  end)
end

return W
