-- Comparing directory trees in specs: what another tool extracted against what skafos
-- extracted, name by name and byte by byte.
local fs = require "skafos.fs"
local luassert = require "luassert"
local proc = require "proc"

local M = {}

---Every path under root (directories end with "/"), sorted, and each file's bytes.
---@return string[] list, table<string, string> files
function M.snapshot(root)
  local list, files = {}, {}
  local function walk(dir, prefix)
    for _, name in ipairs(assert(fs.dir(dir))) do
      local path, rel = dir .. "/" .. name, prefix .. name
      local st = assert(fs.lstat(path))
      if st.type == "directory" then
        list[#list + 1] = rel .. "/"
        walk(path, rel .. "/")
      else
        list[#list + 1] = rel .. (st.type == "file" and "" or " (" .. st.type .. ")")
        files[rel] = proc.read(path)
      end
    end
  end
  walk(root, "")
  table.sort(list)
  return list, files
end

---Asserts that got holds exactly what want holds: the same names and types, and every
---file's bytes.
function M.assert_same(want, got, what)
  local wlist, wfiles = M.snapshot(want)
  local glist, gfiles = M.snapshot(got)
  luassert.is_true(#wlist > 0, what .. ": nothing to compare with")
  luassert.are.same(wlist, glist, what)
  for rel, data in pairs(wfiles) do
    luassert.is_true(gfiles[rel] == data, ("%s: %s differs (%d bytes, want %d)"):format(what, rel,
      #(gfiles[rel] or ""), #data))
  end
end

return M
