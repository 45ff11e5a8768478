-- skafos config: the resolved settings and where each one came from (token masked).
local config = require "skafos.config"
local errors = require "skafos.errors"
local json = require "skafos.json"
local ui_mod = require "skafos.ui"

local W = {
  description = "Show the resolved settings and where each came from",
  options = config.with(config.options, { { "--json", "As JSON", flag = true } }),
}

function W.run(_, args)
  local ui = ui_mod.new(args)
  local s, err = config.resolve(args)
  if not s then errors.throw(err) end
  for _, w in ipairs(s.warnings) do ui:warn("%s", w) end
  local doc = { settings = {}, files = json.array(s.files), hooks = json.array {} }
  for _, name in ipairs(config.SETTINGS) do
    doc.settings[name] = { value = s[name], source = s.sources[name] }
  end
  doc.settings.token = { value = s.token and ("set (%d characters, hidden)"):format(#s.token) or nil,
    source = s.sources.token }
  for name in pairs(s.hooks) do doc.hooks[#doc.hooks + 1] = name end
  table.sort(doc.hooks)
  ui:result(doc, function(out)
    local rows = {}
    for _, name in ipairs(config.with(config.SETTINGS, { "token" })) do
      local item = doc.settings[name]
      rows[#rows + 1] = { name, item.value or "(not set)", item.source or "" }
    end
    ui_mod.table(out, { "SETTING", "VALUE", "FROM" }, rows)
    if #doc.hooks > 0 then out:write("\nPolicy hooks: ", table.concat(doc.hooks, ", "), "\n") end
  end)
end

return W
