-- The compatibility matrix of skafos.zip with the real tools (Debian's zip, unzip,
-- p7zip-full, libarchive-tools and python3), both ways: archives Info-ZIP, 7z, bsdtar and
-- Python's zipfile make (also with Windows backslashes and CP437 names) read by zip.list,
-- zip.verify, zip.extract and the streaming zip.extractor; and archives skafos makes at
-- every level, tested and extracted by unzip, zipfile, bsdtar and 7z. Every extraction is
-- compared with the tree that was packed, file by file: names, types and bytes.
local zip = require("skafos.zip")
local proc = require("proc")
local trees = require("trees")
local fs = require("skafos.fs")
local cjson = require("cjson")

local SOURCE = os.getenv("SKAFOS_SOURCE_DIR") or "."
local q = proc.quote

-- The tools run in a UTF-8 locale, as a user's would.
local function sh(cmd)
  local p = assert(io.popen("LC_ALL=C.UTF-8 " .. cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local same_tree, snapshot = trees.assert_same, trees.snapshot

-- What `publish` checks a zip sent as it is with (lua/skafos/publish.lua).
local AS_IS = require("skafos.publish").AS_IS_CHECKS

describe("compatibility", function()
  local tmp

  before_each(function()
    tmp = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/compat_spec."))
  end)

  after_each(function()
    if tmp then fs.rmtree(tmp) end
  end)

  describe("archives other tools make", function()
    local corpus, cases

    setup(function()
      corpus = assert(fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/compat_corpus."))
      local code, out = sh("python3 " .. q(SOURCE .. "/tests/zip/make_compat.py") .. " " .. q(corpus))
      assert(code == 0, out)
      cases = {}
      for _, c in ipairs(cjson.decode((assert(proc.read(corpus .. "/manifest.json"))))) do cases[c.name] = c end
    end)

    teardown(function()
      if corpus then fs.rmtree(corpus) end
    end)

    -- stored entries whose sizes follow their data cannot be read front to back: the
    -- extractor says so and fetch downloads such an archive before extracting it
    local NOT_STREAMABLE = { ["bsdtar-store"] = true, ["python-zip64-descriptors"] = true }
    local NAMES = { "infozip-store", "infozip-deflate", "7z-store", "7z-deflate", "bsdtar-store",
      "bsdtar-deflate", "python-zip64-descriptors", "windows-backslashes", "infozip-cp437", "7z-cp437" }

    it("has every case of the matrix", function()
      local names = {}
      for name in pairs(cases) do names[#names + 1] = name end
      table.sort(names)
      local want = { table.unpack(NAMES) }
      table.sort(want)
      assert.are.same(want, names)
    end)

    for _, name in ipairs(NAMES) do
      it(name .. ": listed, verified and extracted (also front to back) as the tool packed it", function()
        local c = assert(cases[name], name)
        local wanted = snapshot(c.expect)
        local known = {}
        for _, p in ipairs(wanted) do known[p] = true end
        -- listed under the names extraction uses, none refused
        local listing = assert(zip.list(c.file))
        for _, e in ipairs(listing) do
          assert.is_nil(e.unsafe_name, name .. ": " .. (e.stored_name or e.name))
          if e.name ~= "" then
            assert.is_true(known[e.name] or false, name .. ": listed as '" .. e.name .. "'")
          else
            assert.are.equal("./", e.stored_name, name) -- the root, as bsdtar stores it
          end
        end
        -- what publish checks an archive sent as it is with
        local v = assert(zip.verify(c.file, AS_IS))
        assert.are.equal(#listing, v.entries, name)
        local x = assert(zip.extract(c.file, tmp .. "/x"))
        assert.are.equal(#listing, x.entries, name)
        same_tree(c.expect, tmp .. "/x", name .. " (zip.extract)")
        -- the streaming extractor, fed in chunks of every size
        local data = assert(proc.read(c.file))
        for _, chunk in ipairs({ 7, 65537, 1 << 20 }) do
          local target = ("%s/s%d"):format(tmp, chunk)
          local ex = assert(zip.extractor(target))
          local ok, err
          for i = 1, #data, chunk do
            ok, err = ex:write(data:sub(i, i + chunk - 1))
            if not ok then break end
          end
          if ok then ok, err = ex:finish() end
          if NOT_STREAMABLE[name] then
            assert.is_nil(ok, name)
            assert.are.equal("NOT_STREAMABLE", err.code, name .. ": " .. tostring(err))
            ex:abort()
          else
            assert.is_truthy(ok, name .. ": " .. tostring(err))
            same_tree(c.expect, target, ("%s (zip.extractor, chunks of %d)"):format(name, chunk))
          end
        end
      end)
    end

    it("reads './' as nothing, Windows separators only from Windows, CP437 by the book", function()
      -- name read -> name stored (false when the same)
      local function names_of(file)
        local out = {}
        for _, e in ipairs(assert(zip.list(file))) do out[e.name] = e.stored_name or false end
        return out
      end
      local bsd = names_of(cases["bsdtar-deflate"].file)
      assert.are.same({ "./", "./Manifest.json", "./deep/a/b/" },
        { bsd[""], bsd["Manifest.json"], bsd["deep/a/b/"] })
      local win = names_of(cases["windows-backslashes"].file)
      assert.are.same({ "Model\\", "Model\\Data\\weights.bin", ".\\Model\\labels.txt" },
        { win["Model/"], win["Model/Data/weights.bin"], win["Model/labels.txt"] })
      local cp = names_of(cases["infozip-cp437"].file)
      assert.are.same({ "caf\x82.txt", "Donn\x82es/Stra\xe1e/" },
        { cp["caf\u{e9}.txt"], cp["Donn\u{e9}es/Stra\u{df}e/"] })
      -- UTF-8 without the flag, as Info-ZIP writes on Linux and macOS writes, stays UTF-8
      assert.is_false(names_of(cases["infozip-store"].file)["caf\u{e9}.txt"])
    end)

    it("refuses a backslash from an archive not made on Windows, and says so streaming too", function()
      -- the Windows archive with its "version made by" set to Unix, byte for byte otherwise
      local data = assert(proc.read(cases["windows-backslashes"].file))
      local unix = data:gsub("PK\1\2(.)(.)", function(ver, host)
        assert(host == "\0" or host == "\10" or host == "\14")
        return "PK\1\2" .. ver .. "\3"
      end)
      proc.write(tmp .. "/unix.zip", unix)
      local want = "entry 'Model\\': backslash in name"
      local ok, err = zip.extract(tmp .. "/unix.zip", tmp .. "/x")
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", want }, { err.code, err.message })
      ok, err = zip.verify(tmp .. "/unix.zip", AS_IS)
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", want }, { err.code, err.message })
      local ex = assert(zip.extractor(tmp .. "/s"))
      assert(ex:write(unix))
      ok, err = ex:finish()
      assert.is_nil(ok)
      assert.are.same({ "UNSAFE_ARCHIVE", want }, { err.code, err.message })
      assert.is_nil(fs.lstat(tmp .. "/s"))
      assert.are.same({ "unix.zip" }, fs.dir(tmp))
    end)

    it("decodes all 128 high CP437 bytes as Python does, and takes a valid UTF-8 name as UTF-8", function()
      local code, out = sh("python3 -c " .. q([[
import struct, sys, zipfile
names = [b"x%c" % c for c in range(0x80, 0x100)] + [b"caf\xc3\xa9", b"\xc0\xaf", b"\xed\xa0\x80"]
with open(sys.argv[1], "wb") as f:
    cd = b""
    for n in names:
        off = f.tell()
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 10, 0, 0, 0, 0x21, 0, 0, 0, len(n), 0) + n)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 10, 0, 0, 0, 0x21, 0, 0, 0,
                          len(n), 0, 0, 0, 0, 0o100644 << 16, off) + n
    at = f.tell()
    f.write(cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(names), len(names), len(cd), at, 0))
for i in zipfile.ZipFile(sys.argv[1]).infolist():
    print(i.filename)
]]) .. " " .. q(tmp .. "/names.zip"))
      assert.are.equal(0, code, out)
      local python = {}
      for line in out:gmatch("[^\n]+") do python[#python + 1] = line end
      local ours = {}
      for i, e in ipairs(assert(zip.list(tmp .. "/names.zip"))) do ours[i] = e.name end
      -- Python reads every name without the flag as CP437: the same for the first 128;
      -- valid UTF-8 stays UTF-8; an overlong '/' and a surrogate are no UTF-8 at all
      assert.are.same({ table.unpack(python, 1, 128) }, { table.unpack(ours, 1, 128) })
      assert.are.same({ "caf\u{e9}", "\u{2514}\u{bb}", "\u{3c6}\u{e1}\u{c7}" }, { table.unpack(ours, 129) })
      local x = assert(zip.extract(tmp .. "/names.zip", tmp .. "/x"))
      assert.are.equal(131, x.entries)
      assert.are.equal("", proc.read(tmp .. "/x/caf\u{e9}"))
      assert.are.equal("", proc.read(tmp .. "/x/x\u{e9}"))
    end)
  end)

  describe("archives skafos makes", function()
    -- the model tree: nested and empty directories, an empty file, non-ASCII names, data
    -- that compresses and data that does not
    local function model(root)
      local x, noise, bytes = 19, {}, {}
      for i = 1, 75000 do
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xffffffffffffffff
        noise[i] = string.pack("<I4", (x >> 29) & 0xffffffff)
      end
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      for rel, data in pairs({
        ["Manifest.json"] = '{"fileFormatVersion": "1.0.0"}\n',
        ["Data/weights/weight.bin"] = table.concat(noise),
        ["Data/model.mlmodel"] = ("layer { name: 'dense' }\n"):rep(8000),
        ["empty.txt"] = "",
        ["deep/a/b/c/leaf.txt"] = "leaf\n",
        ["caf\u{e9}.txt"] = "caf\u{e9} cr\u{e8}me\n",
        ["donn\u{e9}es/\u{fc}ber/\u{6a21}\u{578b}.bin"] = table.concat(bytes):rep(40),
      }) do
        proc.write(root .. "/" .. rel, data)
      end
      assert(fs.mkdir(root .. "/empty_dir"))
      assert(fs.mkdir(root .. "/deep/a/b/empty"))
      return root
    end

    -- each tool tests the archive, then extracts it into a directory of its own
    local TOOLS = {
      { "unzip", function(a) return "unzip -tqq " .. q(a) end,
        function(a, d) return "unzip -qq " .. q(a) .. " -d " .. q(d) end },
      { "python zipfile", function(a)
          return "python3 -c 'import sys, zipfile; assert zipfile.ZipFile(sys.argv[1]).testzip() is None' " .. q(a)
        end,
        function(a, d)
          return "python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "
            .. q(a) .. " " .. q(d)
        end },
      { "bsdtar", function(a) return "bsdtar -xOf " .. q(a) .. " >/dev/null" end,
        function(a, d) return "mkdir " .. q(d) .. " && bsdtar -xf " .. q(a) .. " -C " .. q(d) end },
      { "7z", function(a) return "7z t -bso0 -bsp0 " .. q(a) end,
        function(a, d) return "7z x -bso0 -bsp0 -y -o" .. q(d) .. " " .. q(a) end },
    }

    local function by_every_tool(archive, want, what)
      for i, t in ipairs(TOOLS) do
        local code, out = sh(t[2](archive))
        assert.are.equal(0, code, ("%s: %s test: %s"):format(what, t[1], out))
        local dir = ("%s/by-%d"):format(tmp, i)
        code, out = sh(t[3](archive, dir))
        assert.are.equal(0, code, ("%s: %s extract: %s"):format(what, t[1], out))
        same_tree(want, dir, ("%s, extracted by %s"):format(what, t[1]))
        fs.rmtree(dir)
      end
    end

    local LEVELS = { "store", 1, 2, 3, 4, 5, 6, 7, 8, 9, "auto" }

    for _, level in ipairs(LEVELS) do
      it(("at level %s: tested and extracted by unzip, zipfile, bsdtar and 7z"):format(level), function()
        local src = model(tmp .. "/model")
        local archive = tmp .. "/model.zip"
        local s = assert(zip.create(archive, { { src = src, name = "" } }, { level = level }))
        -- the level was used: stored, or the compressible file deflated (and under auto
        -- the incompressible one stored)
        assert.are.equal(level == "store" and "store" or "deflate", s.methods["Data/model.mlmodel"])
        if level == "auto" then assert.are.equal("store", s.methods["Data/weights/weight.bin"]) end
        by_every_tool(archive, src, "level " .. level)
      end)
    end

    -- 65,600 entries: zip64 end records. Each tool tests the archive, lists its names and
    -- extracts every file to standard output, in archive order: 65,600 files written to
    -- disk take each tool minutes on a busy machine, and would say no more about how it
    -- reads zip64 records. The names are compared with the tool's listing, the bytes with
    -- the files' bytes one after the other (16 sources of different lengths and bytes, so a
    -- file read at another's place or cut short changes the whole).
    local ZIP64_TOOLS = {
      { "unzip", "unzip -tqq %s", "unzip -Z1 %s", "unzip -p %s" },
      { "python zipfile", "python3 -c 'import sys, zipfile; assert zipfile.ZipFile(sys.argv[1]).testzip() is None' %s",
        "python3 -c 'import sys, zipfile; print(*zipfile.ZipFile(sys.argv[1]).namelist(), sep=\"\\n\")' %s",
        "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
          .. "[sys.stdout.buffer.write(z.read(i)) for i in z.infolist()]' %s" },
      { "bsdtar", "bsdtar -xOf %s >/dev/null", "bsdtar -tf %s", "bsdtar -xOf %s" },
      { "7z", "7z t -bso0 -bsp0 %s", "7z l -ba -slt %s | sed -n 's/^Path = //p'", "7z x -so -bsp0 %s" },
    }

    it("with zip64 end records (65,600 entries): tested, listed and extracted by every tool", function()
      local n, names, data, parts = 65600, {}, {}, {}
      for k = 0, 15 do
        data[k] = ("%d\n"):format(k):rep(k)
        proc.write(("%s/src/%02d"):format(tmp, k), data[k])
      end
      local archive = tmp .. "/many.zip"
      do
        local w <close> = assert(zip.writer(archive))
        for i = 1, n do
          names[i] = ("%03d/%05d.txt"):format(i // 256, i)
          parts[i] = data[i % 16]
          assert(w:add(("%s/src/%02d"):format(tmp, i % 16), names[i]))
        end
      end
      assert.truthy(assert(proc.read(archive)):find("PK\6\6", -200, true), "no zip64 end record")
      local listing, bytes = table.concat(names, "\n") .. "\n", table.concat(parts)
      for _, t in ipairs(ZIP64_TOOLS) do
        local code, out = sh(t[2]:format(q(archive)))
        assert.are.equal(0, code, ("zip64: %s test: %s"):format(t[1], out))
        code, out = sh(t[3]:format(q(archive)))
        assert.are.equal(0, code, ("zip64: %s list: %s"):format(t[1], out:sub(1, 2000)))
        assert.is_true(out == listing, ("zip64: %s lists other names: %s"):format(t[1], out:sub(1, 2000)))
        local p = assert(io.popen("LC_ALL=C.UTF-8 " .. t[4]:format(q(archive)) .. " 2>/dev/null"))
        out = p:read("a")
        assert.is_true(p:close(), "zip64: " .. t[1] .. " extraction failed")
        assert.are.equal(#bytes, #out, "zip64: " .. t[1])
        assert.is_true(out == bytes, "zip64: " .. t[1] .. " extracts other bytes")
      end
    end)
  end)
end)
