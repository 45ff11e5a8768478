-- skafos versions: the model's finalized versions, oldest first.
local config = require "skafos.config"
local errors = require "skafos.errors"
local json = require "skafos.json"
local session = require "skafos.session"
local ui_mod = require "skafos.ui"

local W = {
  description = "List the model's versions, oldest first",
  options = config.with({
    { "--limit", "Only the newest N versions", type = "integer", argname = "N" },
  }, config.options, config.output_options),
}

-- A description on one line, cut to `width` characters (the JSON keeps it whole).
local function one_line(text, width)
  text = tostring(text or ""):gsub("%s+", " ")
  if utf8.len(text) and utf8.len(text) > width then
    text = text:sub(1, utf8.offset(text, width) - 1) .. "…"
  end
  return text
end

function W.run(_, args)
  local ui = ui_mod.new(args)
  local sess, err = session.open { flags = args, on_warning = ui:on_warning(),
    on_retry = ui:on_retry() }
  if not sess then errors.throw(err) end
  if args.limit and args.limit < 1 then errors.raise("USAGE", "--limit takes a number of versions, 1 or more") end
  local versions, verr = sess.client:versions()
  if not versions then errors.throw(verr) end
  if args.limit and #versions > args.limit then
    versions = table.move(versions, #versions - args.limit + 1, #versions, 1, {})
  end
  ui:result(json.array(versions), function(out)
    if #versions == 0 then
      out:write(("Model '%s' has no versions yet: publish one with skafos publish FILE\n"):format(sess.settings.model))
      return
    end
    local rows = {}
    local width = math.max(20, (require("skafos.fs").term_width(1) or 100) - 33)
    for _, v in ipairs(versions) do
      local d = v.description
      rows[#rows + 1] = { tostring(v.version), v.updated_at or "", one_line(d ~= json.null and d or "", width) }
    end
    ui_mod.table(out, { "VERSION", "UPDATED", "DESCRIPTION" }, rows)
  end, function(out)
    for _, v in ipairs(versions) do out:write(tostring(v.version), "\n") end
  end)
end

return W
