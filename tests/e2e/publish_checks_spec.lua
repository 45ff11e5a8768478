-- A single .zip published as it is passes the checks `fetch --unzip` makes before any
-- request: the real skafos binary against the emulator, checked through exit codes,
-- messages and what the emulator recorded (nothing, for a refused archive).
local emulator = require "emulator"
local proc = require "proc"
local cjson = require "cjson"
local zip = require "skafos.zip"

local TOKEN = "demo-token"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function sha256(path)
  return sh("sha256sum " .. proc.quote(path)):match("^(%x+)")
end

describe("publish as it is", function()
  local emu, dir, cleanup, corpus, corpus_cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
    corpus, corpus_cleanup = proc.tmpdir()
    local out = sh("python3 " .. proc.quote(proc.source_dir .. "/tests/zip/make_hostile.py") .. " "
      .. proc.quote(corpus) .. " 2>&1")
    assert(proc.read(corpus .. "/manifest.json"), out)
  end)

  teardown(function()
    if emu then emu:stop() end
    if corpus_cleanup then corpus_cleanup() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    emu:clear_faults()
    emu:clear_requests()
  end)

  after_each(function() cleanup() end)

  local function env()
    local e = {
      SKAFOS_API_URL = emu.api, SKAFOS_DOWNLOAD_URL = emu.download, SKAFOS_API_TOKEN = TOKEN,
      SKAFOS_ORG_NAME = "demo-org", SKAFOS_APP_NAME = "demo-app", SKAFOS_MODEL_NAME = "demo-model",
      XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir .. "/home", TMPDIR = dir .. "/tmp",
    }
    os.execute("mkdir -p " .. proc.quote(dir .. "/tmp"))
    return e
  end

  local function skafos(args)
    return proc.skafos(args, { cwd = dir, env = env(),
      unset = { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE", "http_proxy", "https_proxy", "HTTP_PROXY",
        "HTTPS_PROXY", "ALL_PROXY" } })
  end

  -- Every request the emulator saw, per role.
  local function requests()
    local log = emu:requests()
    return log.api or {}, log.storage or {}
  end

  -- A corpus archive copied into the work directory as Model.zip.
  local function hostile(name, stream)
    local src = corpus .. (stream and "/stream/" or "/") .. name .. ".zip"
    proc.write(dir .. "/Model.zip", assert(proc.read(src), src))
    return "Model.zip"
  end

  -- What `fetch --unzip` would refuse is refused before any request, with or without
  -- --dry-run: exit 7, the entry named, nothing sent.
  local function refused(name, detail, stream)
    local file = hostile(name, stream)
    for _, dry in ipairs({ false, true }) do
      local args = { "publish", "-m", "hostile" }
      if dry then args[#args + 1] = "--dry-run" end
      args[#args + 1] = file
      local r = skafos(args)
      local what = name .. (dry and " (--dry-run)" or "")
      assert.are.equal(7, r.code, what .. ": " .. r.stderr)
      assert.are.equal("", r.stdout, what)
      assert.truthy(r.stderr:find("Model.zip cannot be published as it is: ", 1, true), what .. ": " .. r.stderr)
      assert.truthy(r.stderr:find(detail, 1, true), what .. ": " .. r.stderr)
      assert.truthy(r.stderr:find("nothing was sent", 1, true), what .. ": " .. r.stderr)
      local api, storage = requests()
      assert.are.same({}, api, what)
      assert.are.same({}, storage, what)
    end
  end

  it("refuses a zip with a bad CRC (exit 7), naming the entry, and sends nothing", function()
    refused("crc_mismatch", "entry 'a.txt': CRC mismatch")
  end)

  it("refuses a zip with a '../' entry", function()
    refused("dotdot", "entry '../sentinel.txt': '..' component in name")
  end)

  it("refuses a zip naming an entry twice, also by case only", function()
    refused("duplicate", "entry 'a.txt' appears twice")
    refused("case_duplicate", "entries 'Model.bin' and 'model.bin' differ only by case")
  end)

  it("refuses a zip bomb that expands more than 1000 times", function()
    refused("bomb_default_ratio", "extracting 'z0.bin' expands the archive more than 1000 times")
  end)

  it("refuses a symlink entry, as fetch --unzip does", function()
    refused("symlink_default", "entry 'l' is a symlink")
  end)

  it("refuses sizes that disagree with the data and what the extractor cannot read front to back", function()
    refused("fewer_than_declared", "entry 'a.txt' holds 28000 bytes, fewer than the 28010 it declares")
    refused("local_crc_differs", "entry 'a.txt': its local header gives other sizes or CRC", true)
    refused("bytes_after_end", "bytes follow the end of central directory record", true)
  end)

  it("still sends a good zip as it is, and fetch --unzip takes it back", function()
    proc.write(dir .. "/src/a.txt", ("alpha\n"):rep(1000))
    proc.write(dir .. "/src/d/b.bin", ("\0\1\2\3"):rep(5000))
    os.execute(("cd %s && zip -q -r ../Model.zip a.txt d"):format(proc.quote(dir .. "/src")))
    local plan = skafos { "publish", "--json", "--dry-run", "Model.zip" }
    assert.are.equal(0, plan.code, plan.stderr)
    assert.is_true(proc.json(plan.stdout).as_is)
    local r = skafos { "publish", "--json", "Model.zip" }
    assert.are.equal(0, r.code, r.stderr)
    local out = proc.json(r.stdout)
    assert.is_true(out.as_is)
    assert.are.equal(sha256(dir .. "/Model.zip"), out.sha256)
    local f = skafos { "fetch", "--json", "--unzip", "back" }
    assert.are.equal(0, f.code, f.stderr)
    assert.are.equal(proc.read(dir .. "/src/d/b.bin"), proc.read(dir .. "/back/d/b.bin"))
  end)

  it("refuses more entries than the limit, in publish and in fetch, before anything is kept", function()
    for i = 1, 5 do proc.write(("%s/src/f%d.txt"):format(dir, i), "entry " .. i) end
    os.execute(("cd %s && zip -q -r ../Model.zip ."):format(proc.quote(dir .. "/src")))
    local over = "the archive has 5 entries, more than the limit of 4 (raise it with --max-entries"
    local r = skafos { "publish", "--max-entries", "4", "Model.zip" }
    assert.are.equal(7, r.code, r.stderr)
    assert.truthy(r.stderr:find(over, 1, true), r.stderr)
    local api, storage = requests()
    assert.are.same({}, api)
    assert.are.same({}, storage)
    -- at the limit it goes, and fetch takes it back under the same limit
    r = skafos { "publish", "--max-entries", "5", "Model.zip" }
    assert.are.equal(0, r.code, r.stderr)
    os.remove(dir .. "/Model.zip")
    os.execute("rm -rf " .. proc.quote(dir .. "/src"))
    local before = sh("ls -A " .. proc.quote(dir))
    for _, args in ipairs { { "-o", "got.zip" }, { "--unzip", "got" }, { "-o", "got.zip", "--unzip", "got" } } do
      local f = skafos { "fetch", "--max-entries", "4", table.unpack(args) }
      local what = table.concat(args, " ")
      assert.are.equal(7, f.code, what .. ": " .. f.stderr)
      assert.truthy(f.stderr:find("more than", 1, true) and f.stderr:find("the limit", 1, true),
        what .. ": " .. f.stderr)
      assert.are.equal(before, sh("ls -A " .. proc.quote(dir)), what)
    end
    -- the same limit from a config file; 0 lifts it
    proc.write(dir .. "/xdg/skafos/config.lua", "return { max_entries = 4 }")
    local f = skafos { "fetch", "--unzip", "got" }
    assert.are.equal(7, f.code, f.stderr)
    f = skafos { "fetch", "--max-entries", "0", "--unzip", "got" }
    assert.are.equal(0, f.code, f.stderr)
    assert.are.equal("entry 3", proc.read(dir .. "/got/f3.txt"))
    f = skafos { "fetch", "--max-entries=-1", "-o", "x.zip" }
    assert.are.equal(2, f.code, f.stderr)
    assert.truthy(f.stderr:find("max_entries (flag --max-entries) must be a whole number, at least 0", 1, true),
      f.stderr)
  end)

  it("zips a .zip file that is not a zip like any other file", function()
    proc.write(dir .. "/notes.zip", "not an archive at all\n")
    local r = skafos { "publish", "--json", "notes.zip" }
    assert.are.equal(0, r.code, r.stderr)
    local out = proc.json(r.stdout)
    assert.is_false(out.as_is)
    local _, storage = requests()
    assert.are.equal(1, #storage)
    -- what was sent is a zip holding the file
    local f = skafos { "fetch", "--unzip", "back" }
    assert.are.equal(0, f.code, f.stderr)
    assert.are.equal("not an archive at all\n", proc.read(dir .. "/back/notes.zip"))
  end)

  it("refuses every hostile archive fetch --unzip refuses with its defaults", function()
    -- cases with their own limits are left out; so are the files that are no zip at all,
    -- which publish zips as ordinary files
    local cases = cjson.decode((assert(proc.read(corpus .. "/manifest.json"))))
    for _, c in ipairs(cjson.decode((assert(proc.read(corpus .. "/stream_manifest.json"))))) do
      cases[#cases + 1] = c
    end
    local checked = 0
    for _, c in ipairs(cases) do
      if not (c.opts.max_size or c.opts.max_ratio) and zip.list(c.file) then
        proc.write(dir .. "/Model.zip", assert(proc.read(c.file)))
        local r = skafos { "publish", "--dry-run", "Model.zip" }
        assert.are.equal(7, r.code, c.name .. ": " .. r.stderr)
        assert.truthy(r.stderr:find("Model.zip cannot be published as it is", 1, true), c.name)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 30, checked)
    local api, storage = requests()
    assert.are.same({}, api)
    assert.are.same({}, storage)
  end)
end)
