-- The skafos side of the zip benchmark: `skafos run ours.lua create OUT LEVEL SRC...`
-- or `skafos run ours.lua extract ARCHIVE DIR`.
local zip = require("skafos.zip")
local cmd = arg[1]
if cmd == "create" then
  local level = tonumber(arg[3]) or arg[3]
  local entries = {}
  for i = 4, #arg do entries[#entries + 1] = arg[i] end
  assert(zip.create(arg[2], entries, { level = level }))
elseif cmd == "extract" then
  assert(zip.extract(arg[2], arg[3], { force = true }))
else
  error("usage: ours.lua create OUT LEVEL SRC... | extract ARCHIVE DIR")
end
