-- Script: fetch the latest version of every model of an app, extracted into DIR/<model>/,
-- with at most 4 downloads at a time (skafos.tasks), one line per model as it ends.
-- Run it with `skafos run`:
--   skafos scripts dump examples/fetch-all-models > fetch-all-models.lua
--   skafos run fetch-all-models.lua [DIR [CONCURRENCY]]     (default: models 4)
-- The organization, app, token and hosts are the usual settings (environment variables,
-- .skafos/config.lua, ...). A model without versions is skipped; the exit code is 0 when
-- every other model came, else the exit code of the first failure.
local skafos = require "skafos"
local tasks = require "skafos.tasks"

local dir = arg[1] or "models"
local concurrency = math.tointeger(tonumber(arg[2] or "4"))
if not concurrency or concurrency < 1 then
  io.stderr:write("skafos: CONCURRENCY must be a whole number of at least 1\n")
  return 2
end

local models, err = skafos.models {}
if not models then
  io.stderr:write("skafos: ", tostring(err), "\n")
  return err.exit
end
-- DIR is made or reused only as a directory of ours: a link planted there (or anything
-- else) is refused, not written through
local st = skafos.fs.lstat(dir)
if st and (st.type ~= "directory" or st.uid ~= skafos.fs.geteuid()) then
  io.stderr:write(("skafos: %s is a %s%s; skafos does not write through it: remove it or "
    .. "choose another DIR\n"):format(dir, st.type, st.type == "directory" and " of another user" or ""))
  return 2
end
local ok, merr = skafos.fs.mkdir(dir, { parents = true })
if not ok then
  io.stderr:write("skafos: ", tostring(merr), "\n")
  return merr.exit
end

local jobs = {}
for i, m in ipairs(models) do
  -- each fetch extracts while it downloads, over one connection or several ranged ones
  jobs[i] = function()
    return skafos.fetch { model = m.name, unzip = dir .. "/" .. m.name, force = true }
  end
end

local exit = 0
tasks.run(jobs, {
  concurrency = concurrency,
  on_done = function(i, r)
    local name = models[i].name
    if r.ok then
      print(("%s\tversion %s\t%s"):format(name, r.value.version, r.value.unzipped))
    elseif r.error.code == "NO_VERSIONS" then
      print(("%s\tno versions, skipped"):format(name))
    else
      io.stderr:write(("skafos: %s: %s\n"):format(name, tostring(r.error)))
      if exit == 0 then exit = r.error.exit or 1 end
    end
  end,
})
return exit
