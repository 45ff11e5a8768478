-- Policy: store files that are already compressed instead of deflating them again
-- (the default `auto` level samples each file; this decides by name, with no sampling).
-- Use it as .skafos/config.lua:
--   skafos scripts dump examples/store-compressed > .skafos/config.lua
local COMPRESSED = {
  zip = true, gz = true, tgz = true, bz2 = true, xz = true, zst = true, ["7z"] = true,
  jpg = true, jpeg = true, png = true, webp = true, mp4 = true, mov = true, mp3 = true,
}

return {
  compression = function(entry)
    local ext = entry.name:match("%.([%w]+)$")
    if entry.type == "file" and ext and COMPRESSED[ext:lower()] then return "store" end
    return nil -- keep the default for everything else
  end,
}
