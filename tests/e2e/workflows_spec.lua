-- The workflows end to end: the real skafos binary against the emulator, checked through
-- exit codes, messages, files on disk and what the emulator recorded.
local emulator = require "emulator"
local proc = require "proc"

local TOKEN = "demo-token"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function write_random(path, bytes)
  os.execute(("head -c %d /dev/urandom > %s"):format(bytes, proc.quote(path)))
  return path
end

local function count(list, pred)
  local n = 0
  for _, r in ipairs(list) do if pred(r) then n = n + 1 end end
  return n
end

describe("workflows", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    emu:clear_faults()
    emu:clear_requests()
  end)

  after_each(function() cleanup() end)

  local function env(extra)
    local e = {
      SKAFOS_API_URL = emu.api, SKAFOS_DOWNLOAD_URL = emu.download, SKAFOS_API_TOKEN = TOKEN,
      SKAFOS_ORG_NAME = "demo-org", SKAFOS_APP_NAME = "demo-app", SKAFOS_MODEL_NAME = "demo-model",
      XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir .. "/home", TMPDIR = dir .. "/tmp",
    }
    os.execute("mkdir -p " .. proc.quote(dir .. "/tmp"))
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local function skafos(args, extra_env, opts)
    opts = opts or {}
    return proc.skafos(args, { cwd = opts.cwd or dir, env = env(extra_env),
      unset = { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE", "http_proxy", "https_proxy", "HTTP_PROXY",
        "HTTPS_PROXY", "ALL_PROXY" } })
  end

  local function requests(role)
    return emu:requests()[role]
  end

  local function posts_of_versions()
    return count(requests("api"), function(r) return r.method == "POST" and r.path:match("/model_versions$") end)
  end

  local function publish(files, extra_args, extra_env)
    local args = { "publish", "--json" }
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    for _, f in ipairs(files) do args[#args + 1] = f end
    return skafos(args, extra_env)
  end

  describe("publish", function()
    it("zips files and a directory, uploads them and reports the version, size and SHA-256", function()
      proc.write(dir .. "/labels.txt", ("cat\ndog\n"):rep(1000))
      write_random(dir .. "/Model.mlmodel", 300000)
      proc.write(dir .. "/Pkg.mlpackage/Data/weights.bin", ("\1\2\3\4"):rep(5000))
      proc.write(dir .. "/Pkg.mlpackage/Manifest.json", "{}")
      local r = publish({ "labels.txt", "Model.mlmodel", "Pkg.mlpackage" }, { "-m", "first cut" })
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.is_true(math.type(out.version) == "integer" and out.version >= 1)
      assert.are.equal("demo-model.zip", out.archive)
      assert.matches("^%x+$", out.sha256)
      assert.are.equal(64, #out.sha256)
      -- what the storage host received is the archive we describe
      local puts = {}
      for _, q in ipairs(requests("storage")) do if q.method == "PUT" then puts[#puts + 1] = q end end
      assert.are.equal(1, #puts)
      assert.are.equal(out.bytes, puts[1].bytes_in)
      assert.are.equal(tostring(out.bytes), puts[1].headers["content-length"])
      -- the version list now has it, with the description
      local v = skafos { "versions", "--json" }
      assert.are.equal(0, v.code, v.stderr)
      local versions = proc.json(v.stdout)
      assert.are.equal(out.version, versions[#versions].version)
      assert.are.equal("first cut", versions[#versions].description)
      -- fetch it back and unzip: the same bytes as the inputs
      local f = skafos { "fetch", "--json", "-o", "back.zip", "--unzip", "out" }
      assert.are.equal(0, f.code, f.stderr)
      assert.are.equal(proc.read(dir .. "/Model.mlmodel"), proc.read(dir .. "/out/Model.mlmodel"))
      assert.are.equal(proc.read(dir .. "/labels.txt"), proc.read(dir .. "/out/labels.txt"))
      assert.are.equal(proc.read(dir .. "/Pkg.mlpackage/Data/weights.bin"),
        proc.read(dir .. "/out/Pkg.mlpackage/Data/weights.bin"))
      local sha = sh("sha256sum " .. proc.quote(dir .. "/back.zip")):match("^(%x+)")
      assert.are.equal(out.sha256, sha)
      assert.are.equal("", sh("unzip -tq " .. proc.quote(dir .. "/back.zip") .. " >/dev/null 2>&1 || echo bad"))
    end)

    it("sends a single zip as it is", function()
      proc.write(dir .. "/a.txt", "alpha")
      os.execute(("cd %s && zip -q given.zip a.txt"):format(proc.quote(dir)))
      local r = publish { "given.zip" }
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.is_true(out.as_is)
      assert.are.equal(sh("sha256sum " .. proc.quote(dir .. "/given.zip")):match("^(%x+)"), out.sha256)
    end)

    it("prints the plan with --dry-run and sends nothing that changes state", function()
      proc.write(dir .. "/m.bin", "weights")
      local r = skafos { "publish", "--dry-run", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Would publish demo%-model%.zip to demo%-org/demo%-app/demo%-model", r.stdout)
      assert.matches("m%.bin", r.stdout)
      assert.are.equal(0, posts_of_versions())
      assert.are.equal(0, #requests("storage"))
    end)

    it("refuses a 256-character description before any request (exit 2)", function()
      proc.write(dir .. "/m.bin", "weights")
      local r = skafos { "publish", "-m", ("x"):rep(256), "m.bin" }
      assert.are.equal(2, r.code)
      assert.matches("the description is 256 characters; the limit is 255", r.stderr)
      assert.are.equal(0, posts_of_versions())
    end)

    it("refuses a missing file before any request (exit 2)", function()
      local r = skafos { "publish", "nope.mlmodel" }
      assert.are.equal(2, r.code)
      assert.matches("no such file or directory: nope%.mlmodel", r.stderr)
      assert.are.equal(0, posts_of_versions())
    end)

    it("refuses an unreadable file before any request (exit 2)", function()
      proc.write(dir .. "/secret.bin", "x")
      os.execute("chmod 000 " .. proc.quote(dir .. "/secret.bin") .. " && chmod 777 " .. proc.quote(dir))
      local argv = { proc.bin, "publish", "secret.bin" }
      -- root reads everything: run as nobody then
      if sh("id -u"):match("^0") then
        table.insert(argv, 1, "--clear-groups")
        table.insert(argv, 1, "--regid=65534")
        table.insert(argv, 1, "--reuid=65534")
        table.insert(argv, 1, "setpriv")
      end
      local r = proc.run(argv, { cwd = dir, env = env() })
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("cannot read secret%.bin: permission denied", r.stderr)
      assert.are.equal(0, posts_of_versions())
    end)

    it("needs a token (exit 3) and rejects a wrong one (exit 3)", function()
      proc.write(dir .. "/m.bin", "w")
      local r = skafos({ "publish", "m.bin" }, { SKAFOS_API_TOKEN = "" })
      assert.are.equal(3, r.code)
      assert.matches("no API token", r.stderr)
      r = skafos({ "versions" }, { SKAFOS_API_TOKEN = "wrong-token" })
      assert.are.equal(3, r.code)
      assert.matches("token was rejected", r.stderr)
      assert.is_nil(r.stderr:find("wrong-token", 1, true))
    end)

    it("names the missing organization, app or model (exit 4)", function()
      local r = skafos({ "versions" }, { SKAFOS_ORG_NAME = "no-org" })
      assert.are.equal(4, r.code)
      assert.matches("organization 'no%-org'", r.stderr)
      r = skafos({ "versions" }, { SKAFOS_APP_NAME = "no-app" })
      assert.are.equal(4, r.code)
      assert.matches("app 'no%-app'", r.stderr)
      r = skafos({ "versions" }, { SKAFOS_MODEL_NAME = "no-model" })
      assert.are.equal(4, r.code)
      assert.matches("model 'no%-model'", r.stderr)
    end)

    it("retries a put that fails with 503 twice, then succeeds", function()
      proc.write(dir .. "/m.bin", ("w"):rep(10000))
      emu:fault { role = "storage", method = "PUT", times = 2, action = { type = "status", status = 503 } }
      local r = publish { "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("retrying upload", r.stderr)
      local puts = count(requests("storage"), function(q) return q.method == "PUT" end)
      assert.are.equal(3, puts)
    end)

    it("reports the unfinished model_version_id when the put fails for good (exit 6)", function()
      proc.write(dir .. "/m.bin", ("w"):rep(1000))
      emu:fault { role = "storage", method = "PUT", times = 100, action = { type = "status", status = 403,
        body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
          .. "<Message>Request has expired</Message></Error>" } }
      local r = publish { "m.bin" }
      assert.are.equal(6, r.code, r.stderr)
      local id = r.stderr:match("model version record (%S+) was left unfinished")
      assert.truthy(id, r.stderr)
      -- the API did create that record
      local created = count(requests("api"), function(q) return q.method == "POST" end)
      assert.are.equal(1, created)
    end)

    it("is interrupted by SIGINT with exit 130 and leaves no temporary file", function()
      write_random(dir .. "/big.bin", 2 * 1024 * 1024)
      emu:fault { role = "storage", method = "PUT", action = { type = "delay", ms = 20000 } }
      local e = env()
      local exports = {}
      for k, v in pairs(e) do exports[#exports + 1] = k .. "=" .. proc.quote(v) end
      -- level 6 forces the temporary archive; wait until the upload has started
      local script = ("cd %s && env %s %s publish --level 6 big.bin 2>err & pid=$!; "
        .. "i=0; while [ $i -lt 200 ] && ! ls %s/tmp/skafos-publish.* >/dev/null 2>&1; do "
        .. "sleep 0.05; i=$((i+1)); done; "
        .. "sleep 0.5; kill -INT $pid; wait $pid; echo $?")
        :format(proc.quote(dir), table.concat(exports, " "), proc.quote(proc.bin), proc.quote(dir))
      local code = sh(script):match("(%d+)%s*$")
      assert.are.equal("130", code, proc.read(dir .. "/err"))
      assert.matches("interrupted", proc.read(dir .. "/err"))
      assert.are.equal("", sh("ls -A " .. proc.quote(dir .. "/tmp")))
    end)

    it("removes the temporary archive of a run killed with -9 on the next run, not a live one's", function()
      write_random(dir .. "/big.bin", 2 * 1024 * 1024)
      emu:fault { role = "storage", method = "PUT", action = { type = "delay", ms = 20000 } }
      local exports = {}
      for k, v in pairs(env()) do exports[#exports + 1] = k .. "=" .. proc.quote(v) end
      local script = ("cd %s && env %s %s publish --level 6 big.bin 2>err & pid=$!; "
        .. "i=0; while [ $i -lt 200 ] && ! ls %s/tmp/skafos-publish.*/*.zip >/dev/null 2>&1; do "
        .. "sleep 0.05; i=$((i+1)); done; kill -KILL $pid; wait $pid; echo $?")
        :format(proc.quote(dir), table.concat(exports, " "), proc.quote(proc.bin), proc.quote(dir))
      assert.are.equal("137", sh(script):match("(%d+)%s*$"), proc.read(dir .. "/err"))
      local left = sh("ls -A " .. proc.quote(dir .. "/tmp"))
      assert.matches("^skafos%-publish%.%w+\n$", left)
      emu:clear_faults()
      -- another run's directory, alive: held by a process of its own
      local live = dir .. "/tmp/skafos-publish.L1veRn"
      proc.write(live .. "/in-use.zip", "x")
      local holder = dir .. "/holder.pid"
      sh(("(exec 9<%s && flock -x 9 && exec sleep 30) >/dev/null 2>&1 & echo $! > %s")
        :format(proc.quote(live), proc.quote(holder)))
      sh(("i=0; while [ $i -lt 200 ] && flock -n %s true; do sleep 0.05; i=$((i+1)); done")
        :format(proc.quote(live)))
      local r = publish({ "big.bin" }, { "--level", "6" })
      sh("kill $(cat " .. proc.quote(holder) .. ") 2>/dev/null")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("skafos-publish.L1veRn\n", sh("ls -A " .. proc.quote(dir .. "/tmp")))
    end)

    it("never sends the token to storage nor prints it, even with -vv", function()
      proc.write(dir .. "/m.bin", ("w"):rep(5000))
      local r = skafos { "publish", "-vv", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      local f = skafos { "fetch", "-vv", "-o", "x.zip" }
      assert.are.equal(0, f.code, f.stderr)
      assert.matches("x%-api%-token", (r.stderr .. f.stderr):lower()) -- the trace shows the header...
      for _, text in ipairs { r.stdout, r.stderr, f.stdout, f.stderr } do
        assert.is_nil(text:find(TOKEN, 1, true)) -- ...but never its value
      end
      local storage = requests("storage")
      assert.is_true(#storage >= 2)
      for _, q in ipairs(storage) do
        assert.is_nil(q.headers["x-api-token"])
      end
    end)

    it("runs a user's publish.lua override and honours a veto from before_create", function()
      proc.write(dir .. "/m.bin", "w")
      proc.write(dir .. "/.skafos/config.lua", [[
        return {
          before_create = function(plan)
            if not plan.description then error("a description is required by team policy", 0) end
          end,
        }
      ]])
      local r = skafos { "publish", "m.bin" }
      assert.are.equal(1, r.code)
      assert.matches("publish refused by policy %(before_create, [^ ]*%.skafos/config%.lua:2%): "
        .. "a description is required by team policy", r.stderr)
      assert.are.equal(0, posts_of_versions())
      -- an override: the built-in copy plus a hook
      local builtin = skafos({ "scripts", "dump", "publish" }).stdout
      proc.write(dir .. "/.skafos/scripts/publish.lua", builtin:gsub("\nreturn W%s*$", [[

function W.after_publish(result)
  io.stderr:write("override saw version ", tostring(result.version), "\n")
end

return W
]]))
      r = skafos { "publish", "-m", "ok", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("override saw version %d+", r.stderr)
    end)

    it("never retries an E4 the server may have processed, and tolerates an HTML error body", function()
      proc.write(dir .. "/m.bin", "w")
      emu:fault { role = "api", method = "POST", times = 5,
        action = { type = "status", status = 500, body = "<html><body>Internal Server Error</body></html>" } }
      local r = skafos { "publish", "m.bin" }
      assert.are.equal(6, r.code, r.stderr)
      assert.matches("create model version: server error HTTP 500\n", r.stderr)
      assert.is_nil(r.stderr:find("<html>", 1, true))
      assert.are.equal(1, posts_of_versions())
      assert.are.equal(0, #requests("storage"))
    end)

    it("retries idempotent API calls under a user's retry hook", function()
      proc.write(dir .. "/.skafos/config.lua", [[
        return { retry = function(err, attempt)
          io.stderr:write("hook saw ", err.code, " on attempt ", attempt, "\n")
          if attempt < 3 then return 0.01 end
        end }
      ]])
      emu:fault { role = "api", method = "GET", times = 2, action = { type = "status", status = 502 } }
      local r = skafos { "versions", "--json" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("hook saw SERVER on attempt 1\nretrying list versions in 0%.0s %(attempt 2 of 5%)[^\n]*\n"
        .. "hook saw SERVER on attempt 2\n", r.stderr)
      emu:fault { role = "api", method = "GET", times = 5, action = { type = "status", status = 502 } }
      r = skafos { "versions" }
      assert.are.equal(6, r.code)
      assert.matches("hook saw SERVER on attempt 3", r.stderr)
      assert.matches("list versions: server error HTTP 502", r.stderr)
    end)
  end)

  describe("fetch", function()
    local function publish_one()
      proc.write(dir .. "/m.bin", ("model bytes "):rep(20000))
      local r = publish({ "m.bin" }, { "--level", "store" })
      assert.are.equal(0, r.code, r.stderr)
      return proc.json(r.stdout)
    end

    -- Writes given.zip with a Python script (run in dir) and publishes it as it is.
    -- given.zip made by a Python script, published as it is; `raw` uploads it the way
    -- another client could, past the checks publish makes (to see what fetch does with it)
    local function publish_given(script, raw)
      assert.are.equal("", sh(("cd %s && python3 -c '%s'"):format(proc.quote(dir), script)))
      local r
      if raw then
        proc.write(dir .. "/raw.lua", [[
local s = assert(require("skafos.config").resolve {})
local c = require("skafos.api").new(s)
local v = assert(c:create_version("demo-model.zip"))
assert(require("skafos.s3").put(v.presigned_url, "given.zip"))
assert(c:finalize(v.model_version_id, v.filepath))
]])
        r = skafos { "run", "raw.lua" }
        os.remove(dir .. "/raw.lua")
      else
        r = publish { "given.zip" }
      end
      assert.are.equal(0, r.code, r.stderr)
    end

    -- fetch -o kept.zip --unzip OUT of a given.zip holding w.bin: both as published
    local function fetch_given_kept(out)
      local r = skafos { "fetch", "-o", "kept.zip", "--unzip", out }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("stored weights", proc.read(dir .. "/" .. out .. "/w.bin"))
      assert.are.equal(proc.read(dir .. "/given.zip"), proc.read(dir .. "/kept.zip"))
    end

    it("extracts --unzip without -o while downloading, keeping no archive and no part file", function()
      proc.write(dir .. "/in/m.bin", ("model bytes "):rep(20000))
      proc.write(dir .. "/in/sub/labels.txt", "cat\ndog\n")
      local r = publish({ "in" }, { "--level", "store" })
      assert.are.equal(0, r.code, r.stderr)
      local pub = proc.json(r.stdout)
      emu:clear_requests()
      r = skafos { "fetch", "--unzip", "out" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("without keeping the archive", r.stdout)
      assert.is_nil(r.stdout:find("demo-model.zip", 1, true))
      assert.matches("unzipped into out", r.stdout)
      assert.are.equal(proc.read(dir .. "/in/m.bin"), proc.read(dir .. "/out/in/m.bin"))
      assert.are.equal("cat\ndog\n", proc.read(dir .. "/out/in/sub/labels.txt"))
      assert.are.equal("", sh("cd " .. proc.quote(dir) .. " && ls -A | grep -v -x -e in -e out -e tmp"))
      -- one request: the first range, which holds this small archive whole
      local gets = requests("storage")
      assert.are.equal(1, #gets)
      assert.matches("^bytes=0%-", gets[1].headers["range"])
      -- latest was resolved first and the download asked for that very version
      local downloads = requests("download")
      assert.are.equal(1, #downloads)
      assert.are.equal(tostring(pub.version), downloads[1].query.version)
      -- the JSON result names no archive; a second run needs --force for the directory only
      r = skafos { "fetch", "--json", "--unzip", "out" }
      assert.are.equal(2, r.code)
      assert.matches("out already exists", r.stderr)
      r = skafos { "fetch", "--json", "--unzip", "out", "--force" }
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.is_nil(out.path)
      assert.is_nil(out.sha256)
      assert.are.equal(pub.bytes, out.bytes)
      assert.are.equal("out", out.unzipped)
      assert.are.equal(proc.read(dir .. "/in/m.bin"), proc.read(dir .. "/out/in/m.bin"))
    end)

    it("falls back to downloading first an archive that cannot be read front to back", function()
      -- a stored entry whose sizes follow its data, sent as it is
      publish_given [[
import io, zipfile
class Pipe(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
with open("given.zip", "wb") as f, zipfile.ZipFile(Pipe(f), "w") as z:
    z.writestr("w.bin", "stored weights")
]]
      emu:clear_requests()
      local r = skafos { "fetch", "--unzip", "out" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("stored weights", proc.read(dir .. "/out/w.bin"))
      assert.are.equal(2, #requests("storage"))
      assert.are.equal("", sh("cd " .. proc.quote(dir) .. " && ls -A | grep -v -x -e given.zip -e out -e tmp"))
      -- with -o the download goes on into the file, which is then unzipped
      emu:clear_requests()
      fetch_given_kept("out2")
      assert.are.equal(1, #requests("storage"))
      assert.are.equal("", sh("cd " .. proc.quote(dir)
        .. " && ls -A | grep -v -x -e given.zip -e kept.zip -e out -e out2 -e tmp"))
    end)

    it("judges bytes after the end record as unzip does with -o, refuses them when streaming", function()
      publish_given([[
import zipfile
with zipfile.ZipFile("given.zip", "w") as z:
    z.writestr("w.bin", "stored weights")
open("given.zip", "ab").write(b"trailer")
]], true)
      -- the file reader accepts the archive, as unzip does
      fetch_given_kept("out")
      -- extracting while it streams cannot tell what the bytes are: refused, nothing kept
      local r = skafos { "fetch", "--unzip", "out2" }
      assert.are.equal(7, r.code, r.stderr)
      assert.matches("bytes follow it", r.stderr)
      assert.are.equal("", sh("cd " .. proc.quote(dir)
        .. " && ls -A | grep -v -x -e given.zip -e kept.zip -e out -e tmp"))
    end)

    it("with -o and --unzip, keeps nothing of an archive whose data are damaged (exit 7)", function()
      -- a stored entry with one byte changed after the archive was made: the CRC is wrong
      publish_given([[
import zipfile
with zipfile.ZipFile("given.zip", "w") as z:
    z.writestr("w.bin", "stored weights " * 100)
data = bytearray(open("given.zip", "rb").read())
data[100] ^= 0xFF
open("given.zip", "wb").write(data)
]], true)
      local r = skafos { "fetch", "-o", "kept.zip", "--unzip", "out" }
      assert.are.equal(7, r.code, r.stderr)
      assert.matches("CRC", r.stderr)
      assert.are.equal("", sh("cd " .. proc.quote(dir) .. " && ls -A | grep -v -x -e given.zip -e tmp"))
    end)

    it("refuses an existing target without --force and downloads nothing (exit 2)", function()
      publish_one()
      proc.write(dir .. "/demo-model.zip", "keep me")
      emu:clear_requests()
      local r = skafos { "fetch" }
      assert.are.equal(2, r.code)
      assert.matches("demo%-model%.zip already exists; pass %-%-force", r.stderr)
      assert.are.equal("keep me", proc.read(dir .. "/demo-model.zip"))
      assert.are.equal(0, #requests("storage"))
      assert.are.equal(0, #requests("download"))
      r = skafos { "fetch", "--force" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are_not.equal("keep me", proc.read(dir .. "/demo-model.zip"))
    end)

    it("names a missing version (exit 4)", function()
      publish_one()
      local r = skafos { "fetch", "--version", "999" }
      assert.are.equal(4, r.code)
      assert.matches("version 999", r.stderr)
      assert.is_nil(proc.read(dir .. "/demo-model.zip"))
    end)

    it("reports a model with no versions (exit 4)", function()
      local r = skafos({ "fetch" }, { SKAFOS_MODEL_NAME = "empty-model" })
      assert.are.equal(4, r.code)
      assert.matches("has no versions", r.stderr)
    end)

    -- Runs `skafos <args>` with storage GETs stalling after 60,000 bytes, kills it (-9)
    -- once `watch` holds `size` bytes, and returns the kill's exit status.
    local function fetch_killed(args, watch, size)
      emu:fault { role = "storage", method = "GET", action = { type = "stall", after_bytes = 60000, ms = 30000 } }
      local exports = {}
      for k, v in pairs(env()) do exports[#exports + 1] = k .. "=" .. proc.quote(v) end
      local quoted = {}
      for i, a in ipairs(args) do quoted[i] = proc.quote(a) end
      local script = ("cd %s && env %s %s %s --progress none 2>err & pid=$!; "
        .. "i=0; while [ $i -lt 200 ] && [ \"$(stat -c %%s %s 2>/dev/null || echo 0)\" -lt %d ]; do "
        .. "sleep 0.05; i=$((i+1)); done; kill -KILL $pid; wait $pid; echo $?")
        :format(proc.quote(dir), table.concat(exports, " "), proc.quote(proc.bin), table.concat(quoted, " "),
          proc.quote(watch), size)
      local code = sh(script):match("(%d+)%s*$")
      emu:clear_faults()
      return code
    end

    it("resumes a download that was killed halfway", function()
      local pub = publish_one()
      emu:clear_requests()
      local part = dir .. "/demo-model.zip.download.part"
      assert.are.equal("137", fetch_killed({ "fetch" }, part, 60000))
      local partial = proc.read(part)
      assert.truthy(partial and #partial >= 60000 and #partial < pub.bytes)
      emu:clear_requests()
      local r = skafos { "fetch", "--json" }
      assert.are.equal(0, r.code, r.stderr)
      local gets = requests("storage")
      assert.are.equal(1, #gets)
      assert.matches("^bytes=%d+%-", gets[1].headers["range"])
      assert.are.equal(pub.sha256, sh("sha256sum " .. proc.quote(dir .. "/demo-model.zip")):match("^(%x+)"))
      assert.is_nil(proc.read(part))
    end)

    it("resumes a streamed --unzip that was killed halfway, from the bytes it extracted", function()
      local pub = publish_one()
      emu:clear_requests()
      local partial = dir .. "/.out.skafos-partial"
      assert.are.equal("137", fetch_killed({ "fetch", "--unzip", "out" }, partial .. "/tree/m.bin", 50000))
      local kept = proc.read(partial .. "/tree/m.bin")
      assert.truthy(kept and #kept >= 50000 and #kept < 240000)
      assert.is_nil(proc.read(dir .. "/out/m.bin"))
      emu:clear_requests()
      local r = skafos { "fetch", "--unzip", "out", "--json" }
      assert.are.equal(0, r.code, r.stderr)
      assert.is_true(proc.json(r.stdout).resumed)
      local gets = requests("storage")
      assert.are.equal(1, #gets)
      assert.matches("^bytes=%d+%-", gets[1].headers["range"])
      local from = tonumber(gets[1].headers["range"]:match("%d+"))
      assert.is_true(from >= 50000, "went on from what was extracted")
      assert.are.equal(("model bytes "):rep(20000), proc.read(dir .. "/out/m.bin"))
      assert.is_nil(proc.read(partial .. "/journal"))
      assert.are.equal("gone\n", sh("test -e " .. proc.quote(partial) .. " || echo gone"))
      assert.is_nil(proc.read(dir .. "/demo-model.zip"))
      assert.are.equal(pub.version, proc.json(r.stdout).version)
    end)

    it("with -o and --unzip, unzips as the archive is written, and goes on after a kill", function()
      -- on one connection: over several, a range's progress is recorded every 16 MiB, so a
      -- kill inside the first range of this small archive keeps nothing to go on from
      -- (connections_spec kills a fetch over several connections)
      local pub = publish_one()
      emu:clear_requests()
      local part = dir .. "/kept.zip.download.part"
      assert.are.equal("137", fetch_killed({ "fetch", "-o", "kept.zip", "--unzip", "out", "--connections", "1" },
        part, 60000))
      assert.truthy(#proc.read(part) >= 60000)
      assert.is_nil(proc.read(dir .. "/out/m.bin"))
      emu:clear_requests()
      local r = skafos { "fetch", "-o", "kept.zip", "--unzip", "out", "--json", "--connections", "1" }
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.is_true(out.resumed)
      assert.are.equal(pub.sha256, out.sha256)
      local gets = requests("storage")
      assert.are.equal(1, #gets)
      assert.matches("^bytes=%d+%-", gets[1].headers["range"])
      assert.are.equal(("model bytes "):rep(20000), proc.read(dir .. "/out/m.bin"))
      assert.are.equal(pub.sha256, sh("sha256sum " .. proc.quote(dir .. "/kept.zip")):match("^(%x+)"))
      assert.are.equal("", sh("cd " .. proc.quote(dir)
        .. " && ls -A | grep -v -x -e err -e m.bin -e kept.zip -e out -e tmp"))
    end)
  end)

  describe("other commands", function()
    it("deploys the latest version to dev and shows the server's error for staging", function()
      proc.write(dir .. "/m.bin", "w")
      local pub = proc.json(publish({ "m.bin" }).stdout)
      local r = skafos { "deploy" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(("Deployed version %d to dev\n"):format(pub.version), r.stdout)
      r = skafos { "deploy", "--env", "staging", "--version", tostring(pub.version) }
      assert.are_not.equal(0, r.code)
      assert.matches("deploy: .*staging", r.stderr)
    end)

    it("lists environments with device counts and the deployed version", function()
      local r = skafos { "environments" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("DEPLOYED\n", r.stdout)
      assert.matches("Prod%s+%S+%s+25%s+%-\n", r.stdout)
      proc.write(dir .. "/m.bin", "w")
      local pub = proc.json(publish({ "m.bin" }).stdout)
      assert.are.equal(0, skafos({ "deploy", "--env", "dev" }).code)
      r = skafos { "environments" }
      assert.matches("Dev%s+%S+%s+2%s+" .. pub.version .. "\n", r.stdout)
      local j = proc.json(skafos({ "environments", "--json" }).stdout)
      assert.are.equal("Dev", j[1].name)
      assert.are.equal(pub.version, j[1].deployed_version)
    end)

    it("summarises what the token can see, in rows or as a tree", function()
      local r = skafos { "summary", "--json" }
      assert.are.equal(0, r.code, r.stderr)
      local rows = proc.json(r.stdout)
      assert.is_true(count(rows, function(x)
        return x.org == "demo-org" and x.app == "demo-app" and x.model == "demo-model"
      end) == 1)
      local tree = proc.json(skafos({ "summary", "--compact", "--json" }).stdout)
      assert.is_table(tree["demo-org"]["demo-app"])
      -- --org, --app and --model narrow it
      rows = proc.json(skafos({ "summary", "--json", "--org", "demo-org", "--model", "empty-model" }).stdout)
      assert.are.equal(1, #rows)
      assert.are.equal("empty-model", rows[1].model)
      rows = proc.json(skafos({ "summary", "--json", "--app", "my app" }).stdout)
      assert.is_true(#rows >= 1)
      for _, x in ipairs(rows) do assert.are.equal("my app", x.app) end
      r = skafos { "summary", "--org", "nobody-org" }
      assert.are.equal(4, r.code)
      assert.matches("organization 'nobody%-org' not found", r.stderr)
    end)

    it("creates a model, and says so when it exists (exit 5)", function()
      local r = skafos { "models", "create", "fresh-model", "-m", "new bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Created model 'fresh%-model'", r.stdout)
      r = skafos { "models", "create", "fresh-model" }
      assert.are.equal(5, r.code)
    end)

    it("shows where each setting comes from without the token", function()
      proc.write(dir .. "/.skafos/config.lua", [[return { app = "from-config" }]])
      local r = skafos({ "config", "--model", "flagged" }, { SKAFOS_APP_NAME = "" })
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("model%s+flagged%s+flag %-%-model", r.stdout)
      assert.matches("app%s+from%-config%s+project config", r.stdout)
      assert.matches("org%s+demo%-org%s+environment SKAFOS_ORG_NAME", r.stdout)
      assert.is_nil(r.stdout:find(TOKEN, 1, true))
    end)

    it("handles spaces and non-ASCII names in org, app, model and files", function()
      local e = { SKAFOS_ORG_NAME = "Équipe ML", SKAFOS_APP_NAME = "my app", SKAFOS_MODEL_NAME = "modèle été" }
      proc.write(dir .. "/dossier à/poids été.bin", "données")
      local r = skafos({ "publish", "--json", "dossier à" }, e)
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.are.equal("modèle été.zip", out.archive)
      r = skafos({ "fetch", "--unzip", "x" }, e)
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("données", proc.read(dir .. "/x/dossier à/poids été.bin"))
      local posted = false
      for _, q in ipairs(requests("api")) do
        if q.method == "POST" and q.path:find("%C3%89quipe%20ML", 1, true) then posted = true end
      end
      assert.is_true(posted)
    end)
  end)

  describe("customisation", function()
    local function use_example(name)
      local src = skafos({ "scripts", "dump", "examples/" .. name }).stdout
      assert.truthy(#src > 0)
      proc.write(dir .. "/.skafos/config.lua", src)
    end

    it("example policy: requires a description and a labels.txt", function()
      use_example("require-description-and-labels")
      proc.write(dir .. "/m.bin", "w")
      proc.write(dir .. "/labels.txt", "cat\n")
      local r = skafos { "publish", "m.bin", "labels.txt" }
      assert.are.equal(1, r.code)
      assert.matches("a description is required", r.stderr)
      r = skafos { "publish", "-m", "new", "m.bin" }
      assert.are.equal(1, r.code)
      assert.matches("labels%.txt is missing", r.stderr)
      assert.are.equal(0, posts_of_versions())
      r = skafos { "publish", "-m", "new", "m.bin", "labels.txt" }
      assert.are.equal(0, r.code, r.stderr)
    end)

    it("example policy: stores already-compressed formats", function()
      use_example("store-compressed")
      proc.write(dir .. "/icon.png", ("compressible "):rep(5000))
      proc.write(dir .. "/notes.txt", ("compressible "):rep(5000))
      local r = skafos { "publish", "--dry-run", "--json", "icon.png", "notes.txt" }
      assert.are.equal(0, r.code, r.stderr)
      local plan = proc.json(r.stdout)
      local methods = {}
      for _, e in ipairs(plan.inputs) do methods[e.name] = e.method end
      assert.are.same({ ["icon.png"] = "store", ["notes.txt"] = "auto" }, methods)
      r = skafos { "publish", "-o", "x", "icon.png", "notes.txt" }
      assert.are.equal(2, r.code) -- publish has no -o: a clear usage error
      r = skafos { "publish", "--json", "icon.png", "notes.txt" }
      assert.are.equal(0, r.code, r.stderr)
      r = skafos { "fetch", "-o", "back.zip" }
      assert.are.equal(0, r.code, r.stderr)
      local listing = sh("unzip -v " .. proc.quote(dir .. "/back.zip"))
      assert.matches("Stored[^\n]*icon%.png", listing)
      assert.matches("Defl:[^\n]*notes%.txt", listing)
    end)

    it("example policy: deploys to dev after every publish", function()
      use_example("deploy-after-publish")
      proc.write(dir .. "/m.bin", "w")
      local r = skafos { "publish", "--json", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      local out = proc.json(r.stdout)
      assert.matches(("Deployed version %d to dev"):format(out.version), r.stderr)
      local deploys = count(requests("api"), function(q) return q.method == "POST" and q.path:match("/deploy$") end)
      assert.are.equal(1, deploys)
    end)

    it("publishes several models from one Lua script through require 'skafos'", function()
      proc.write(dir .. "/a/w.bin", "model a")
      proc.write(dir .. "/b/w.bin", "model b")
      local r = skafos { "models", "create", "lib-model-b" }
      assert.are.equal(0, r.code, r.stderr)
      proc.write(dir .. "/many.lua", [[
        local skafos = require "skafos"
        for _, m in ipairs { { "demo-model", "a" }, { "lib-model-b", "b" } } do
          local v = assert(skafos.publish { model = m[1], files = { m[2] .. "/w.bin" }, description = "batch" })
          print(m[1], math.tointeger(v.version) ~= nil, #v.sha256)
        end
        local versions = assert(skafos.versions { model = "lib-model-b" })
        print(#versions, versions[1].description)
        local none, err = skafos.versions { model = "nope" }
        print(none, err.code)
      ]])
      r = skafos { "run", "many.lua" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("demo-model\ttrue\t64\nlib-model-b\ttrue\t64\n1\tbatch\nnil\tNOT_FOUND\n", r.stdout)
    end)

    it("draws a progress bar when asked and stays silent with --quiet", function()
      os.execute("head -c 3000000 /dev/urandom > " .. proc.quote(dir .. "/big.bin"))
      local r = skafos { "publish", "--progress", "bar", "big.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("\r\27%[K%[#+%.*%] upload", r.stderr)
      r = skafos { "publish", "--quiet", "big.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("", r.stderr)
      assert.matches("^%d+\n$", r.stdout)
    end)
  end)
end)
