-- skafos.zip: archives that Info-ZIP, Python and minizip read back byte for byte, the
-- same bytes for the same inputs, streams equal to stored archives, extraction that
-- refuses every case of the hostile corpus without touching anything outside the target,
-- and verification that refuses (or reports) what extraction would.
local zip = require("skafos.zip")
local proc = require("proc")
local fs = require("skafos.fs")
local cjson = require("cjson")

local SOURCE = os.getenv("SKAFOS_SOURCE_DIR") or "."

local q = proc.quote

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

-- file helpers shared by the specs (tests/helpers/proc.lua)
local slurp, spit = proc.read, proc.write

-- Incompressible bytes without reading /dev/urandom (reproducible).
local function noise(n, seed)
  local out, x = {}, seed or 7
  for i = 1, n // 4 + 1 do
    x = (x * 6364136223846793005 + 1442695040888963407) & 0xffffffffffffffff
    out[i] = string.pack("<I4", (x >> 29) & 0xffffffff)
  end
  return table.concat(out):sub(1, n)
end

local function text(n)
  local out, i = {}, 0
  while #out * 40 < n do
    i = i + 1
    out[#out + 1] = ("line %08d of a model card, weights...\n"):format(i)
  end
  return table.concat(out):sub(1, n)
end

local function python(code, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = q(a) end
  return sh("python3 -c " .. q(code) .. " " .. table.concat(args, " "))
end

-- Python's zipfile reads every entry (checking CRCs) and prints name, size, mode.
local PY_READ = [[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        data = z.read(i)
        assert len(data) == i.file_size
        print(i.filename, i.file_size, oct(i.external_attr >> 16))
]]

-- A writer that cannot seek, so Python's zipfile puts sizes after the data.
local PY_UNSEEKABLE = [[
import io, sys, zipfile
class Pipe(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
method = zipfile.ZIP_STORED if sys.argv[2] == "store" else zipfile.ZIP_DEFLATED
with open(sys.argv[1], "wb") as f, zipfile.ZipFile(Pipe(f), "w", method) as z:
    z.writestr("a/b.txt", "hello " * 5000)
    z.writestr("c.bin", bytes(range(256)) * 40)
]]

describe("skafos.zip", function()
  local tmp

  before_each(function()
    tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/zip_spec."))
  end)

  after_each(function()
    if tmp then fs.rmtree(tmp) end
  end)

  local function tree()
    local d = tmp .. "/model.mlpackage"
    assert(fs.mkdir(d))
    assert(fs.mkdir(d .. "/Data"))
    assert(fs.mkdir(d .. "/Data/weights"))
    assert(fs.mkdir(d .. "/empty"))
    spit(d .. "/Manifest.json", '{"fileFormatVersion": "1.0.0"}\n')
    spit(d .. "/Data/weights/weight.bin", noise(700 * 1024, 3) .. text(900 * 1024))
    spit(d .. "/Data/model.txt", text(300 * 1024))
    spit(d .. "/run.sh", "#!/bin/sh\necho hi\n")
    assert(fs.chmod(d .. "/run.sh", tonumber("755", 8)))
    spit(d .. "/empty.txt", "")
    return d
  end

  describe("create", function()
    it("round-trips a directory through unzip -t, Python's zipfile and our extract", function()
      local d = tree()
      local out = tmp .. "/out.zip"
      local s = assert(zip.create(out, { d, tmp .. "/model.mlpackage/Manifest.json" }))
      assert.are.equal(10, s.entries)
      assert.are.equal("deflate", s.methods["model.mlpackage/Data/model.txt"])
      assert.are.equal("store", s.methods["model.mlpackage/empty/"])
      local code, log = sh("unzip -t " .. q(out))
      assert.are.equal(0, code, log)
      local pcode, listing = python(PY_READ, out)
      assert.are.equal(0, pcode, listing)
      assert.truthy(listing:find("model.mlpackage/run.sh 18 0o100755", 1, true))
      assert.truthy(listing:find("model.mlpackage/Manifest.json 31 0o100644", 1, true))
      assert.truthy(listing:find("Manifest.json 31", 1, true))
      local x = assert(zip.extract(out, tmp .. "/x"))
      assert.are.equal(10, x.entries)
      local dcode, diff = sh("diff -r " .. q(d) .. " " .. q(tmp .. "/x/model.mlpackage"))
      assert.are.equal(0, dcode, diff)
      assert.are.equal(tonumber("755", 8), fs.stat(tmp .. "/x/model.mlpackage/run.sh").mode & 511)
    end)

    it("counts methods, and leaves the per-entry table out when asked to", function()
      local d = tree()
      local full = assert(zip.create(tmp .. "/full.zip", { d }))
      local lean = assert(zip.create(tmp .. "/lean.zip", { d }, { methods = false }))
      local stored = 0
      for _, m in pairs(full.methods) do stored = stored + (m == "store" and 1 or 0) end
      assert.are.equal(stored, full.stored)
      assert.are.equal(full.entries - stored, full.deflated)
      assert.is_true(full.deflated > 0 and full.stored > 0)
      assert.is_nil(lean.methods)
      assert.are.same({ full.entries, full.stored, full.deflated, full.bytes_out },
        { lean.entries, lean.stored, lean.deflated, lean.bytes_out })
      assert.has_error(function() zip.create(tmp .. "/bad.zip", { d }, { methods = "no" }) end,
        "bad option methods (expected a boolean)")
    end)

    it("joins parallel deflate blocks of one large file into a stream every reader accepts", function()
      local big = tmp .. "/big.bin"
      local parts = {}
      for i = 1, 12 do parts[i] = text(300 * 1024) .. noise(100 * 1024, i) end
      spit(big, table.concat(parts))
      local out = tmp .. "/big.zip"
      local s = assert(zip.create(out, { big }, { level = 6, threads = 3 }))
      assert.are.equal("deflate", s.methods["big.bin"])
      assert.is_true(s.bytes_out < s.bytes_in)
      assert.are.equal(0, (sh("unzip -t " .. q(out))))
      assert.are.equal(0, (python(PY_READ, out)))
      assert(zip.extract(out, tmp .. "/x"))
      assert.are.equal(slurp(big), slurp(tmp .. "/x/big.bin"))
    end)

    it("gives byte-identical archives for the same inputs whatever the mtimes and thread count", function()
      local d = tree()
      assert(zip.create(tmp .. "/a.zip", { d }, { threads = 1 }))
      sh("touch -d '2001-02-03 04:05:06' " .. q(d .. "/Manifest.json") .. " " .. q(d .. "/Data"))
      assert(zip.create(tmp .. "/b.zip", { d }, { threads = 4 }))
      assert.are.equal(slurp(tmp .. "/a.zip"), slurp(tmp .. "/b.zip"))
      local _, dates = python(
        "import sys,zipfile; print(set(i.date_time for i in zipfile.ZipFile(sys.argv[1]).infolist()))",
        tmp .. "/a.zip")
      assert.are.equal("{(1980, 1, 1, 0, 0, 0)}\n", dates)
    end)

    it("honours SOURCE_DATE_EPOCH and opts.mtime", function()
      local f = tmp .. "/f.txt"
      spit(f, "x")
      local script = tmp .. "/mk.lua"
      spit(script, ('assert(require("skafos.zip").create(%q, {%q}))'):format(tmp .. "/e.zip", f))
      local bin = os.getenv("SKAFOS_BIN") or "build/skafos"
      local code, out = sh("SOURCE_DATE_EPOCH=1700000000 " .. q(bin) .. " run " .. q(script))
      assert.are.equal(0, code, out)
      assert(zip.create(tmp .. "/m.zip", { f }, { mtime = 1700000000 }))
      local read = "import sys,zipfile; print(zipfile.ZipFile(sys.argv[1]).infolist()[0].date_time)"
      assert.are.equal("(2023, 11, 14, 22, 13, 20)\n", select(2, python(read, tmp .. "/e.zip")))
      assert.are.equal(slurp(tmp .. "/e.zip"), slurp(tmp .. "/m.zip"))
    end)

    it("stores random bytes and deflates text under auto", function()
      spit(tmp .. "/r.bin", noise(3 * 1024 * 1024))
      spit(tmp .. "/small.bin", noise(5000, 9))
      spit(tmp .. "/t.txt", text(2 * 1024 * 1024))
      spit(tmp .. "/tiny.txt", "ab")
      local s = assert(zip.create(tmp .. "/a.zip",
        { tmp .. "/r.bin", tmp .. "/small.bin", tmp .. "/t.txt", tmp .. "/tiny.txt" }, { level = "auto" }))
      assert.are.same({ ["r.bin"] = "store", ["small.bin"] = "store", ["t.txt"] = "deflate", ["tiny.txt"] = "store" },
        s.methods)
      assert.are.equal(0, (sh("unzip -t " .. q(tmp .. "/a.zip"))))
    end)

    it("takes per-entry names and methods", function()
      spit(tmp .. "/t.txt", text(100000))
      local s = assert(zip.create(tmp .. "/a.zip", {
        { src = tmp .. "/t.txt", name = "docs/readme.txt", method = "store" },
        { src = tmp .. "/t.txt", name = "docs/copy.txt", level = 9 },
        { name = "docs/" },
      }))
      assert.are.same({ ["docs/readme.txt"] = "store", ["docs/copy.txt"] = "deflate", ["docs/"] = "store" },
        s.methods)
    end)

    it("archives a symlink inside the tree as its target and refuses one leading outside", function()
      local d = tmp .. "/m"
      assert(fs.mkdir(d))
      spit(d .. "/real.txt", "real")
      sh("ln -s real.txt " .. q(d .. "/alias.txt"))
      local s = assert(zip.create(tmp .. "/in.zip", { d }))
      assert.are.equal("store", s.methods["m/alias.txt"])
      assert.are.equal(0, (sh("unzip -p " .. q(tmp .. "/in.zip") .. " m/alias.txt | grep -qx real")))
      spit(tmp .. "/secret.txt", "secret")
      sh("ln -s ../secret.txt " .. q(d .. "/leak.txt"))
      local ok, err = zip.create(tmp .. "/out.zip", { d })
      assert.is_nil(ok)
      assert.are.equal("INVALID_INPUT", err.code)
      assert.truthy(err.message:find("leak.txt", 1, true))
      assert.is_nil(slurp(tmp .. "/out.zip"))
    end)

    it("refuses names that collide, also by case only", function()
      spit(tmp .. "/a.txt", "a")
      local ok, err = zip.create(tmp .. "/o.zip", { { src = tmp .. "/a.txt", name = "A.txt" }, tmp .. "/a.txt" })
      assert.is_nil(ok)
      assert.are.equal("INVALID_INPUT", err.code)
      assert.truthy(tostring(err):find("case", 1, true))
    end)

    -- a folder as Finder and Explorer leave it, with files whose names only look alike
    local function littered()
      local d = tmp .. "/M.mlpackage"
      for _, f in ipairs({ "model.bin", ".hidden", "_x", "a._b", "._", ".DS_Store.bak", "Data/weights.bin",
          ".DS_Store", "._model.bin", "Data/.DS_Store", "Data/._weights.bin", "Data/Thumbs.db",
          "DESKTOP.INI", "__MACOSX/._model.bin", "Data/__MACOSX" }) do
        spit(d .. "/" .. f, f)
      end
      return d
    end

    local function archived(path)
      local out = {}
      for _, e in ipairs(assert(zip.list(path))) do out[#out + 1] = e.name end
      table.sort(out)
      return out
    end

    it("leaves out the files Finder and Explorer leave in folders, unless told to keep them", function()
      local d = littered()
      local kept = { "M.mlpackage/", "M.mlpackage/.DS_Store.bak", "M.mlpackage/.hidden", "M.mlpackage/._",
        "M.mlpackage/Data/", "M.mlpackage/Data/__MACOSX", "M.mlpackage/Data/weights.bin", "M.mlpackage/_x",
        "M.mlpackage/a._b", "M.mlpackage/model.bin" }
      table.sort(kept)
      local left = { "M.mlpackage/.DS_Store", "M.mlpackage/._model.bin", "M.mlpackage/DESKTOP.INI",
        "M.mlpackage/Data/.DS_Store", "M.mlpackage/Data/._weights.bin", "M.mlpackage/Data/Thumbs.db",
        "M.mlpackage/__MACOSX/" }
      -- the plan says what it leaves out; create and stream leave out the same
      local p = assert(zip.plan({ d }))
      assert.are.same({ 7, left, 7, 8 }, { p.left_out, p.left_out_names, p.inputs[1].left_out, p.files })
      assert(zip.create(tmp .. "/a.zip", { d }))
      assert.are.same(kept, archived(tmp .. "/a.zip"))
      local size, stream = assert(zip.stream({ d }, { level = "store" }))
      assert(zip.create(tmp .. "/s.zip", { d }, { level = "store" }))
      assert.are.equal(slurp(tmp .. "/s.zip"), stream:read(size))
      -- kept: as an option, per entry and by a writer
      p = assert(zip.plan({ d }, { litter = "keep" }))
      assert.are.same({ 0, {}, 15 }, { p.left_out, p.left_out_names, p.files })
      assert(zip.create(tmp .. "/k.zip", { { src = d, litter = "keep" } }))
      assert.are.equal(18, #archived(tmp .. "/k.zip"))
      do
        local w <close> = assert(zip.writer(tmp .. "/w.zip", { litter = "keep" }))
        assert(w:add(d .. "/Data"))
        assert(w:add(d .. "/__MACOSX", "mac", { litter = "skip" })) -- named itself: kept, its contents not
      end
      assert.are.same({ "Data/", "Data/.DS_Store", "Data/._weights.bin", "Data/Thumbs.db", "Data/__MACOSX",
        "Data/weights.bin", "mac/" }, archived(tmp .. "/w.zip"))
      -- a file named on its own is archived whatever its name
      assert(zip.create(tmp .. "/n.zip", { d .. "/.DS_Store" }))
      assert.are.same({ ".DS_Store" }, archived(tmp .. "/n.zip"))
      assert.has_error(function() zip.plan({ d }, { litter = "drop" }) end,
        'bad option litter (expected "skip" or "keep")')
    end)

    it("names at most ten left-out files, the first by name whatever order the folder lists them in", function()
      local d = tmp .. "/d"
      for i = 30, 1, -1 do spit(("%s/._%02d"):format(d, i), "x") end
      spit(d .. "/keep.txt", "kept")
      local p = assert(zip.plan({ d }))
      assert.are.equal(30, p.left_out)
      local want = {}
      for i = 1, 10 do want[i] = ("d/._%02d"):format(i) end
      assert.are.same(want, p.left_out_names)
    end)

    it("reports a missing input by name and leaves no file behind", function()
      local ok, err = zip.create(tmp .. "/o.zip", { tmp .. "/nope" })
      assert.is_nil(ok)
      assert.are.equal("INVALID_INPUT", err.code)
      assert.truthy(err.message:find("nope", 1, true))
      assert.are.same({}, fs.dir(tmp))
    end)

    it("reports progress and re-raises an error thrown by the callback, leaving nothing", function()
      spit(tmp .. "/t.txt", text(3 * 1024 * 1024))
      local calls = {}
      assert(zip.create(tmp .. "/a.zip", { tmp .. "/t.txt" }, {
        progress = function(done, total) calls[#calls + 1] = { done, total } end,
      }))
      assert.is_true(#calls >= 2)
      assert.are.same({ 3 * 1024 * 1024, 3 * 1024 * 1024 }, calls[#calls])
      local ok, err = pcall(zip.create, tmp .. "/b.zip", { tmp .. "/t.txt" },
        { progress = function() error("stop here", 0) end })
      assert.is_false(ok)
      assert.are.equal("stop here", err)
      assert.is_nil(slurp(tmp .. "/b.zip"))
      local names = fs.dir(tmp)
      table.sort(names)
      assert.are.same({ "a.zip", "t.txt" }, names)
    end)
  end)

  describe("writer", function()
    it("adds entries in call order and finishes when a <close> variable goes out of scope", function()
      spit(tmp .. "/a.txt", text(50000))
      do
        local w <close> = assert(zip.writer(tmp .. "/w.zip", { level = 9 }))
        assert(w:add(tmp .. "/a.txt", "z.txt"))
        assert(w:add(tmp .. "/a.txt", "a.txt", { method = "store" }))
        assert(w:add(nil, "dir/"))
        local ok, err = w:add(tmp .. "/a.txt", "Z.TXT")
        assert.is_nil(ok)
        assert.are.equal("INVALID_INPUT", err.code)
        assert.is_nil(slurp(tmp .. "/w.zip"))
      end
      local l = assert(zip.list(tmp .. "/w.zip"))
      assert.are.same({ "z.txt", "a.txt", "dir/" }, { l[1].name, l[2].name, l[3].name })
      assert.are.same({ "deflate", "store" }, { l[1].method, l[2].method })
      assert.are.equal(0, (sh("unzip -t " .. q(tmp .. "/w.zip"))))
    end)

    it("closes once, raises on use after close, and discards the archive when never closed", function()
      spit(tmp .. "/a.txt", "a")
      local w = assert(zip.writer(tmp .. "/w.zip"))
      assert(w:add(tmp .. "/a.txt"))
      assert.is_true(w:close())
      assert.is_true(w:close())
      assert.are.equal(1, w:summary().entries)
      assert.has_error(function() w:add(tmp .. "/a.txt") end)
      local w2 = assert(zip.writer(tmp .. "/never.zip"))
      assert(w2:add(tmp .. "/a.txt"))
      w2 = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      local names = fs.dir(tmp)
      table.sort(names)
      assert.are.same({ "a.txt", "w.zip" }, names)
    end)

    it("discards the archive when the <close> scope is left by an error", function()
      spit(tmp .. "/a.txt", "a")
      assert.has_error(function()
        local w <close> = assert(zip.writer(tmp .. "/w.zip"))
        assert(w:add(tmp .. "/a.txt"))
        error("boom")
      end)
      assert.is_nil(slurp(tmp .. "/w.zip"))
    end)
  end)

  describe("stream", function()
    it("produces exactly the bytes of the stored archive, with the size known up front", function()
      local d = tree()
      spit(d .. "/Data/model.txt", noise(200000, 5)) -- keep everything incompressible
      spit(d .. "/Data/weights/weight.bin", noise(2 * 1024 * 1024 + 17, 6))
      spit(d .. "/Manifest.json", noise(100, 8))
      spit(d .. "/run.sh", noise(50, 2))
      local size, reader = zip.stream({ d })
      assert.is_number(size, tostring(reader))
      assert.are.equal(size, #reader)
      assert.are.equal(size, reader.size)
      assert.is_true(getmetatable(reader).__skafos_source)
      local parts = {}
      for chunk in function() return reader:read(70001) end do parts[#parts + 1] = chunk end
      local bytes = table.concat(parts)
      assert.are.equal(size, #bytes)
      assert(zip.create(tmp .. "/s.zip", { d }, { level = "store" }))
      assert.are.equal(slurp(tmp .. "/s.zip"), bytes)
      assert(reader:reset())
      assert.are.equal(bytes:sub(1, 1000), reader:read(1000))
      assert.is_true(reader:close())
      assert.has_error(function() reader:read(10) end)
    end)

    it("refuses with NOT_STORED when an entry would be compressed", function()
      spit(tmp .. "/t.txt", text(100000))
      local size, err = zip.stream({ tmp .. "/t.txt" })
      assert.is_nil(size)
      assert.are.equal("NOT_STORED", err.code)
      assert.truthy(err.message:find("t.txt", 1, true))
      assert.is_number((zip.stream({ tmp .. "/t.txt" }, { level = "store" })))
    end)

    it("fails the read when a file changes after the size was given", function()
      spit(tmp .. "/r.bin", noise(100000))
      local size, reader = zip.stream({ tmp .. "/r.bin" })
      assert.is_number(size)
      spit(tmp .. "/r.bin", noise(100001, 99))
      local ok, err
      repeat ok, err = reader:read(65536) until not ok
      assert.is_table(err)
      assert.truthy(err.message:find("changed", 1, true))
    end)
  end)

  describe("list and verify", function()
    it("reads archives written by Info-ZIP zip and by Python's zipfile", function()
      local d = tree()
      local code, out = sh("cd " .. q(tmp) .. " && zip -q -r -X izip.zip model.mlpackage")
      assert.are.equal(0, code, out)
      python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a/b.txt", "hello" * 1000)
    z.writestr("c.bin", bytes(range(256)) * 10, compress_type=zipfile.ZIP_STORED)
]], tmp .. "/py.zip")
      local l = assert(zip.list(tmp .. "/izip.zip"))
      assert.are.equal(9, #l)
      local py = assert(zip.list(tmp .. "/py.zip"))
      assert.are.same({ "a/b.txt", 5000, "deflate" }, { py[1].name, py[1].size, py[1].method })
      assert.are.same({ "c.bin", 2560, "store" }, { py[2].name, py[2].size, py[2].method })
      assert.are.equal(2, assert(zip.verify(tmp .. "/py.zip")).entries)
      assert(zip.extract(tmp .. "/izip.zip", tmp .. "/x"))
      assert.are.equal(0, (sh("diff -r " .. q(d) .. " " .. q(tmp .. "/x/model.mlpackage"))))
    end)

    it("lists through an object that makes each entry's table when it is read", function()
      for i = 1, 3 do spit(("%s/l/%d.txt"):format(tmp, i), ("x"):rep(i)) end
      assert(zip.create(tmp .. "/l.zip", { tmp .. "/l" }))
      local l = assert(zip.list(tmp .. "/l.zip"))
      assert.are.equal(4, #l)
      assert.are.equal("skafos.ZipListing (4 entries)", tostring(l))
      local names = {}
      for i, e in ipairs(l) do names[i] = e.name .. ":" .. e.size end
      assert.are.same({ "l/:0", "l/1.txt:1", "l/2.txt:2", "l/3.txt:3" }, names)
      assert.is_nil(l[0])
      assert.is_nil(l[5])
      assert.is_nil(l.name)
      assert.are_not.equal(l[2], l[2]) -- a fresh table each time, nothing cached
      assert.are.equal(l[2].crc, l[2].crc)
    end)

    it("refuses more entries than max_entries before reading them, in every reader", function()
      for i = 1, 5 do spit(("%s/m/%d.txt"):format(tmp, i), "entry") end
      assert(zip.create(tmp .. "/m.zip", { tmp .. "/m" }, { mtime = 0 }))
      local over = "the archive has 6 entries, more than the limit of 5"
      local function refused(ok, err, what)
        assert.is_nil(ok, what)
        assert.are.equal("UNSAFE_ARCHIVE", err.code, what)
        assert.are.equal(7, err.exit, what)
        assert.truthy(err.message:find("more than", 1, true) and err.message:find("limit", 1, true),
          what .. ": " .. err.message)
      end
      local ok, err = zip.list(tmp .. "/m.zip", { max_entries = 5 })
      refused(ok, err, "list")
      assert.truthy(err.message:find(over, 1, true), err.message)
      ok, err = zip.verify(tmp .. "/m.zip", { max_entries = 5 })
      refused(ok, err, "verify")
      ok, err = zip.extract(tmp .. "/m.zip", tmp .. "/mx", { max_entries = 5 })
      refused(ok, err, "extract")
      assert.is_nil(fs.stat(tmp .. "/mx"))
      local ex = assert(zip.extractor(tmp .. "/ms", { max_entries = 5 }))
      local wrote, xerr = ex:write(slurp(tmp .. "/m.zip"))
      if wrote then wrote, xerr = ex:finish() end
      refused(wrote, xerr, "extractor")
      assert.is_nil(fs.stat(tmp .. "/ms"))
      -- at the limit, and with no limit, all of them read
      assert.are.equal(6, #assert(zip.list(tmp .. "/m.zip", { max_entries = 6 })))
      assert.are.equal(6, assert(zip.verify(tmp .. "/m.zip", { max_entries = 0 })).entries)
      ex = assert(zip.extractor(tmp .. "/ms", { max_entries = 6 }))
      assert(ex:write(slurp(tmp .. "/m.zip")))
      assert.are.equal(6, assert(ex:finish()).entries)
      assert.has_error(function() zip.list(tmp .. "/m.zip", { max_entries = -1 }) end,
        "bad option max_entries (expected a count, 0 for no limit)")
      assert.has_error(function() zip.verify(tmp .. "/m.zip", { max_entries = "many" }) end,
        "bad option max_entries (expected a count, 0 for no limit)")
    end)

    it("says INTEGRITY for a damaged archive", function()
      spit(tmp .. "/t.txt", text(200000))
      assert(zip.create(tmp .. "/a.zip", { tmp .. "/t.txt" }))
      local data = slurp(tmp .. "/a.zip")
      spit(tmp .. "/bad.zip", data:sub(1, 200) .. string.char((data:byte(201) + 1) % 256) .. data:sub(202))
      local ok, err = zip.verify(tmp .. "/bad.zip")
      assert.is_nil(ok)
      assert.are.equal("INTEGRITY", err.code)
      local _, lerr = zip.list(tmp .. "/t.txt")
      assert.are.equal("INTEGRITY", lerr.code)
    end)
  end)

  describe("verify", function()
    -- Python's zipfile writes the entries given as {name, data[, "symlink"]}.
    local PY_WRITE = [[
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for e in json.loads(sys.argv[2]):
        i = zipfile.ZipInfo(e[0])
        if len(e) > 2:
            i.create_system = 3
            i.external_attr = 0o120777 << 16
        z.writestr(i, e[1])
]]

    local function pyzip(name, entries)
      local path = tmp .. "/" .. name
      local code, out = python(PY_WRITE, path, cjson.encode(entries))
      assert.are.equal(0, code, out)
      return path
    end

    local function corpus()
      local dir = tmp .. "/corpus"
      local code, out = sh("python3 " .. q(SOURCE .. "/tests/zip/make_hostile.py") .. " " .. q(dir))
      assert.are.equal(0, code, out)
      return dir
    end

    -- zip.extract's checks with the extractor's expansion limit, read as zip.extractor reads
    local function as_extraction(opts)
      local o = { max_ratio = 1000, stream = true }
      for k, v in pairs(opts or {}) do o[k] = v end
      return o
    end

    it("refuses every hostile archive with the code extraction gives", function()
      local dir = corpus()
      local cases = cjson.decode(slurp(dir .. "/manifest.json"))
      assert.is_true(#cases >= 25)
      for _, c in ipairs(cases) do
        local ok, err = zip.verify(c.file, as_extraction(c.opts))
        assert.is_nil(ok, c.name .. " passed")
        assert.are.equal(c.code, err.code, c.name .. ": " .. tostring(err))
      end
    end)

    it("with names = \"report\" keeps an archive whose only fault is what extraction refuses", function()
      local dir = corpus()
      local reported = {}
      for _, c in ipairs(cjson.decode(slurp(dir .. "/manifest.json"))) do
        local _, refused = zip.verify(c.file, as_extraction(c.opts))
        local o = as_extraction(c.opts)
        o.names = "report"
        local r, err = zip.verify(c.file, o)
        if r then
          -- the message extraction would have refused it with
          assert.are.equal(refused.message, r.unsafe, c.name)
          reported[c.name] = true
        else
          assert.are.same({ refused.code, refused.message }, { err.code, err.message }, c.name)
        end
      end
      for _, name in ipairs({ "dotdot", "absolute", "nul_in_name", "duplicate", "case_duplicate",
        "file_then_child", "symlink_default", "symlink_outside", "dir_with_data" }) do
        assert.is_true(reported[name], name .. " was not reported")
      end
      -- damage, what cannot be read, overlaps and the limits still fail
      for _, name in ipairs({ "crc_mismatch", "more_than_declared", "truncated", "encrypted",
        "overlap_same_header", "local_name_differs", "max_ratio", "bomb_default_ratio" }) do
        assert.is_nil(reported[name], name .. " was only reported")
      end
      local ok, err = zip.verify(dir .. "/crc_mismatch.zip", { names = "report" })
      assert.is_nil(ok)
      assert.are.same({ "INTEGRITY", "entry 'a.txt': CRC mismatch" }, { err.code, err.message })
    end)

    it("reports a '../' name but refuses it by default, and still refuses a bad CRC beside it", function()
      local evil = pyzip("evil.zip", { { "../x.txt", "escape" }, { "ok.txt", "payload-one" } })
      local ok, err = zip.verify(evil)
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", "entry '../x.txt': '..' component in name" }, { err.code, err.message })
      local r = assert(zip.verify(evil, { names = "report" }))
      assert.are.same({ 2, 17, "entry '../x.txt': '..' component in name" }, { r.entries, r.bytes, r.unsafe })
      assert.is_nil(assert(zip.verify(pyzip("fine.zip", { { "ok.txt", "fine" } }), { names = "report" })).unsafe)
      -- the same archive with one byte of ok.txt changed (stored, so the bytes are there)
      local code, out = python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("../x.txt", "escape")
    z.writestr("ok.txt", "payload-one")
]], tmp .. "/stored.zip")
      assert.are.equal(0, code, out)
      local data = slurp(tmp .. "/stored.zip")
      spit(tmp .. "/damaged.zip", (data:gsub("payload%-one", "payload-onE", 1)))
      ok, err = zip.verify(tmp .. "/damaged.zip", { names = "report" })
      assert.is_nil(ok)
      assert.are.same({ "INTEGRITY", "entry 'ok.txt': CRC mismatch" }, { err.code, err.message })
    end)

    it("refuses symlinks by default and, when inside, checks their targets as extraction does", function()
      local inside = pyzip("in.zip", { { "data/real.txt", "real" }, { "data/alias.txt", "real.txt", "symlink" } })
      local outside = pyzip("out.zip", { { "data/real.txt", "real" }, { "data/alias.txt", "../../x", "symlink" } })
      local ok, err = zip.verify(inside)
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", "entry 'data/alias.txt' is a symlink" }, { err.code, err.message })
      assert.are.equal("UNSAFE_ARCHIVE", select(2, zip.verify(inside, { symlinks = "refuse" })).code)
      assert.are.equal(2, assert(zip.verify(inside, { symlinks = "inside" })).entries)
      ok, err = zip.verify(outside, { symlinks = "inside" })
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE",
        "symlink 'data/alias.txt' points outside the target or through another symlink" }, { err.code, err.message })
      -- extraction agrees
      assert.are.equal("UNSAFE_ARCHIVE", select(2, zip.extract(outside, tmp .. "/x", { symlinks = "inside" })).code)
      local r = assert(zip.verify(outside, { symlinks = "inside", names = "report" }))
      assert.are.equal(err.message, r.unsafe)
      r = assert(zip.verify(inside, { names = "report" }))
      assert.are.equal("entry 'data/alias.txt' is a symlink", r.unsafe)
    end)

    it("has no expansion limit unless given one, counted on the bytes read so far as the extractor does", function()
      local bomb = corpus() .. "/bomb_default_ratio.zip"
      assert.are.equal(64 << 20, assert(zip.verify(bomb)).bytes)
      local ok, err = zip.verify(bomb, { max_ratio = 1000 })
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", "extracting 'z0.bin' expands the archive more than 1000 times" },
        { err.code, err.message })
      -- 8 MiB of zeros first, then incompressible bytes: over 500 times what was read up
      -- to the zeros, under 500 times the whole archive
      spit(tmp .. "/noise.bin", noise(100000))
      local code, out = python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("a-zeros.bin", bytes(8 << 20), compress_type=zipfile.ZIP_DEFLATED)
    z.write(sys.argv[2], "b-noise.bin")
]], tmp .. "/front.zip", tmp .. "/noise.bin")
      assert.are.equal(0, code, out)
      assert(zip.extract(tmp .. "/front.zip", tmp .. "/whole", { max_ratio = 500 }))
      local data = slurp(tmp .. "/front.zip")
      local ex = assert(zip.extractor(tmp .. "/streamed", { max_ratio = 500 }))
      local _, xerr = ex:write(data)
      ex:abort()
      assert.are.equal("UNSAFE_ARCHIVE", xerr.code)
      ok, err = zip.verify(tmp .. "/front.zip", { max_ratio = 500 })
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", "extracting 'a-zeros.bin' expands the archive more than 500 times" },
        { err.code, err.message })
    end)

    it("refuses a total over max_size", function()
      local path = pyzip("big.zip", { { "a.bin", ("x"):rep(5000) } })
      assert(zip.verify(path, { max_size = 5000 }))
      local ok, err = zip.verify(path, { max_size = 4999 })
      assert.is_nil(ok)
      assert.are.equal("UNSAFE_ARCHIVE", err.code)
    end)

    it("with stream = true refuses what only the extractor, reading front to back, refuses", function()
      local dir = corpus()
      local cases = cjson.decode(slurp(dir .. "/stream_manifest.json"))
      assert.is_true(#cases >= 5)
      for _, c in ipairs(cases) do
        assert(zip.extract(c.file, tmp .. "/" .. c.name), c.name)
        assert(zip.verify(c.file), c.name)
        local ok, err = zip.verify(c.file, { stream = true })
        assert.is_nil(ok, c.name .. " passed")
        assert.are.equal(c.code, err.code, c.name .. ": " .. tostring(err))
        local ex = assert(zip.extractor(tmp .. "/s-" .. c.name))
        local wrote, xerr = ex:write(slurp(c.file))
        if wrote then wrote, xerr = ex:finish() end
        ex:abort()
        assert.is_nil(wrote, c.name .. " was extracted")
        assert.are.equal(c.code, xerr.code, c.name)
      end
      -- archives from common writers pass, also with sizes after the data; a stored entry
      -- whose size follows its data is extracted from the file, so only the file's rules apply
      spit(tmp .. "/t.txt", text(200000))
      assert(zip.create(tmp .. "/ours.zip", { tmp .. "/t.txt" }))
      assert.are.equal(0, (sh("cd " .. q(tmp) .. " && zip -q izip.zip t.txt && zip -q - t.txt > pipe.zip")))
      assert.are.equal(0, (python(PY_UNSEEKABLE, tmp .. "/desc.zip", "deflate")))
      assert.are.equal(0, (python(PY_UNSEEKABLE, tmp .. "/desc0.zip", "store")))
      for _, name in ipairs({ "ours.zip", "izip.zip", "pipe.zip", "desc.zip", "desc0.zip" }) do
        assert(zip.verify(tmp .. "/" .. name, as_extraction()), name)
      end
      spit(tmp .. "/desc0-tail.zip", slurp(tmp .. "/desc0.zip") .. "tail")
      assert(zip.verify(tmp .. "/desc0-tail.zip", { stream = true }))
    end)

    it("raises on bad options", function()
      local path = pyzip("a.zip", { { "a.txt", "a" } })
      assert.has_error(function() zip.verify(path, { names = "ignore" }) end,
        'bad option names (expected "refuse" or "report")')
      assert.has_error(function() zip.verify(path, { symlinks = "all" }) end)
      assert.has_error(function() zip.verify(path, { max_ratio = -1 }) end)
    end)
  end)

  describe("names", function()
    -- zip.list's refusal, then the message of zip.verify, zip.extract and zip.extractor
    local function every_reading(file)
      local listed = {}
      for _, e in ipairs(assert(zip.list(file))) do
        if e.unsafe_name then listed[#listed + 1] = e.unsafe_name end
      end
      local _, verr = zip.verify(file, { max_ratio = 1000, stream = true })
      local _, xerr = zip.extract(file, tmp .. "/x")
      local ex = assert(zip.extractor(tmp .. "/s"))
      local ok, serr = ex:write(assert(slurp(file)))
      if ok then ok, serr = ex:finish() end
      assert.is_nil(ok, file)
      ex:abort()
      assert.is_nil(fs.lstat(tmp .. "/x"))
      assert.is_nil(fs.lstat(tmp .. "/s"))
      return listed[1], verr.message, xerr.message, serr.message
    end

    it("refuses what is unsafe once read, with one message from verify, extract and the extractor", function()
      local dir = tmp .. "/corpus"
      assert.are.equal(0, (sh("python3 " .. q(SOURCE .. "/tests/zip/make_hostile.py") .. " " .. q(dir))))
      for name, want in pairs({
        dot_then_dotdot = { "'..' component in name", "entry './../sentinel.txt': '..' component in name" },
        dot_last = { "'.' component in name", "entry 'a/.': '.' component in name" },
        dot_drive_letter = { "drive letter in name", "entry './C:/sentinel.txt': drive letter in name" },
        dot_duplicate = { nil, "entry 'a.txt' appears twice" },
        root_twice = { nil, "entry './' appears twice" },
        root_with_data = { nil, "directory entry './' is malformed or has data" },
        dos_dotdot = { "'..' component in name", "entry '.\\..\\sentinel.txt': '..' component in name" },
        dos_absolute = { "absolute name", "entry '\\tmp\\skafos-hostile-abs': absolute name" },
        dos_unc = { "absolute name", "entry '\\\\server\\share\\sentinel.txt': absolute name" },
        dos_drive_letter = { "drive letter in name", "entry 'C:\\sentinel.txt': drive letter in name" },
        dos_duplicate = { nil, "entry 'a/b.txt' appears twice" },
        backslash_unix = { "backslash in name", "entry 'a\\b.txt': backslash in name" },
        backslash_dotdot_unix = { "backslash in name", "entry '.\\..\\sentinel.txt': backslash in name" },
        cp437_duplicate = { nil, "entry 'caf\u{e9}.txt' appears twice" },
        cp437_case_duplicate = { nil, "entries 'README\u{e9}' and 'readme\u{e9}' differ only by case" },
        utf8_flag_invalid = { "name marked as UTF-8 is not valid UTF-8",
          "entry 'caf\\x82.txt': name marked as UTF-8 is not valid UTF-8" },
      }) do
        local listed, v, x, st = every_reading(dir .. "/" .. name .. ".zip")
        assert.are.same({ want[1], want[2], want[2], want[2] }, { listed, v, x, st }, name)
      end
    end)

    it("drops './', reads DOS separators and CP437 names, and writes UTF-8 names", function()
      local code, out = python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("./", b"")
    z.writestr("./a.txt", b"a")
    z.writestr("./d/./b.txt", b"b")
    for name, data in (("w\\", b""), ("w\\x.txt", b"x"), (".\\w\\y.txt", b"y")):
        i = zipfile.ZipInfo(name); i.create_system = 0; i.external_attr = 0x10 if not data else 0
        z.writestr(i, data)
    # a name without the UTF-8 flag that is not UTF-8: CP437
    i = zipfile.ZipInfo("caf?.txt"); i.create_system = 3
    z.writestr(i, b"c")
data = open(sys.argv[1], "rb").read().replace(b"caf?.txt", b"caf\x82.txt")
open(sys.argv[1], "wb").write(data)
]], tmp .. "/other.zip")
      assert.are.equal(0, code, out)
      local listed = {}
      for _, e in ipairs(assert(zip.list(tmp .. "/other.zip"))) do
        listed[#listed + 1] = { e.name, e.stored_name or false, e.dir }
      end
      assert.are.same({
        { "", "./", true }, { "a.txt", "./a.txt", false }, { "d/b.txt", "./d/./b.txt", false },
        { "w/", "w\\", true }, { "w/x.txt", "w\\x.txt", false }, { "w/y.txt", ".\\w\\y.txt", false },
        { "caf\u{e9}.txt", "caf\x82.txt", false },
      }, listed)
      assert.are.same({ entries = 7, bytes = 5 }, assert(zip.verify(tmp .. "/other.zip", { stream = true })))
      local want = { "a.txt", "caf\u{e9}.txt", "d", "w" }
      assert(zip.extract(tmp .. "/other.zip", tmp .. "/x"))
      local ex = assert(zip.extractor(tmp .. "/s"))
      assert(ex:write(assert(slurp(tmp .. "/other.zip"))))
      assert.are.same({ entries = 7, bytes = 5 }, assert(ex:finish()))
      for _, root in ipairs({ tmp .. "/x", tmp .. "/s" }) do
        local top = fs.dir(root)
        table.sort(top)
        assert.are.same(want, top, root)
        assert.are.same({ "a", "b", "x", "y", "c" }, { slurp(root .. "/a.txt"), slurp(root .. "/d/b.txt"),
          slurp(root .. "/w/x.txt"), slurp(root .. "/w/y.txt"), slurp(root .. "/caf\u{e9}.txt") })
      end
    end)
  end)

  describe("extract", function()
    it("refuses every hostile archive with the right code, touching nothing outside", function()
      local corpus = tmp .. "/corpus"
      local code, out = sh("python3 " .. q(SOURCE .. "/tests/zip/make_hostile.py") .. " " .. q(corpus))
      assert.are.equal(0, code, out)
      local cases = cjson.decode(slurp(corpus .. "/manifest.json"))
      assert.is_true(#cases >= 25)
      for _, c in ipairs(cases) do
        local root = tmp .. "/" .. c.name
        assert(fs.mkdir(root))
        spit(root .. "/sentinel.txt", "sentinel")
        local ok, err = zip.extract(c.file, root .. "/target", c.opts)
        assert.is_nil(ok, c.name .. " was extracted")
        assert.are.equal(c.code, err.code, c.name .. ": " .. tostring(err))
        assert.are.equal("sentinel", slurp(root .. "/sentinel.txt"), c.name)
        assert.are.same({ "sentinel.txt" }, fs.dir(root), c.name)
      end
      assert.is_nil(slurp("/tmp/skafos-hostile-abs"))
    end)

    it("extracts symlinks that stay inside when asked to", function()
      local out = tmp .. "/l.zip"
      python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("data/real.txt", "real")
    i = zipfile.ZipInfo("data/alias.txt"); i.create_system = 3; i.external_attr = 0o120777 << 16
    z.writestr(i, "real.txt")
]], out)
      local ok, err = zip.extract(out, tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("UNSAFE_ARCHIVE", err.code)
      assert(zip.extract(out, tmp .. "/x", { symlinks = "inside" }))
      assert.are.equal("link", fs.lstat(tmp .. "/x/data/alias.txt").type)
      assert.are.equal("real", slurp(tmp .. "/x/data/alias.txt"))
    end)

    it("keeps a non-empty target unless forced, and replaces it whole when forced", function()
      spit(tmp .. "/a.txt", "new")
      assert(zip.create(tmp .. "/a.zip", { tmp .. "/a.txt" }))
      assert(fs.mkdir(tmp .. "/t"))
      spit(tmp .. "/t/old.txt", "old")
      local ok, err = zip.extract(tmp .. "/a.zip", tmp .. "/t")
      assert.is_nil(ok)
      assert.are.equal("EXISTS", err.code)
      assert.are.equal("old", slurp(tmp .. "/t/old.txt"))
      assert(zip.extract(tmp .. "/a.zip", tmp .. "/t", { force = true }))
      assert.are.same({ "a.txt" }, fs.dir(tmp .. "/t"))
      local names = fs.dir(tmp)
      table.sort(names)
      assert.are.same({ "a.txt", "a.zip", "t" }, names)
    end)

    it("creates missing parents and removes them again on failure", function()
      local corpus = tmp .. "/c"
      assert.are.equal(0, (sh("python3 " .. q(SOURCE .. "/tests/zip/make_hostile.py") .. " " .. q(corpus))))
      local ok = zip.extract(corpus .. "/crc_mismatch.zip", tmp .. "/p/q/target")
      assert.is_nil(ok)
      assert.is_nil(fs.stat(tmp .. "/p"))
      spit(tmp .. "/a.txt", "a")
      assert(zip.create(tmp .. "/a.zip", { tmp .. "/a.txt" }))
      assert(zip.extract(tmp .. "/a.zip", tmp .. "/p/q/target"))
      assert.are.equal("a", slurp(tmp .. "/p/q/target/a.txt"))
    end)
  end)

  describe("extractor", function()
    -- Feeds a file to a new extractor in chunks of random sizes; returns finish()'s
    -- results, or nil, err from the first failing write.
    local function stream(file, dir, opts, max_chunk)
      local data = assert(slurp(file))
      local ex, err = zip.extractor(dir, opts)
      if not ex then return nil, err end
      local i = 1
      while i <= #data do
        local n = math.random(1, max_chunk or 300000)
        local ok, werr = ex:write(data:sub(i, i + n - 1))
        if not ok then
          ex:abort()
          return nil, werr
        end
        i = i + n
      end
      return ex:finish()
    end

    it("round-trips archives from our writer, Info-ZIP and Python fed in random chunks", function()
      math.randomseed(42)
      local d = tree()
      assert(zip.create(tmp .. "/ours.zip", { d }))
      assert(zip.create(tmp .. "/stored.zip", { d }, { level = "store" }))
      local code, out = sh("cd " .. q(tmp) .. " && zip -q -r izip.zip model.mlpackage")
      assert.are.equal(0, code, out)
      code, out = python([[
import os, sys, zipfile
os.chdir(sys.argv[2])
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("model.mlpackage"):
        for n in sorted(dirs + files):
            z.write(os.path.join(root, n))
]], tmp .. "/py.zip", tmp)
      assert.are.equal(0, code, out)
      for _, name in ipairs({ "ours.zip", "stored.zip", "izip.zip", "py.zip" }) do
        for round = 1, 3 do
          local target = ("%s/x-%s-%d"):format(tmp, name, round)
          local r = assert(stream(tmp .. "/" .. name, target, nil, round == 1 and 7 or nil))
          assert.are.equal(#assert(zip.list(tmp .. "/" .. name)), r.entries, name)
          code, out = sh("diff -r " .. q(d) .. " " .. q(target .. "/model.mlpackage"))
          assert.are.equal(0, code, name .. ": " .. out)
          assert.are.equal("file", fs.stat(target .. "/model.mlpackage/run.sh").type)
          assert.are_not.equal(0, fs.stat(target .. "/model.mlpackage/run.sh").mode & tonumber("100", 8), name)
        end
      end
      -- deflated entries whose sizes follow their data stream too
      assert.are.equal(0, (python(PY_UNSEEKABLE, tmp .. "/desc.zip", "deflate")))
      local r = assert(stream(tmp .. "/desc.zip", tmp .. "/desc"))
      assert.are.same({ 2, 40240 }, { r.entries, r.bytes })
      assert.are.equal(("hello "):rep(5000), slurp(tmp .. "/desc/a/b.txt"))
    end)

    it("refuses every hostile archive as zip.extract does, leaving no staging directory", function()
      math.randomseed(7)
      local corpus = tmp .. "/corpus"
      local code, out = sh("python3 " .. q(SOURCE .. "/tests/zip/make_hostile.py") .. " " .. q(corpus))
      assert.are.equal(0, code, out)
      local cases = cjson.decode(slurp(corpus .. "/manifest.json"))
      assert.is_true(#cases >= 25)
      for _, c in ipairs(cases) do
        for _, chunk in ipairs({ 1, 64, 1 << 20 }) do
          local root = ("%s/%s-%d"):format(tmp, c.name, chunk)
          assert(fs.mkdir(root))
          spit(root .. "/sentinel.txt", "sentinel")
          local data = slurp(c.file)
          local ex = assert(zip.extractor(root .. "/target", c.opts))
          local ok, err
          for i = 1, #data, chunk do
            ok, err = ex:write(data:sub(i, i + chunk - 1))
            if not ok then break end
          end
          if err == nil then ok, err = ex:finish() end
          assert.is_nil(ok, c.name .. " was extracted")
          assert.are.equal(c.code, err.code, c.name .. ": " .. tostring(err))
          assert.are.equal("sentinel", slurp(root .. "/sentinel.txt"), c.name)
          assert.are.same({ "sentinel.txt" }, fs.dir(root), c.name)
          ex:abort()
        end
      end
      assert.is_nil(slurp("/tmp/skafos-hostile-abs"))
    end)

    it("refuses a central directory that disagrees with the local headers", function()
      spit(tmp .. "/a.txt", "a")
      spit(tmp .. "/b.txt", "b")
      assert(zip.create(tmp .. "/ab.zip", { tmp .. "/a.txt", tmp .. "/b.txt" }))
      local data = slurp(tmp .. "/ab.zip")
      local cd = data:find("PK\1\2", 1, true)
      -- the directory renames b.txt; the local headers still say b.txt
      local renamed = data:sub(1, cd - 1) .. data:sub(cd):gsub("b%.txt", "c.txt")
      spit(tmp .. "/renamed.zip", renamed)
      local ok, err = stream(tmp .. "/renamed.zip", tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("UNSAFE_ARCHIVE", err.code)
      -- another CRC in the directory than in the data
      local at = cd + 16
      local crc = data:sub(at, at + 3)
      spit(tmp .. "/crc.zip", data:sub(1, at - 1) .. string.char((crc:byte(1) + 1) % 256) .. crc:sub(2)
        .. data:sub(at + 4))
      ok, err = stream(tmp .. "/crc.zip", tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("INTEGRITY", err.code)
      -- bytes after the end record
      spit(tmp .. "/trailing.zip", data .. "junk")
      ok, err = stream(tmp .. "/trailing.zip", tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("INTEGRITY", err.code)
      assert.are.same({ "a.txt", "ab.zip", "b.txt", "crc.zip", "renamed.zip", "trailing.zip" },
        (function() local l = fs.dir(tmp); table.sort(l); return l end)())
    end)

    it("says NOT_STREAMABLE for a stored entry whose sizes follow its data", function()
      assert.are.equal(0, (python(PY_UNSEEKABLE, tmp .. "/s.zip", "store")))
      local ok, err = stream(tmp .. "/s.zip", tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("NOT_STREAMABLE", err.code)
      assert.is_nil(fs.lstat(tmp .. "/x"))
      assert(zip.extract(tmp .. "/s.zip", tmp .. "/x"))
      assert.are.equal(("hello "):rep(5000), slurp(tmp .. "/x/a/b.txt"))
    end)

    it("starts over after reset and checks the target before any byte", function()
      spit(tmp .. "/t.txt", text(100000))
      assert(zip.create(tmp .. "/t.zip", { tmp .. "/t.txt" }))
      local data = slurp(tmp .. "/t.zip")
      local ex = assert(zip.extractor(tmp .. "/out"))
      assert(ex:write(data:sub(1, 5000)))
      assert(ex:reset())
      assert(ex:write(data:sub(1, 100)))
      assert(ex:reset())
      assert(ex:write(data))
      assert.are.same({ entries = 1, bytes = 100000 }, assert(ex:finish()))
      assert.are.equal(text(100000), slurp(tmp .. "/out/t.txt"))
      assert.has_error(function() ex:write("x") end)
      local _, err = zip.extractor(tmp .. "/out")
      assert.are.equal("EXISTS", err.code)
      ex = assert(zip.extractor(tmp .. "/out", { force = true }))
      assert(ex:write(data:sub(1, 20)))
      local ok, ferr = ex:finish()
      assert.is_nil(ok)
      assert.are.equal("INTEGRITY", ferr.code)
      assert.are.equal(text(100000), slurp(tmp .. "/out/t.txt"))
      ex = assert(zip.extractor(tmp .. "/out", { force = true }))
      assert(ex:write(data))
      assert(ex:finish())
      -- an abandoned extractor leaves nothing once collected
      do
        local gone <close> = assert(zip.extractor(tmp .. "/p/q/r"))
        assert(gone:write(data:sub(1, 9000)))
      end
      local names = fs.dir(tmp)
      table.sort(names)
      assert.are.same({ "out", "t.txt", "t.zip" }, names)
    end)

    it("sweeps what killed runs left beside the target, but not a live stage", function()
      spit(tmp .. "/t.txt", text(70000))
      assert(zip.create(tmp .. "/t.zip", { tmp .. "/t.txt" }))
      local data = slurp(tmp .. "/t.zip")
      -- a live extractor's stage (made at its first entry) into the same target
      local live = assert(zip.extractor(tmp .. "/out"))
      assert(live:write(data:sub(1, 20000)))
      -- leftovers of runs killed while staging and while moving the old target aside
      spit(tmp .. "/.out.skafos-Ab12Cd/t.txt", "half")
      spit(tmp .. "/.out.skafos-old-Zz9Yy8/old.txt", "old")
      spit(tmp .. "/.out.skafos-partial/journal", "kept for a resume")
      spit(tmp .. "/.other.skafos-Ab12Cd/x", "another target's")
      local function stages()
        local names = {}
        for _, n in ipairs(fs.dir(tmp)) do if n:match("^%.out%.skafos%-") then names[#names + 1] = n end end
        table.sort(names)
        return names
      end
      local before = stages()
      assert.are.equal(4, #before)
      assert(zip.extract(tmp .. "/t.zip", tmp .. "/out"))
      local after = stages()
      -- the live stage (the one name that is neither planted nor the partial) and the partial
      assert.are.equal(2, #after, table.concat(after, " "))
      local live_name = after[1] == ".out.skafos-partial" and after[2] or after[1]
      assert.is_true(after[1] == ".out.skafos-partial" or after[2] == ".out.skafos-partial")
      assert.matches("^%.out%.skafos%-%w%w%w%w%w%w$", live_name)
      assert.is_nil(live_name:match("Ab12Cd"))
      assert.are.equal("another target's", slurp(tmp .. "/.other.skafos-Ab12Cd/x"))
      assert(live:write(data:sub(20001)))
      live:abort()
      assert.are.same({ ".out.skafos-partial" }, stages())
    end)

    describe("resumable", function()
      -- An archive with a stored file in two halves' worth of data, deflated text, an
      -- empty directory and small files; entries in this order (sorted names).
      local data, want
      local function build()
        want = {
          ["a/big.bin"] = noise(300000, 11),
          ["b/card.txt"] = text(200000),
          ["c/one.txt"] = "one",
          ["c/two.txt"] = "",
        }
        for name, bytes in pairs(want) do spit(tmp .. "/in/" .. name, bytes) end
        assert(fs.mkdir(tmp .. "/in/d"))
        assert(zip.create(tmp .. "/r.zip", { tmp .. "/in" }, { level = "auto" }))
        data = slurp(tmp .. "/r.zip")
      end

      local function check_out(out)
        for name, bytes in pairs(want) do
          assert.is_true(slurp(out .. "/in/" .. name) == bytes, name .. " differs")
        end
        assert.are.equal("directory", fs.lstat(out .. "/in/d").type)
      end

      -- Writes data[1..cut] into a fresh resumable extractor and leaves it as a killed
      -- process would.
      local function interrupted(out, cut, etag)
        local ex = assert(zip.extractor(out, { resumable = true }))
        assert.are.same({ 0, "" }, { assert(ex:resume_point()) })
        assert(ex:start(0, etag or '"e1"'))
        local i = 1
        while i <= cut do
          local n = math.min(math.random(1, 70000), cut - i + 1)
          assert(ex:write(data:sub(i, i + n - 1)))
          i = i + n
        end
        ex:close()
      end

      local function resume(out, etag)
        local ex = assert(zip.extractor(out, { resumable = true }))
        local off, tag = assert(ex:resume_point())
        if off > 0 then assert.are.equal(etag or '"e1"', tag) end
        assert(ex:start(off, tag))
        assert(ex:write(data:sub(off + 1)))
        local done = assert(ex:finish())
        return off, done
      end

      before_each(build)

      it("goes on from the last entry or the last stored byte, at any cut", function()
        local list = assert(zip.list(tmp .. "/r.zip"))
        local big, card
        for _, e in ipairs(list) do
          if e.name == "in/a/big.bin" then big = e elseif e.name == "in/b/card.txt" then card = e end
        end
        assert.are.equal("store", big.method)
        assert.are.equal("deflate", card.method)
        -- inside and around every local header, into every entry's data, into the
        -- central directory
        local cuts = { 10, 150000, big.offset + 200, #data - 30, #data - 1 }
        for _, e in ipairs(list) do
          for _, d in ipairs({ 0, 20, 30 + #e.name, 30 + #e.name + 5 }) do cuts[#cuts + 1] = e.offset + d end
        end
        for k, cut in ipairs(cuts) do
          local out = ("%s/o%d"):format(tmp, k)
          interrupted(out, cut)
          assert.is_nil(fs.lstat(out), "the target appears only when complete")
          -- kept once the first entry's header ("in/", 33 bytes) has arrived
          local kept = fs.lstat(("%s/.o%d.skafos-partial"):format(tmp, k))
          assert.are.equal(cut >= 33 and "directory" or nil, kept and kept.type)
          local off, done = resume(out)
          assert.is_true(off <= cut, "resumed after the bytes it had")
          assert.are.equal(9, done.entries)
          check_out(out)
          assert.is_nil(fs.lstat(("%s/.o%d.skafos-partial"):format(tmp, k)), "partial left behind")
        end
      end)

      it("continues a stored entry at its last byte and restarts a deflated one", function()
        local list = assert(zip.list(tmp .. "/r.zip"))
        local big_data, card_off
        for _, e in ipairs(list) do
          if e.name == "in/a/big.bin" then big_data = e.offset + 30 + #e.name end
          if e.name == "in/b/card.txt" then card_off = e.offset end
        end
        interrupted(tmp .. "/s", big_data + 123456)
        local ex = assert(zip.extractor(tmp .. "/s", { resumable = true }))
        assert.are.equal(big_data + 123456, (ex:resume_point()))
        ex:close()
        interrupted(tmp .. "/t", card_off + 5000)
        ex = assert(zip.extractor(tmp .. "/t", { resumable = true }))
        assert.are.equal(card_off, (ex:resume_point()))
        ex:close()
        assert.are.equal(big_data + 123456, (resume(tmp .. "/s")))
        check_out(tmp .. "/s")
      end)

      it("checks what it kept: a changed file or a torn journal moves the resume point back", function()
        local list = assert(zip.list(tmp .. "/r.zip"))
        local card_off, one_off
        for _, e in ipairs(list) do
          if e.name == "in/b/card.txt" then card_off = e.offset end
          if e.name == "in/c/one.txt" then one_off = e.offset end
        end
        interrupted(tmp .. "/u", one_off + 2)
        local pdir = tmp .. "/.u.skafos-partial"
        -- a byte of a finished file changes behind our back
        local f = assert(io.open(pdir .. "/tree/in/b/card.txt", "r+b"))
        f:seek("set", 1000)
        f:write("#")
        f:close()
        local ex = assert(zip.extractor(tmp .. "/u", { resumable = true }))
        assert.are.equal(card_off, (ex:resume_point()))
        ex:close()
        -- garbage after the last record is ignored
        f = assert(io.open(pdir .. "/journal", "ab"))
        f:write("B\255\255\255\127garbage")
        f:close()
        assert.are.equal(card_off, (resume(tmp .. "/u")))
        check_out(tmp .. "/u")
        -- a journal that is not one starts over
        interrupted(tmp .. "/v", one_off + 2)
        spit(tmp .. "/.v.skafos-partial/journal", "not a journal")
        assert.are.equal(0, (resume(tmp .. "/v")))
        check_out(tmp .. "/v")
      end)

      it("starts over for another object, is locked against a second extractor, and abort removes it", function()
        interrupted(tmp .. "/w", 200000)
        local ex = assert(zip.extractor(tmp .. "/w", { resumable = true }))
        local _, err = zip.extractor(tmp .. "/w", { resumable = true })
        assert.are.equal("BUSY", err.code)
        assert.matches("another skafos is extracting", err.message)
        local off = assert(ex:resume_point())
        assert.is_true(off > 0)
        assert(ex:start(0, '"e2"')) -- the object changed: a whole new body follows
        assert.are.equal("file", fs.lstat(tmp .. "/.w.skafos-partial/journal").type)
        assert.is_nil(fs.lstat(tmp .. "/.w.skafos-partial/tree"))
        assert(ex:write(data:sub(1, 100000)))
        ex:abort()
        assert.is_nil(fs.lstat(tmp .. "/.w.skafos-partial"))
        assert.is_nil(fs.lstat(tmp .. "/w"))
        -- a refused archive leaves nothing either
        interrupted(tmp .. "/x", 200000)
        ex = assert(zip.extractor(tmp .. "/x", { resumable = true }))
        off = assert(ex:resume_point())
        assert(ex:start(off, '"e1"'))
        local ok, werr = ex:write(("\0"):rep(100) .. data:sub(off + 101))
        if ok then ok, werr = ex:finish() end
        assert.is_nil(ok)
        assert.are.equal("INTEGRITY", werr.code)
        ex:close()
        assert.is_nil(fs.lstat(tmp .. "/.x.skafos-partial"))
        -- an extractor that got nothing keeps nothing
        ex = assert(zip.extractor(tmp .. "/y", { resumable = true }))
        assert(ex:start(0, '"e1"'))
        ex:close()
        assert.is_nil(fs.lstat(tmp .. "/.y.skafos-partial"))
        local names = fs.dir(tmp)
        table.sort(names)
        assert.are.same({ "in", "r.zip" }, names)
      end)
    end)

    it("makes symlinks that stay inside when asked to", function()
      local out = tmp .. "/l.zip"
      python([[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("data/real.txt", "real")
    i = zipfile.ZipInfo("data/alias.txt"); i.create_system = 3; i.external_attr = 0o120777 << 16
    z.writestr(i, "real.txt")
]], out)
      local ok, err = stream(out, tmp .. "/x")
      assert.is_nil(ok)
      assert.are.equal("UNSAFE_ARCHIVE", err.code)
      assert(stream(out, tmp .. "/x", { symlinks = "inside" }))
      assert.are.equal("link", fs.lstat(tmp .. "/x/data/alias.txt").type)
      assert.are.equal("real", slurp(tmp .. "/x/data/alias.txt"))
    end)
  end)

  describe("zip64", function()
    it("writes more than 65,535 entries readable by unzip, zipfile and us", function()
      spit(tmp .. "/one", "1")
      local n = 65600
      do
        local w <close> = assert(zip.writer(tmp .. "/many.zip"))
        for i = 1, n do assert(w:add(tmp .. "/one", ("f/%05d"):format(i))) end
      end
      assert.are.equal(n, #assert(zip.list(tmp .. "/many.zip")))
      local code, out = sh("unzip -tqq " .. q(tmp .. "/many.zip"))
      assert.are.equal(0, code, out)
      local _, count = python("import sys,zipfile; print(len(zipfile.ZipFile(sys.argv[1]).infolist()))",
        tmp .. "/many.zip")
      assert.are.equal(tostring(n) .. "\n", count)
      -- read front to back: zip64 end records and a directory larger than any one write
      local data = slurp(tmp .. "/many.zip")
      local ex = assert(zip.extractor(tmp .. "/many"))
      for i = 1, #data, 1 << 20 do assert(ex:write(data:sub(i, i + (1 << 20) - 1))) end
      assert.are.same({ entries = n, bytes = n }, assert(ex:finish()))
      assert.are.equal("1", slurp(tmp .. "/many/f/65600"))
    end)

    it("writes an entry over 4 GiB from a sparse file", function()
      local big = tmp .. "/sparse.bin"
      assert.are.equal(0, (sh("truncate -s 4300M " .. q(big) .. " && printf end >> " .. q(big))))
      local s = assert(zip.create(tmp .. "/big.zip", { big }, { level = 1 }))
      assert.are.equal(4300 * 1024 * 1024 + 3, s.bytes_in)
      local l = assert(zip.list(tmp .. "/big.zip"))
      assert.are.equal(4300 * 1024 * 1024 + 3, l[1].size)
      local code, out = python([[
import sys, zipfile, zlib
with zipfile.ZipFile(sys.argv[1]) as z:
    i = z.infolist()[0]
    crc = 0
    with z.open(i) as f:
        while True:
            b = f.read(1 << 22)
            if not b: break
            crc = zlib.crc32(b, crc)
    assert crc == i.CRC, (crc, i.CRC)
    print(i.file_size)
]], tmp .. "/big.zip")
      assert.are.equal(0, code, out)
      assert.are.equal(tostring(4300 * 1024 * 1024 + 3) .. "\n", out)
      assert.are.equal(0, (sh("unzip -tqq " .. q(tmp .. "/big.zip"))))
    end)
  end)
end)
