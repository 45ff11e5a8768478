-- Faults, signals and limits: slow links, deadlines, expiring URLs, signals at several
-- points, leftovers of killed runs, a full disk and answers that lack what the next step
-- needs. Each run for real against the emulator; checked by exit code, message and every
-- file left anywhere (the directory, TMPDIR).
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local q, sh, listing = proc.quote, e2e.sh, e2e.listing

describe("faults", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/tmp") .. " " .. q(dir .. "/work"))
    -- retries without the waits between them: what is tested is what happens, not when
    e2e.fast_retries(dir, 3)
    emu:clear_faults()
    emu:clear_requests()
  end)

  after_each(function()
    os.execute("umount " .. q(dir .. "/work/small") .. " 2>/dev/null")
    cleanup()
  end)

  local function env(e, extra)
    local t = e2e.env(e, dir, { TMPDIR = dir .. "/tmp" })
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  local function skafos(args, extra, e)
    return proc.skafos(args, { cwd = dir .. "/work", env = env(e or emu, extra), unset = e2e.UNSET })
  end

  -- runs skafos in the background and sends `signal` after `after` seconds; returns the
  -- exit code and stderr
  local function signalled(args, signal, after, e)
    return e2e.signalled(env(e or emu), dir .. "/work", args, signal, after)
  end

  local function publish_random(bytes, e, extra_args)
    os.execute(("head -c %d /dev/urandom > %s"):format(bytes, q(dir .. "/work/m.bin")))
    local args = { "publish", "--json", "--level", "store", "m.bin" }
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    local r = skafos(args, nil, e)
    assert.are.equal(0, r.code, r.stderr)
    os.remove(dir .. "/work/m.bin")
    return proc.json(r.stdout)
  end

  describe("deadlines", function()
    it("abandons and retries a transfer slower than --speed-limit, keeping what arrived", function()
      publish_random(300000)
      emu:fault { role = "storage", method = "GET", times = -1,
        action = { type = "trickle", after_bytes = 100000, bytes_per_second = 2 } }
      local r = skafos { "fetch", "-o", "x.zip", "--speed-limit", "1000", "--speed-time", "1" }
      assert.are.equal(6, r.code, r.stderr)
      assert.matches("retrying download", r.stderr)
      assert.matches("x%.zip%.download%.part, [%d.]+ KiB, is kept: run the same command to resume", r.stderr)
      -- the same command, the link healthy again, goes on from there
      emu:clear_faults()
      emu:clear_requests()
      r = skafos { "fetch", "-o", "x.zip" }
      assert.are.equal(0, r.code, r.stderr)
      local gets = emu:requests().storage
      assert.matches("^bytes=%d+%-", gets[#gets].headers["range"])
    end)

    it("gives up the whole command after --timeout, with exit 6, keeping the part file", function()
      publish_random(300000)
      emu:fault { role = "storage", method = "GET", times = -1,
        action = { type = "trickle", after_bytes = 100000, bytes_per_second = 2000 } }
      local r = skafos { "fetch", "-o", "x.zip", "--timeout", "1.5" }
      assert.are.equal(6, r.code, r.stderr)
      assert.matches("gave up: the command ran past its %-%-timeout of 1%.5 s; x%.zip%.download%.part", r.stderr)
      assert.is_not_nil(proc.read(dir .. "/work/x.zip.download.part"))
      assert.is_nil(proc.read(dir .. "/work/x.zip"))
    end)

    it("takes the limits from a config file, and refuses nonsense", function()
      proc.write(dir .. "/xdg/skafos/config.lua", "return { speed_limit = 0 }")
      local r = skafos { "versions" }
      assert.are.equal(2, r.code)
      assert.matches("speed_limit %(user config .*%) must be a whole number, at least 1", r.stderr)
      r = skafos { "fetch", "--timeout", "-1" }
      assert.are.equal(2, r.code)
    end)
  end)

  describe("fresh URLs", function()
    it("asks the download host for a new URL when storage says it expired", function()
      publish_random(300000)
      emu:fault { role = "download", action = { type = "expire_next_url" } }
      local r = skafos { "fetch", "-o", "x.zip" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(2, #emu:requests().download)
      assert.matches("a fresh URL is asked for", r.stderr)
    end)

    it("goes on from the bytes it has when the URL expires in the middle", function()
      local short <close> = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json", url_ttl = 1 }
      publish_random(400000, short)
      -- the first GET breaks off after 3000 bytes; the retry, 2 s later, finds the URL
      -- (valid for 1 s) expired, and a fresh one goes on from byte 3000
      short:fault { role = "storage", method = "GET", action = { type = "truncate", after_bytes = 3000 } }
      proc.write(dir .. "/xdg/skafos/config.lua",
        "return { retry = function(err, attempt) if err.retryable and attempt < 4 then return 2 end end }")
      local r = skafos({ "fetch", "-o", "x.zip" }, nil, short)
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("a fresh URL is asked for", r.stderr)
      local gets = short:requests().storage
      local last = gets[#gets]
      assert.matches("^bytes=3000%-", tostring(last.headers["range"]),
        require("cjson").encode(gets) .. "\n" .. r.stderr)
      assert.are.equal(2, #short:requests().download)
    end)

    it("leaves no part file when no request ever delivered a byte", function()
      publish_random(100000)
      emu:fault { role = "download", times = -1, action = { type = "expire_next_url" } }
      local r = skafos { "fetch", "-o", "x.zip" }
      assert.are.equal(6, r.code, r.stderr)
      assert.matches("expired", r.stderr)
      assert.are.equal("", listing(dir .. "/work"))
    end)
  end)

  describe("signals", function()
    it("TERM while zipping removes the temporary archive (exit 143) and sends nothing", function()
      os.execute(("head -c %d /dev/urandom > %s"):format(60 * 1024 * 1024, q(dir .. "/work/big.bin")))
      local code, err = signalled({ "publish", "--level", "9", "big.bin" }, "TERM", 0.5)
      assert.are.equal(143, code, err)
      assert.matches("interrupted %(SIGTERM%) before anything was sent", err)
      assert.are.equal("", listing(dir .. "/tmp"))
      assert.are.equal("big.bin\n", listing(dir .. "/work"))
      assert.are.equal(0, #emu:requests().storage)
    end)

    it("HUP while uploading removes the temporary archive (exit 129) and names the unfinished record", function()
      os.execute(("head -c %d /dev/urandom > %s"):format(1000000, q(dir .. "/work/m.bin")))
      emu:fault { role = "storage", method = "PUT", action = { type = "delay", ms = 5000 } }
      local code, err = signalled({ "publish", "--level", "1", "m.bin" }, "HUP", 1.5)
      assert.are.equal(129, code, err)
      assert.matches("interrupted %(SIGHUP%); model version record %d+ was left unfinished", err)
      assert.are.equal("", listing(dir .. "/tmp"))
    end)

    it("TERM while downloading keeps the part file for the next run (exit 143), nothing else", function()
      publish_random(400000)
      emu:fault { role = "storage", method = "GET", action = { type = "stall", after_bytes = 200000, ms = 5000 } }
      local code, err = signalled({ "fetch", "-o", "x.zip" }, "TERM", 1.5)
      assert.are.equal(143, code, err)
      assert.matches("interrupted %(SIGTERM%); x%.zip%.download%.part %(195%.3 KiB%) is kept", err)
      assert.are.equal("x.zip.download.part\nx.zip.download.part.etag\n", listing(dir .. "/work"))
      local r = skafos { "fetch", "-o", "x.zip" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("x.zip\n", listing(dir .. "/work"))
    end)

    it("INT between the download and its check leaves no complete download behind (exit 130)", function()
      publish_random(300000)
      -- a copy of the workflow that waits, between download and verify, until the signal
      -- has been sent: the window is hit every time, not by timing
      local src = skafos({ "scripts", "dump", "fetch" }).stdout
      local wait = [[
    do
      local fs, marks = require "skafos.fs", os.getenv("MARKS")
      io.open(marks .. "/ready", "w"):close()
      local t = fs.clock()
      while not fs.lstat(marks .. "/sent") and fs.clock() - t < 120 do end
    end
]]
      local edited, n = src:gsub("(\n *need%(fetch%.download%(job%)%)[^\n]*\n)", function(l) return l .. wait end)
      assert.are.equal(1, n)
      proc.write(dir .. "/work/.skafos/scripts/fetch.lua", edited)
      local parts = { "cd", q(dir .. "/work"), "&&", "env" }
      for k, v in pairs(env(emu, { MARKS = dir })) do parts[#parts + 1] = q(k .. "=" .. v) end
      for _, a in ipairs { proc.bin, "fetch", "-o", "x.zip" } do parts[#parts + 1] = q(a) end
      local code = tonumber(sh(table.concat(parts, " ") .. " 2>" .. q(dir .. "/err") .. " & pid=$!; "
        .. "while [ ! -e " .. q(dir .. "/ready") .. " ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done; "
        .. "kill -INT $pid; touch " .. q(dir .. "/sent") .. "; wait $pid; echo $?"))
      local err = proc.read(dir .. "/err")
      assert.are.equal(130, code, err)
      assert.matches("interrupted", err)
      assert.is_nil(err:find("refused", 1, true), err)
      os.execute("rm -rf " .. q(dir .. "/work/.skafos"))
      assert.are.equal("", listing(dir .. "/work"))
      assert.are.equal("", listing(dir .. "/tmp"))
    end)

    it("sweeps what runs killed with -9 left, whatever the command", function()
      publish_random(100000)
      -- leftovers: temporary directories in TMPDIR, a complete unchecked download, a stage
      os.execute("mkdir -p " .. q(dir .. "/tmp/skafos-publish.Ab12Cd") .. " " .. q(dir .. "/tmp/skafos-fetch.Zz9Yy8")
        .. " " .. q(dir .. "/work/.out.skafos-Qw3Er4"))
      proc.write(dir .. "/tmp/skafos-publish.Ab12Cd/demo-model.zip", "half an archive")
      proc.write(dir .. "/work/x.zip.download", "a complete download never checked")
      proc.write(dir .. "/work/.out.skafos-Qw3Er4/w.bin", "half")
      -- publish through a temporary archive sweeps TMPDIR
      proc.write(dir .. "/work/m.txt", ("text "):rep(1000))
      local r = skafos { "publish", "m.txt" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("", listing(dir .. "/tmp"))
      -- fetch -o X removes X.download, fetch --unzip the stage
      r = skafos { "fetch", "-o", "x.zip", "--version", "1" }
      assert.are.equal(0, r.code, r.stderr)
      r = skafos { "fetch", "--unzip", "out" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("m.txt\nout\nx.zip\n", listing(dir .. "/work"))
    end)
  end)

  describe("local write errors", function()
    local function small_disk()
      local mnt = dir .. "/work/small"
      os.execute("mkdir -p " .. q(mnt))
      return os.execute("mount -t tmpfs -o size=1m tmpfs " .. q(mnt) .. " 2>/dev/null") and mnt or nil
    end

    it("refuses before the download when the archive cannot fit (exit 2)", function()
      publish_random(3000000)
      if not small_disk() then pending("cannot mount a tmpfs here") return end
      emu:clear_requests()
      for _, args in ipairs { { "fetch", "-o", "small/x.zip" }, { "fetch", "--unzip", "small/out" } } do
        local r = skafos(args)
        assert.are.equal(2, r.code, r.stderr)
        assert.matches("not enough space in small: this version needs at least 2%.9 MiB there, 1%.0 MiB are free",
          r.stderr)
      end
      assert.are.equal(0, #emu:requests().storage)
      assert.are.equal("", listing(dir .. "/work/small"))
    end)

    it("says no space, not 'unsafe archive', when extraction fills the disk, and keeps the -o archive", function()
      -- 3 MB of zeros zip to a few KiB: the download fits, the files do not
      os.execute(("head -c %d /dev/zero > %s"):format(3000000, q(dir .. "/work/zeros.bin")))
      local r = skafos { "publish", "--level", "6", "zeros.bin" }
      assert.are.equal(0, r.code, r.stderr)
      if not small_disk() then pending("cannot mount a tmpfs here") return end
      -- a link planted where the archive is kept is replaced, never written through
      proc.write(dir .. "/victim", "precious\n")
      os.execute(("ln -s %s %s"):format(q(dir .. "/victim"), q(dir .. "/work/kept.zip")))
      r = skafos { "fetch", "-o", "kept.zip", "--unzip", "small/out", "--force" }
      assert.are_not.equal(7, r.code, r.stderr)
      assert.are_not.equal(0, r.code, r.stderr)
      assert.matches("not enough space in small", r.stderr)
      assert.matches("the verified archive is kept as kept%.zip", r.stderr)
      assert.are.equal("precious\n", proc.read(dir .. "/victim"))
      assert.are.equal("regular file", sh("stat -c %F " .. q(dir .. "/work/kept.zip")):match("^(.-)\n"))
      assert.are.equal("", sh("unzip -tq " .. q(dir .. "/work/kept.zip") .. " >/dev/null 2>&1 || echo bad"))
      assert.are.equal("", listing(dir .. "/work/small"))
      r = skafos { "fetch", "--unzip", "small/out2", "--force" }
      assert.matches("not enough space in small", r.stderr)
      assert.are.equal("", listing(dir .. "/work/small"))
    end)
  end)

  describe("answers that lack what the next step needs", function()
    it("never reports 'version nil': a finalize answer without a number is exit 6, naming the record", function()
      proc.write(dir .. "/work/m.bin", "w")
      emu:fault { role = "api", method = "PATCH", action = { type = "status", status = 200,
        body = '{"description": "no number here"}' } }
      local r = skafos { "publish", "m.bin" }
      assert.are.equal(6, r.code, r.stderr)
      assert.matches("finalizing model version record %d+ got an answer without a version number", r.stderr)
      assert.matches("run 'skafos versions'", r.stderr)
      assert.is_nil(r.stdout:find("nil", 1, true))
    end)

    it("resolves a relative redirect location against the download URL", function()
      local pub = publish_random(100000)
      -- the download host's answer, made relative: the same storage path from the storage root
      local url = emu:presign { method = "GET", key = pub.filepath }
      local path = url:match("^https?://[^/]+(/.*)$")
      emu:fault { role = "download", action = { type = "status", status = 302,
        headers = { Location = "//" .. url:match("^https?://([^/]+)") .. path } } }
      local r = skafos { "fetch", "-o", "x.zip" }
      assert.are.equal(0, r.code, r.stderr)
    end)
  end)
end)
