-- Policy: every published version needs a description and a labels.txt.
-- Use it as .skafos/config.lua (or merge its hook into yours):
--   skafos scripts dump examples/require-description-and-labels > .skafos/config.lua
local fs = require "skafos.fs"

local function has_labels(entry)
  if entry.type == "file" then return entry.name == "labels.txt" end
  return fs.stat(entry.src .. "/labels.txt") ~= nil
end

return {
  before_create = function(plan)
    if not plan.description or plan.description:match("^%s*$") then
      error("a description is required: skafos publish -m \"what changed\" ...", 0)
    end
    for _, entry in ipairs(plan.entries) do
      if has_labels(entry) then return end
    end
    error("labels.txt is missing: publish it with the model (skafos publish Model.mlmodel labels.txt)", 0)
  end,
}
