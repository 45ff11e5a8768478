-- The exit-code contract, as a table: every command against every class of failure it can
-- meet, each run for real against the emulator (faults injected through its admin API),
-- checked for the exit code README documents and the key words of the message.
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

describe("exit codes", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
    local d, done = proc.tmpdir()
    proc.write(d .. "/m.bin", ("weights "):rep(4000))
    e2e.publish(emu, d, { "m.bin" }, { "--level", "store" })
    done()
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    proc.write(dir .. "/m.bin", ("weights "):rep(4000))
    -- the same retries, without waiting between them (the exit code does not depend on it)
    e2e.fast_retries(dir)
    emu:clear_faults()
  end)

  after_each(function()
    os.execute("umount " .. proc.quote(dir .. "/ro") .. " 2>/dev/null")
    cleanup()
  end)

  local function run(argv, extra_env)
    return e2e.skafos(emu, dir, argv, extra_env)
  end

  -- {name, argv, env?, faults?, code, pattern}
  local API_COMMANDS = {
    { "publish", { "publish", "m.bin" } },
    { "fetch", { "fetch", "-o", "out.zip" } },
    { "versions", { "versions" } },
    { "deploy", { "deploy" } },
    { "environments", { "environments" } },
    { "models create", { "models", "create", "another" }, org_app_only = true },
  }

  local cases = {}
  local function case(c) cases[#cases + 1] = c end

  for _, cmd in ipairs(API_COMMANDS) do
    local argv = cmd[2]
    case { cmd[1] .. ": usage", { argv[1], "--bogus", table.unpack(argv, 2) }, nil, nil, 2, "unknown option" }
    case { cmd[1] .. ": no token", argv, { SKAFOS_API_TOKEN = "" }, nil, 3, "no API token" }
    case { cmd[1] .. ": token rejected", argv, { SKAFOS_API_TOKEN = "wrong-token" }, nil, 3, "token was rejected" }
    case { cmd[1] .. ": no such organization", argv, { SKAFOS_ORG_NAME = "nope" }, nil, 4, "organization 'nope'" }
    case { cmd[1] .. ": no such app", argv, { SKAFOS_APP_NAME = "nope" }, nil, 4, "app 'nope'" }
    if not cmd.org_app_only then
      case { cmd[1] .. ": no such model", argv, { SKAFOS_MODEL_NAME = "nope" }, nil, 4, "model 'nope'" }
    end
    case { cmd[1] .. ": API down after retries", argv, nil,
      { { role = "api", times = -1, action = { type = "status", status = 503 } } }, 6, "503" }
    case { cmd[1] .. ": API not reachable", argv, { SKAFOS_API_URL = "http://127.0.0.1:9/v2" }, nil, 6,
      "connect" }
    case { cmd[1] .. ": URL in clear to another host", argv, { SKAFOS_API_URL = "http://example.com/v2" }, nil, 2,
      "travel in clear" }
    case { cmd[1] .. ": unsupported scheme", argv, { SKAFOS_API_URL = "ftp://example.com/v2" }, nil, 2,
      "scheme ftp is not supported" }
  end

  -- missing version or environment
  case { "fetch: no such version", { "fetch", "--version", "999", "-o", "x.zip" }, nil, nil, 4,
    "version 999 not found" }
  case { "deploy: no such version", { "deploy", "--version", "999" }, nil, nil, 4, "version 999 not found" }
  case { "deploy: no such environment", { "deploy", "--env", "staging" }, nil, nil, 4,
    "environment 'staging' not found" }
  case { "fetch: a model with no versions", { "fetch" }, { SKAFOS_MODEL_NAME = "empty-model" }, nil, 4,
    "has no versions" }
  -- conflict
  case { "models create: exists", { "models", "create", "demo-model" }, nil, nil, 5, "" }
  case { "publish: an upload pending", { "publish", "m.bin" }, nil,
    { { role = "api", method = "POST", action = { type = "status", status = 409,
      body = '{"error": "an upload is pending"}' } } }, 5, "pending" }
  -- network or storage after retries
  case { "fetch: storage down", { "fetch", "-o", "x.zip" }, nil,
    { { role = "storage", method = "GET", times = -1, action = { type = "status", status = 503 } } }, 6, "503" }
  case { "fetch: body cut short every time", { "fetch", "-o", "x.zip" }, nil,
    { { role = "storage", method = "GET", times = -1, action = { type = "truncate", after_bytes = 1000 } } }, 6, "" }
  case { "publish: storage down", { "publish", "m.bin" }, nil,
    { { role = "storage", method = "PUT", times = -1, action = { type = "status", status = 503 } } }, 6,
    "left unfinished" }
  case { "fetch: redirect to a file: URL", { "fetch", "-o", "x.zip" }, nil,
    { { role = "download", times = -1, action = { type = "status", status = 302,
      headers = { Location = "file:///etc/passwd" } } } }, 6, "not an http%(s%) URL" }
  case { "fetch: redirect to ftp", { "fetch", "-o", "x.zip" }, nil,
    { { role = "download", times = -1, action = { type = "status", status = 302,
      headers = { Location = "ftp://example.com/x.zip" } } } }, 6, "not an http%(s%) URL" }
  -- integrity
  case { "publish: storage answers another ETag", { "publish", "m.bin" }, nil,
    { { role = "storage", method = "PUT", times = -1, action = { type = "etag" } } }, 7, "ETag" }

  for _, c in ipairs(cases) do
    it(("%s: exit %d"):format(c[1], c[5]), function()
      for _, f in ipairs(c[4] or {}) do emu:fault(f) end
      local r = run(c[2], c[3])
      assert.are.equal(c[5], r.code, r.stderr)
      assert.matches(c[6], r.stderr)
      -- skafos's own message is there, on a line of its own
      assert.is_truthy(r.stderr:find("^skafos: ") or r.stderr:find("\nskafos: "), r.stderr)
    end)
  end

  it("local input problems are exit 2 and found before any request", function()
    emu:clear_requests()
    os.execute("mkdir -p " .. proc.quote(dir .. "/empty") .. " " .. proc.quote(dir .. "/Pkg"))
    proc.write(dir .. "/Pkg/w.bin", "w")
    os.execute("cd " .. proc.quote(dir) .. " && ln -s ../Pkg Pkg/loop && ln -s nowhere dangling && mkfifo fifo")
    for _, c in ipairs {
      { { "publish", "missing.bin" }, "no such file or directory: missing%.bin" },
      { { "publish", "empty" }, "holds no files" },
      { { "publish", "Pkg" }, "loops back" },
      { { "publish", "dangling" }, "broken link" },
      { { "publish", "fifo" }, "not a file or directory" },
      { { "publish", "-m", ("x"):rep(300), "m.bin" }, "255" },
      { { "fetch", "--version", "abc" }, "bad version" },
      { { "deploy", "--version", "abc" }, "bad version" },
    } do
      local r = run(c[1])
      assert.are.equal(2, r.code, table.concat(c[1], " ") .. ": " .. r.stderr)
      assert.matches(c[2], r.stderr)
    end
    local log = emu:requests()
    assert.are.equal(0, #log.api + #log.download + #log.storage)
  end)

  it("an output that cannot be written is exit 2, found before the download", function()
    os.execute("mkdir -p " .. proc.quote(dir .. "/ro"))
    if not os.execute("mount -t tmpfs -o ro,size=1m tmpfs " .. proc.quote(dir .. "/ro") .. " 2>/dev/null") then
      pending("cannot mount a read-only tmpfs here")
      return
    end
    emu:clear_requests()
    local r = run { "fetch", "-o", "ro/x.zip" }
    assert.are.equal(2, r.code, r.stderr)
    assert.matches("ro/x%.zip", r.stderr)
    assert.matches("[Rr]ead%-only", r.stderr)
    assert.are.equal(0, #emu:requests().storage)
    r = run { "fetch", "--unzip", "ro/out" }
    assert.are.equal(2, r.code, r.stderr)
    assert.are.equal(0, #emu:requests().storage)
  end)

  it("a damaged archive is exit 7", function()
    -- a version whose bytes were damaged after upload
    proc.write(dir .. "/raw.lua", [[
local s = assert(require("skafos.config").resolve {})
local c = require("skafos.api").new(s)
local v = assert(c:create_version("demo-model.zip"))
assert(require("skafos.s3").put(v.presigned_url, "bad.zip"))
print(assert(c:finalize(v.model_version_id, v.filepath)).version)
]])
    assert.are.equal(0, os.execute(("cd %s && python3 -c %s"):format(proc.quote(dir), proc.quote([[
import zipfile
with zipfile.ZipFile("bad.zip", "w") as z:
    z.writestr("w.bin", "stored weights " * 100)
data = bytearray(open("bad.zip", "rb").read())
data[100] ^= 0xFF
open("bad.zip", "wb").write(data)
]]))) and 0 or 1)
    local r = run({ "run", "raw.lua" }, { SKAFOS_MODEL_NAME = "empty-model" })
    assert.are.equal(0, r.code, r.stderr)
    r = run({ "fetch", "-o", "x.zip" }, { SKAFOS_MODEL_NAME = "empty-model" })
    assert.are.equal(7, r.code, r.stderr)
    assert.matches("CRC", r.stderr)
    assert.is_nil(proc.read(dir .. "/x.zip"))
  end)
end)
