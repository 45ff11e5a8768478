-- What an attacker plants where skafos writes: a symbolic or hard link to a victim file, a
-- FIFO, or a file of another user's (the suite runs as root, so chown nobody is real).
local proc = require "proc"

local M = {}

---What skafos's refusal says of each kind (the message goes "<path> <what>").
M.WHAT = {
  symlink = "is a symbolic link", hardlink = "has 2 hard links", fifo = "is a FIFO",
  foreign = "belongs to another user (uid ",
}

M.KINDS = { "symlink", "hardlink", "fifo", "foreign" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

---Puts at path a `kind` of object: a link to victim, a FIFO, or a file of nobody's holding
---`bytes`.
function M.plant(kind, path, victim, bytes)
  local q = proc.quote
  if kind == "symlink" then
    sh(("ln -s %s %s"):format(q(victim), q(path)))
  elseif kind == "hardlink" then
    sh(("ln %s %s"):format(q(victim), q(path)))
  elseif kind == "fifo" then
    sh("mkfifo " .. q(path))
  else
    proc.write(path, bytes or "")
    sh("chown nobody " .. q(path))
  end
end

return M
