-- Scripts running several fetches at once with skafos.tasks, for real against the
-- emulator: the transfers overlap (the storage log shows them in flight together), never
-- more than the limit, a failing task leaves the others to finish with the right bytes,
-- an interrupt stops them all (exit 130) leaving only what the next run resumes from, and
-- the example script fetches every model of an app.
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local q, sh = proc.quote, e2e.sh
local MiB = 1024 * 1024
-- without ucontext (musl) tasks run one after the other: one transfer at a time
local CONCURRENT = require("skafos.tasks").concurrent()

-- Fetches each model named on the command line into <name>.zip over TASKS_CONNECTIONS
-- connections (default 1), TASKS_CONCURRENCY at a time, plus a task that raises; prints
-- each task's last progress on stderr ("progress <i> download <bytes>") and one line a
-- task:
-- "<i> ok <sha256>" or "<i> failed <code> <message>".
local SCRIPT = [[
local skafos = require "skafos"
local tasks = require "skafos.tasks"
local jobs, seen = {}, {}
for i, name in ipairs(arg) do
  jobs[i] = function()
    return skafos.fetch { model = name, output = name .. ".zip",
      connections = tonumber(os.getenv("TASKS_CONNECTIONS") or "1"),
      progress = function(phase) -- each transfer reports its own progress
        return { update = function(_, done) seen[i] = phase .. " " .. done end, finish = function() end }
      end }
  end
end
jobs[#jobs + 1] = function() error("a task that fails") end
local results, failed = tasks.run(jobs, { concurrency = tonumber(os.getenv("TASKS_CONCURRENCY")) })
for i, r in ipairs(results) do
  if r.ok then print(i, "ok", r.value.sha256)
  else print(i, "failed", r.error.code, tostring(r.error)) end
  if seen[i] then io.stderr:write("progress ", i, " ", seen[i], "\n") end
end
return failed > 0 and 1 or 0
]]

-- "2026-12-06T08:56:00.850Z" -> milliseconds since the start of the month
local function ms(iso)
  local d, h, m, s = iso:match("%-(%d+)T(%d+):(%d+):([%d.]+)Z$")
  return ((tonumber(d) * 24 + tonumber(h)) * 60 + tonumber(m)) * 60000 + tonumber(s) * 1000
end

-- The most storage GETs (or `method` requests) the emulator had in flight at once.
local function most_at_once(log, method)
  local events = {}
  for _, r in ipairs(log.storage) do
    if r.method == (method or "GET") then
      assert.is_string(r["end"], "a request still in flight")
      events[#events + 1] = { ms(r.time), 1 }
      events[#events + 1] = { ms(r["end"]), -1 }
    end
  end
  table.sort(events, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local now, most = 0, 0
  for _, e in ipairs(events) do
    now = now + e[2]
    most = math.max(most, now)
  end
  return most
end

-- The most objects storage was sending at once: each object's GETs (a fetch's ranges)
-- count as one, from the first one's start to the last one's end.
local function most_objects_at_once(log)
  local span, events = {}, {}
  for _, r in ipairs(log.storage) do
    if r.method == "GET" then
      assert.is_string(r["end"], "a request still in flight")
      local s = span[r.path] or { math.huge, -math.huge }
      s[1], s[2] = math.min(s[1], ms(r.time)), math.max(s[2], ms(r["end"]))
      span[r.path] = s
    end
  end
  for _, s in pairs(span) do
    events[#events + 1] = { s[1], 1 }
    events[#events + 1] = { s[2], -1 }
  end
  table.sort(events, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local now, most = 0, 0
  for _, e in ipairs(events) do
    now = now + e[2]
    most = math.max(most, now)
  end
  return most
end

-- Transfers overlapped, and never more than `limit` at once.
local function overlapped(most, limit)
  if CONCURRENT then
    assert.is_true(most >= 2 and most <= limit, most .. " requests at once")
  else
    assert.are.equal(1, most)
  end
end

describe("skafos.tasks", function()
  local emu, dir, cleanup, work

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    work = dir .. "/work"
    os.execute("mkdir -p " .. q(work))
    e2e.fast_retries(dir, 3)
    emu:clear_faults()
    emu:clear_shaping()
  end)

  after_each(function()
    cleanup()
  end)

  local function skafos(args, extra)
    return e2e.skafos(emu, dir, args, extra, work)
  end

  -- creates models prefix1..prefixN, each with one version of `mib` MiB of random bytes;
  -- returns their names and the archives' SHA-256
  local function models(prefix, n, mib)
    local names, sums = {}, {}
    for i = 1, n do
      local name = prefix .. i
      assert.are.equal(0, skafos({ "models", "create", name }).code)
      sh(("head -c %d /dev/urandom > %s"):format(mib * MiB, q(work .. "/m.bin")))
      local r = skafos({ "publish", "--json", "m.bin" }, { SKAFOS_MODEL_NAME = name })
      assert.are.equal(0, r.code, r.stderr)
      names[i], sums[name] = name, proc.json(r.stdout).sha256
    end
    os.remove(work .. "/m.bin")
    emu:clear_requests()
    return names, sums
  end

  local function run_script(names, concurrency, connections)
    proc.write(work .. "/fetch.lua", SCRIPT)
    local args = { "run", "fetch.lua" }
    for _, n in ipairs(names) do args[#args + 1] = n end
    return skafos(args, { TASKS_CONCURRENCY = tostring(concurrency), TASKS_CONNECTIONS = tostring(connections or 1) })
  end

  local function lines(text)
    local out = {}
    for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
    return out
  end

  it("fetches several models at once; the tasks that fail leave the others to finish", function()
    local names, sums = models("overlap", 4, 2)
    table.insert(names, 3, "no-such-model")
    -- each GET lasts a while, so tasks that overlap are seen in flight together
    emu:shape { storage = { rate = 2 * MiB, first_byte_ms = 200 } }
    local r = run_script(names, 8)
    assert.are.equal(1, r.code, r.stderr)
    local out = lines(r.stdout)
    assert.are.equal(6, #out, r.stdout)
    for i, name in ipairs(names) do
      if name == "no-such-model" then
        assert.matches("^3\tfailed\tNOT_FOUND\t.*no%-such%-model", out[i])
      else
        assert.are.equal(i .. "\tok\t" .. sums[name], out[i])
        assert.are.equal(sums[name], sh("sha256sum " .. q(work .. "/" .. name .. ".zip")):match("^%x+"))
        local size = #proc.read(work .. "/" .. name .. ".zip")
        assert.matches("\nprogress " .. i .. " download " .. size .. "\n", "\n" .. r.stderr)
      end
    end
    assert.matches("^6\tfailed\tFAILED\tfetch.lua:%d+: a task that fails$", out[6])
    local most = most_at_once(emu:requests())
    overlapped(most, 4)
  end)

  it("fetches in several tasks at once, each over several connections of its own", function()
    local names, sums = models("ranged", 2, 12)
    emu:shape { storage = { rate = 4 * MiB } } -- a link where more connections pay
    local r = run_script(names, 2, 4)
    assert.are.equal(1, r.code, r.stderr) -- the raising task
    local gets = {}
    for i, name in ipairs(names) do
      assert.are.equal(i .. "\tok\t" .. sums[name], lines(r.stdout)[i])
      assert.are.equal(sums[name], sh("sha256sum " .. q(work .. "/" .. name .. ".zip")):match("^%x+"))
    end
    for _, g in ipairs(emu:requests().storage) do
      if g.method == "GET" then
        gets[#gets + 1] = g
        assert.matches("^bytes=%d+%-%d+$", g.headers["range"])
      end
    end
    assert.is_true(#gets >= 4, #gets .. " requests")
    overlapped(most_at_once(emu:requests()), 2 * 4)
    -- the two downloads overlapped, not only the ranges of each
    local span = {}
    for _, g in ipairs(gets) do
      local model = g.path:match("/(ranged%d)/")
      local s = span[model] or { math.huge, 0 }
      span[model] = { math.min(s[1], ms(g.time)), math.max(s[2], ms(g["end"])) }
    end
    local a, b = span.ranged1, span.ranged2
    assert.are.equal(CONCURRENT, math.max(a[1], b[1]) < math.min(a[2], b[2]))
  end)

  it("never runs more transfers at once than the concurrency asked for", function()
    local names, sums = models("limit", 5, 1)
    emu:shape { storage = { rate = 2 * MiB, first_byte_ms = 200 } }
    local r = run_script(names, 2)
    assert.are.equal(1, r.code, r.stderr) -- the raising task
    for i, name in ipairs(names) do
      assert.are.equal(i .. "\tok\t" .. sums[name], lines(r.stdout)[i])
    end
    assert.are.equal(CONCURRENT and 2 or 1, most_at_once(emu:requests()))
  end)

  it("stops every task at SIGINT with exit 130, keeping only what a new run resumes", function()
    local names, sums = models("intr", 3, 8)
    emu:shape { storage = { rate = MiB } }
    proc.write(work .. "/fetch.lua", SCRIPT)
    local env = e2e.env(emu, dir, { TASKS_CONCURRENCY = "3" })
    local parts = { "cd", q(work), "&&", "env" }
    for k, v in pairs(env) do parts[#parts + 1] = q(k .. "=" .. v) end
    for _, a in ipairs { proc.bin, "run", "fetch.lua", table.unpack(names) } do parts[#parts + 1] = q(a) end
    local cmd = table.concat(parts, " ") .. " >/dev/null 2>" .. q(dir .. "/stderr")
      .. " & echo $! > " .. q(dir .. "/pid") .. "; wait $!; echo $? > " .. q(dir .. "/code")
    os.execute("sh -c " .. q(cmd) .. " >/dev/null 2>&1 &")
    local function in_flight()
      local n = 0
      for _, g in ipairs(emu:requests().storage) do
        if g.method == "GET" and g["end"] == nil and (g.bytes_out or 0) > 0 then n = n + 1 end
      end
      return n
    end
    local want = CONCURRENT and 3 or 1
    for _ = 1, 600 do -- every download under way, with some bytes of each
      if in_flight() == want then break end
      sh("sleep 0.1")
    end
    assert.are.equal(want, in_flight())
    local pid
    for _ = 1, 100 do
      pid = tonumber(proc.read(dir .. "/pid") or "")
      if pid then break end
      sh("sleep 0.1")
    end
    sh("kill -INT " .. pid)
    local code
    for _ = 1, 600 do
      code = tonumber(proc.read(dir .. "/code") or "")
      if code then break end
      sh("sleep 0.1")
    end
    assert.are.equal(130, code, proc.read(dir .. "/stderr"))
    assert.matches("interrupted", proc.read(dir .. "/stderr"))
    -- no lock and no archive: each fetch kept its part file and what it says, as a single
    -- interrupted fetch does, and nothing else
    local left = e2e.listing(work)
    if CONCURRENT then
      for _, name in ipairs(names) do
        assert.matches(name .. "%.zip%.download%.part\n", left)
      end
    end
    for f in left:gmatch("[^\n]+") do
      assert.is_truthy(f == "fetch.lua" or f:match("%.zip%.download%.part$")
        or f:match("%.zip%.download%.part%.etag$"), f)
    end
    emu:clear_shaping()
    emu:clear_requests()
    local r = run_script(names, 3)
    assert.are.equal(1, r.code, r.stderr)
    for i, name in ipairs(names) do
      assert.are.equal(i .. "\tok\t" .. sums[name], lines(r.stdout)[i])
    end
    for _, g in ipairs(CONCURRENT and emu:requests().storage or {}) do
      assert.matches("^bytes=[1-9]", g.headers["range"] or "none") -- each went on from its part
    end
  end)

  it("publishes several models at once, each version whole", function()
    local names = {}
    for i = 1, 3 do
      names[i] = "pub" .. i
      assert.are.equal(0, skafos({ "models", "create", names[i] }).code)
      sh(("head -c %d /dev/urandom > %s"):format(MiB, q(work .. "/" .. names[i] .. ".bin")))
    end
    emu:clear_requests()
    emu:shape { storage = { first_byte_ms = 500 } } -- each PUT's answer waits: overlaps show
    proc.write(work .. "/pub.lua", [[
local skafos, tasks = require "skafos", require "skafos.tasks"
local jobs = {}
for i, name in ipairs(arg) do
  jobs[i] = function()
    return skafos.publish { model = name, files = { name .. ".bin" }, description = "at once" }
  end
end
for i, r in ipairs((tasks.run(jobs))) do print(i, r.ok and r.value.version or tostring(r.error)) end
]])
    local r = skafos { "run", "pub.lua", table.unpack(names) }
    assert.are.equal(0, r.code, r.stderr)
    overlapped(most_at_once(emu:requests(), "PUT"), 3)
    emu:clear_shaping()
    for i, name in ipairs(names) do
      assert.are.equal(i .. "\t1", lines(r.stdout)[i])
      local f = skafos({ "fetch", "--unzip", "back-" .. name }, { SKAFOS_MODEL_NAME = name })
      assert.are.equal(0, f.code, f.stderr)
      assert.are.equal(proc.read(work .. "/" .. name .. ".bin"),
        proc.read(work .. "/back-" .. name .. "/" .. name .. ".bin"))
    end
  end)

  it("example script: refuses a link planted where its directory goes, writing nothing", function()
    local src = skafos({ "scripts", "dump", "examples/fetch-all-models" }).stdout
    proc.write(work .. "/fetch-all.lua", src)
    local elsewhere = work .. "/elsewhere"
    assert.is_true(os.execute("mkdir " .. q(elsewhere) .. " && ln -s elsewhere " .. q(work .. "/out")))
    local r = skafos { "run", "fetch-all.lua", "out" }
    assert.are.equal(2, r.code, r.stderr)
    assert.matches("out is a link; skafos does not write through it", r.stderr)
    assert.are.equal("", e2e.listing(elsewhere))
    os.remove(work .. "/out")
  end)

  it("example script: fetches every model of the app, at most 4 at a time", function()
    local names = models("every", 5, 1)
    local src = skafos({ "scripts", "dump", "examples/fetch-all-models" }).stdout
    proc.write(work .. "/fetch-all.lua", src)
    emu:shape { storage = { rate = 2 * MiB, first_byte_ms = 200 } }
    local r = skafos { "run", "fetch-all.lua", "out" }
    assert.are.equal(0, r.code, r.stderr)
    for _, name in ipairs(names) do
      assert.matches("\n" .. name .. "\tversion 1\tout/" .. name .. "\n", "\n" .. r.stdout)
      assert.are.equal(MiB, #proc.read(work .. "/out/" .. name .. "/m.bin"))
    end
    assert.matches("\nempty%-model\tno versions, skipped\n", "\n" .. r.stdout)
    -- four fetches at a time, each over one or several ranged requests
    overlapped(most_objects_at_once(emu:requests()), 4)
  end)
end)
