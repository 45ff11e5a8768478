-- Archives made by other tools, published as they are and fetched back with `fetch
-- --unzip` (extracted while it downloads, or downloaded first when the archive cannot be
-- read front to back), compared file by file with what the tool packed; and folders from
-- a Mac or a Windows machine published without the files Finder and Explorer leave in
-- them. The real skafos binary against the emulator.
local emulator = require "emulator"
local proc = require "proc"
local trees = require "trees"
local cjson = require "cjson"
local fs = require "skafos.fs"
local zip = require "skafos.zip"

local TOKEN = "demo-token"

local same_tree, snapshot = trees.assert_same, trees.snapshot

describe("archives from other tools", function()
  local emu, dir, cleanup, corpus, corpus_cleanup, cases

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
    corpus, corpus_cleanup = proc.tmpdir()
    local r = proc.run({ "python3", proc.source_dir .. "/tests/zip/make_compat.py", corpus },
      { env = { LC_ALL = "C.UTF-8" } })
    assert(r.code == 0, r.stdout .. r.stderr)
    cases = cjson.decode((assert(proc.read(corpus .. "/manifest.json"))))
  end)

  teardown(function()
    if emu then emu:stop() end
    if corpus_cleanup then corpus_cleanup() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
  end)

  after_each(function() cleanup() end)

  local function skafos(args)
    os.execute("mkdir -p " .. proc.quote(dir .. "/tmp"))
    return proc.skafos(args, { cwd = dir, env = {
      SKAFOS_API_URL = emu.api, SKAFOS_DOWNLOAD_URL = emu.download, SKAFOS_API_TOKEN = TOKEN,
      SKAFOS_ORG_NAME = "demo-org", SKAFOS_APP_NAME = "demo-app", SKAFOS_MODEL_NAME = "demo-model",
      XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir .. "/home", TMPDIR = dir .. "/tmp",
    }, unset = { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE", "http_proxy", "https_proxy", "HTTP_PROXY",
      "HTTPS_PROXY", "ALL_PROXY" } })
  end

  local function sha256(path)
    local p = io.popen("sha256sum " .. proc.quote(path))
    local out = p:read("a")
    p:close()
    return out:match("^(%x+)")
  end

  it("publishes each as it is and fetch --unzip gives back what the tool packed", function()
    assert.are.equal(10, #cases)
    for _, c in ipairs(cases) do
      proc.write(dir .. "/Model.zip", assert(proc.read(c.file)))
      local r = skafos { "publish", "--json", "-m", c.tool, "Model.zip" }
      assert.are.equal(0, r.code, c.name .. ": " .. r.stderr)
      local pub = proc.json(r.stdout)
      assert.is_true(pub.as_is, c.name)
      assert.are.equal(sha256(c.file), pub.sha256, c.name)
      local f = skafos { "fetch", "--json", "--version", tostring(pub.version), "--unzip", c.name }
      assert.are.equal(0, f.code, c.name .. ": " .. f.stderr)
      assert.are.equal(#assert(zip.list(c.file)), proc.json(f.stdout).entries, c.name)
      same_tree(c.expect, dir .. "/" .. c.name, c.name .. " (fetch --unzip)")
      -- nothing left beside it: no staging or partial directory, no part file
      local left, want = fs.dir(dir), { "Model.zip", c.name, "tmp" }
      table.sort(left)
      table.sort(want)
      assert.are.same(want, left, c.name)
      os.execute("rm -rf " .. proc.quote(dir .. "/" .. c.name))
    end
  end)

  it("refuses, before sending anything, a backslash from an archive not made on Windows", function()
    local win
    for _, c in ipairs(cases) do
      if c.name == "windows-backslashes" then win = c end
    end
    local data = assert(proc.read(win.file)):gsub("PK\1\2(.)[\0\10\14]", "PK\1\2%1\3")
    proc.write(dir .. "/Model.zip", data)
    emu:clear_requests()
    local r = skafos { "publish", "Model.zip" }
    assert.are.equal(7, r.code, r.stderr)
    assert.truthy(r.stderr:find("Model.zip cannot be published as it is: entry 'Model\\': backslash in name",
      1, true), r.stderr)
    local log = emu:requests()
    assert.are.same({}, log.api or {})
    assert.are.same({}, log.storage or {})
  end)
end)

describe("publishing a folder", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
  end)

  after_each(function() cleanup() end)

  local function skafos(args)
    os.execute("mkdir -p " .. proc.quote(dir .. "/tmp"))
    return proc.skafos(args, { cwd = dir, env = {
      SKAFOS_API_URL = emu.api, SKAFOS_DOWNLOAD_URL = emu.download, SKAFOS_API_TOKEN = TOKEN,
      SKAFOS_ORG_NAME = "demo-org", SKAFOS_APP_NAME = "demo-app", SKAFOS_MODEL_NAME = "demo-model",
      XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir .. "/home", TMPDIR = dir .. "/tmp",
    }, unset = { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE" } })
  end

  -- Classifier.mlpackage as a Mac and a Windows machine leave it
  local function littered()
    local m = dir .. "/Classifier.mlpackage"
    for rel, data in pairs({
      ["Manifest.json"] = "{}\n", ["Data/weights.bin"] = ("\1\2\3"):rep(1000), [".hidden"] = "mine\n",
      [".DS_Store"] = "Bud1", ["._Manifest.json"] = "\0\5\22\7", ["Data/.DS_Store"] = "Bud1",
      ["Data/._weights.bin"] = "\0\5\22\7", ["Data/Thumbs.db"] = "thumbs", ["desktop.ini"] = "[.ShellClassInfo]",
      ["__MACOSX/Data/._weights.bin"] = "\0\5\22\7",
    }) do
      proc.write(m .. "/" .. rel, data)
    end
    return m
  end

  it("leaves out what Finder and Explorer leave in it, says so in --dry-run, and sends the same", function()
    littered()
    local r = skafos { "publish", "--dry-run", "Classifier.mlpackage" }
    assert.are.equal(0, r.code, r.stderr)
    assert.truthy(r.stdout:find("(2.9 KiB, 3 files, level auto)", 1, true), r.stdout)
    assert.truthy(r.stdout:find("\n  left out 7 operating-system files (--keep-os-files keeps them): "
      .. "Classifier.mlpackage/.DS_Store, Classifier.mlpackage/._Manifest.json, Classifier.mlpackage/Data/.DS_Store, "
      .. "Classifier.mlpackage/Data/._weights.bin, Classifier.mlpackage/Data/Thumbs.db, "
      .. "Classifier.mlpackage/__MACOSX/, Classifier.mlpackage/desktop.ini\n", 1, true), r.stdout)
    local j = skafos { "publish", "--dry-run", "--json", "Classifier.mlpackage" }
    assert.are.equal(0, j.code, j.stderr)
    local plan = proc.json(j.stdout)
    assert.are.same({ 7, 3, 7, 7 }, { plan.left_out, plan.files, #plan.left_out_names, plan.inputs[1].left_out })
    local p = skafos { "publish", "--json", "Classifier.mlpackage" }
    assert.are.equal(0, p.code, p.stderr)
    local f = skafos { "fetch", "--unzip", "back", "--version", tostring(proc.json(p.stdout).version) }
    assert.are.equal(0, f.code, f.stderr)
    assert.are.same({ "Classifier.mlpackage/", "Classifier.mlpackage/.hidden", "Classifier.mlpackage/Data/",
      "Classifier.mlpackage/Data/weights.bin", "Classifier.mlpackage/Manifest.json" }, (snapshot(dir .. "/back")))
  end)

  it("keeps them with --keep-os-files, and publishes one named on its own", function()
    local m = littered()
    local r = skafos { "publish", "--dry-run", "--keep-os-files", "Classifier.mlpackage" }
    assert.are.equal(0, r.code, r.stderr)
    assert.truthy(r.stdout:find("10 files", 1, true), r.stdout)
    assert.is_nil(r.stdout:find("left out", 1, true), r.stdout)
    local p = skafos { "publish", "--json", "--keep-os-files", "Classifier.mlpackage" }
    assert.are.equal(0, p.code, p.stderr)
    local f = skafos { "fetch", "--unzip", "back", "--version", tostring(proc.json(p.stdout).version) }
    assert.are.equal(0, f.code, f.stderr)
    same_tree(m, dir .. "/back/Classifier.mlpackage", "--keep-os-files")
    -- named on its own, a .DS_Store is what the user asked for
    r = skafos { "publish", "--dry-run", "--json", "Classifier.mlpackage/.DS_Store" }
    assert.are.equal(0, r.code, r.stderr)
    assert.are.same({ 1, 0, ".DS_Store" }, { proc.json(r.stdout).files, proc.json(r.stdout).left_out,
      proc.json(r.stdout).inputs[1].name })
  end)

  it("refuses a folder that holds nothing else, saying what was left out", function()
    proc.write(dir .. "/empty/.DS_Store", "Bud1")
    proc.write(dir .. "/empty/sub/._x", "\0\5\22\7")
    local r = skafos { "publish", "--dry-run", "empty" }
    assert.are.equal(2, r.code, r.stderr)
    assert.are.equal("skafos: nothing to publish in empty: the directory holds no files besides 2 operating-system "
      .. "files, left out (pass --keep-os-files to keep them, or --allow-empty to publish it anyway)\n", r.stderr)
    r = skafos { "publish", "--dry-run", "--keep-os-files", "empty" }
    assert.are.equal(0, r.code, r.stderr)
  end)
end)
