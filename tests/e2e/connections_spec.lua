-- fetch over several connections, for real against the emulator: --connections and the
-- config's connections, --unzip over several connections (streamed, and with -o), and a fetch killed
-- in the middle that the same command finishes by asking only for the ranges it lacks.
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local q, sh = proc.quote, e2e.sh
local MiB = 1024 * 1024

describe("fetch over several connections", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/work"))
    e2e.fast_retries(dir, 3)
    emu:clear_faults()
    emu:clear_shaping()
  end)

  after_each(function()
    cleanup()
  end)

  local function skafos(args)
    return e2e.skafos(emu, dir, args, nil, dir .. "/work")
  end

  -- publishes `mib` MiB of random bytes (stored as they are: they do not compress)
  local function publish(mib)
    sh(("head -c %d /dev/urandom > %s"):format(mib * MiB, q(dir .. "/work/m.bin")))
    local r = skafos { "publish", "--json", "m.bin" }
    assert.are.equal(0, r.code, r.stderr)
    os.remove(dir .. "/work/m.bin")
    emu:clear_requests()
    return proc.json(r.stdout)
  end

  local function storage_gets()
    local out = {}
    for _, r in ipairs(emu:requests().storage) do
      if r.method == "GET" then out[#out + 1] = r end
    end
    return out
  end

  it("fetches -o over up to --connections, checking the archive as before", function()
    publish(20)
    emu:shape { storage = { rate = 4 * MiB } } -- a link where more connections pay
    local r = skafos { "fetch", "-o", "x.zip", "--connections", "4", "--json" }
    assert.are.equal(0, r.code, r.stderr)
    local res = proc.json(r.stdout)
    assert.are.equal(sh("sha256sum " .. q(dir .. "/work/x.zip")):match("^%x+"), res.sha256)
    assert.are.equal(1, res.entries)
    local gets = storage_gets()
    assert.is_true(#gets >= 3, #gets .. " requests")
    for _, g in ipairs(gets) do
      assert.matches("^bytes=%d+%-%d+$", g.headers["range"])
      assert.are.equal(206, math.tointeger(g.status))
    end
    assert.are.equal("x.zip\n", e2e.listing(dir .. "/work"))
  end)

  it("takes one connection with --connections 1, or connections = 1 in a config", function()
    publish(10)
    local r = skafos { "fetch", "-o", "x.zip", "--connections", "1" }
    assert.are.equal(0, r.code, r.stderr)
    local gets = storage_gets()
    assert.are.equal(1, #gets)
    assert.is_nil(gets[1].headers["range"])
    proc.write(dir .. "/xdg/skafos/config.lua", "return { connections = 1 }")
    emu:clear_requests()
    r = skafos { "fetch", "-o", "y.zip" }
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(1, #storage_gets())
  end)

  it("refuses a number of connections out of 1 to 32", function()
    for _, n in ipairs { "0", "33" } do
      local r = skafos { "fetch", "-o", "x.zip", "--connections", n }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("connections %(flag %-%-connections%) must be", r.stderr)
    end
  end)

  it("extracts --unzip (no -o) as it downloads over several connections", function()
    publish(20)
    emu:shape { storage = { rate = 4 * MiB } } -- a link where more connections pay
    local r = skafos { "fetch", "--unzip", "d1", "--connections", "4", "--json" }
    assert.are.equal(0, r.code, r.stderr)
    local res = proc.json(r.stdout)
    assert.are.equal(1, res.entries)
    assert.is_nil(res.path)
    local gets = storage_gets()
    assert.is_true(#gets >= 3, #gets .. " requests")
    for _, g in ipairs(gets) do
      assert.matches("^bytes=%d+%-%d+$", g.headers["range"])
      assert.are.equal(206, math.tointeger(g.status))
    end
    assert.are.equal(20 * MiB, #proc.read(dir .. "/work/d1/m.bin"))
    -- the tree only: no archive, no part file, no partial directory
    assert.are.equal("d1\n", e2e.listing(dir .. "/work"))
    assert.are.equal("m.bin\n", e2e.listing(dir .. "/work/d1"))
  end)

  it("fetches -o FILE --unzip over several connections, extracting the file's front as it fills", function()
    publish(20)
    emu:shape { storage = { rate = 4 * MiB } }
    local r = skafos { "fetch", "-o", "x.zip", "--unzip", "d2", "--connections", "4", "--json" }
    assert.are.equal(0, r.code, r.stderr)
    local res = proc.json(r.stdout)
    assert.are.equal(sh("sha256sum " .. q(dir .. "/work/x.zip")):match("^%x+"), res.sha256)
    local gets = storage_gets()
    assert.is_true(#gets >= 3, #gets .. " requests")
    for _, g in ipairs(gets) do
      assert.matches("^bytes=%d+%-%d+$", g.headers["range"])
      assert.are.equal(206, math.tointeger(g.status))
    end
    assert.are.equal(20 * MiB, #proc.read(dir .. "/work/d2/m.bin"))
    assert.are.equal("d2\nx.zip\n", e2e.listing(dir .. "/work"))
  end)

  it("finishes a fetch killed in the middle, asking only for the ranges it lacks", function()
    publish(40)
    -- a link where more connections pay (a fast one would stay on one), and the archive's
    -- last range crawls on it: the others complete and are recorded
    emu:shape { storage = { rate = 16 * MiB } }
    emu:fault { role = "storage", method = "GET", range_prefix = "bytes=33554432-", times = -1,
      action = { type = "trickle", after_bytes = 100000, bytes_per_second = 10000 } }
    local meta_path = dir .. "/work/x.zip.download.part.etag"
    local env = e2e.env(emu, dir)
    local parts = { "cd", q(dir .. "/work"), "&&", "env" }
    for k, v in pairs(env) do parts[#parts + 1] = q(k .. "=" .. v) end
    for _, a in ipairs { proc.bin, "fetch", "-o", "x.zip", "--connections", "4", "--progress", "none" } do
      parts[#parts + 1] = q(a)
    end
    local pid = tonumber(sh(table.concat(parts, " ") .. " >/dev/null 2>&1 & echo $!"))
    local function done_below()
      local meta = proc.read(meta_path) or ""
      local reach, spans = 0, {}
      for a, b in meta:gmatch("\ndone (%d+) (%d+)") do spans[#spans + 1] = { tonumber(a), tonumber(b) } end
      table.sort(spans, function(x, y) return x[1] < y[1] end)
      for _, s in ipairs(spans) do
        if s[1] > reach then break end
        reach = math.max(reach, s[2] + 1)
      end
      return reach, meta
    end
    for _ = 1, 600 do -- at most 60 s
      if done_below() >= 33554432 then break end
      sh("sleep 0.1")
    end
    sh("kill -9 " .. pid .. "; sleep 0.2")
    local reach, meta = done_below()
    assert.is_true(reach >= 33554432, meta)
    assert.is_nil(proc.read(dir .. "/work/x.zip"))
    emu:clear_faults()
    emu:clear_shaping()
    emu:clear_requests()
    local r = skafos { "fetch", "-o", "x.zip", "--connections", "4", "--json" }
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(proc.json(r.stdout).resumed)
    -- nothing below what the killed run had recorded was asked for again
    for _, g in ipairs(storage_gets()) do
      local first = tonumber(g.headers["range"]:match("^bytes=(%d+)%-"))
      assert.is_true(first >= reach, g.headers["range"] .. " asked again")
    end
    assert.are.equal("x.zip\n", e2e.listing(dir .. "/work"))
  end)
end)
