-- Private temporary directories in $TMPDIR: skafos-publish.XXXXXX for an archive zipped
-- before its upload, skafos-fetch.XXXXXX for a download on its way to standard output.
-- Each is locked while its process lives and removed when the variable holding it goes
-- out of scope (return, error, interrupt or signal); one left by a run killed with -9 is
-- removed by the next run that uses $TMPDIR, whatever the command.
local fs = require "skafos.fs"

local M = {}

---$TMPDIR, else /tmp.
---@return string
function M.base()
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  return base
end

---Removes the temporary directories of ours that no live process holds.
function M.sweep()
  local base = M.base()
  for _, name in ipairs(fs.dir(base) or {}) do
    if name:match("^skafos%-publish%.%w%w%w%w%w%w$") or name:match("^skafos%-fetch%.%w%w%w%w%w%w$") then
      local stale = fs.trylock(base .. "/" .. name)
      if stale then
        fs.rmtree(base .. "/" .. name)
        stale:release()
      end
    end
  end
end

---A holder whose directory (if any) is removed when it goes out of scope: use with <close>.
function M.holder()
  return setmetatable({}, { __close = function(t)
    if t.dir then fs.rmtree(t.dir) end
    if t.lock then t.lock:release() end
    t.dir, t.lock = nil, nil
  end })
end

---Makes $TMPDIR/skafos-<kind>.XXXXXX, locked, owned by `holder`.
---@param kind string "publish" or "fetch"
---@param holder table from M.holder()
---@return string|nil dir, table|nil err
function M.make(kind, holder)
  M.sweep()
  local dir, err = fs.mkdtemp(M.base() .. "/skafos-" .. kind .. ".")
  if not dir then
    err.message = ("%s (set TMPDIR to a directory with room for the archive)"):format(err.message)
    return nil, err
  end
  holder.dir = dir
  holder.lock = fs.trylock(dir)
  return dir
end

return M
