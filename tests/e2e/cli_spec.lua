-- The command line as a contract, as a script or CI pipeline uses it: one JSON document on
-- stdout for success and for failure, with lists always arrays, keys in a stable order and
-- `/` left alone; messages on stderr.
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local TOKEN = e2e.TOKEN

describe("cli contract", function()
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

  local function skafos(args, extra_env)
    return e2e.skafos(emu, dir, args, extra_env)
  end

  -- the keys of every object in a JSON text, in the order they appear
  local function key_order(text)
    local keys = {}
    for k in text:gmatch('"([%w_]+)":') do keys[#keys + 1] = k end
    return keys
  end

  local function api_requests()
    return #emu:requests().api
  end

  describe("inputs", function()
    it("refuses an empty directory unless --allow-empty, in --dry-run as in the real run", function()
      os.execute("mkdir -p " .. proc.quote(dir .. "/Empty.mlpackage/Data"))
      for _, extra in ipairs { {}, { "--dry-run" } } do
        local argv = { "publish", "Empty.mlpackage" }
        for _, a in ipairs(extra) do argv[#argv + 1] = a end
        local r = skafos(argv)
        assert.are.equal(2, r.code, r.stderr)
        assert.matches("nothing to publish in Empty%.mlpackage: the directory holds no files %(pass %-%-allow%-empty",
          r.stderr)
      end
      assert.are.equal(0, api_requests())
      local r = skafos { "publish", "--json", "--allow-empty", "Empty.mlpackage" }
      assert.are.equal(0, r.code, r.stderr)
    end)

    it("publishes '.' under the directory's real name, as --dry-run says", function()
      proc.write(dir .. "/Foo.mlpackage/Data/w.bin", "weights")
      proc.write(dir .. "/Foo.mlpackage/Manifest.json", "{}")
      local cwd = dir .. "/Foo.mlpackage"
      local function here(argv)
        return e2e.skafos(emu, dir, argv, nil, cwd)
      end
      local plan = proc.json(here({ "publish", "--dry-run", "--json", "." }).stdout)
      assert.are.equal("Foo.mlpackage", plan.inputs[1].name)
      assert.are.equal(2, plan.files)
      local r = here { "publish", "--json", "." }
      assert.are.equal(0, r.code, r.stderr)
      r = skafos { "fetch", "-o", "back.zip" }
      assert.are.equal(0, r.code, r.stderr)
      local listing = io.popen("unzip -Z1 " .. proc.quote(dir .. "/back.zip")):read("a")
      assert.are.equal("Foo.mlpackage/\nFoo.mlpackage/Data/\nFoo.mlpackage/Data/w.bin\nFoo.mlpackage/Manifest.json\n",
        listing)
    end)

    it("follows one rule for links inside an input, the same in --dry-run, before any request", function()
      proc.write(dir .. "/Pkg/w.bin", "weights")
      proc.write(dir .. "/outside.txt", "secret")
      -- inside: stored as the file it points to
      os.execute("ln -s w.bin " .. proc.quote(dir .. "/Pkg/alias.bin"))
      local plan = proc.json(skafos({ "publish", "--dry-run", "--json", "Pkg" }).stdout)
      assert.are.equal(2, plan.files)
      for _, c in ipairs {
        { "ln -s ../outside.txt Pkg/out.txt", "symlink Pkg/out%.txt points outside" },
        { "ln -s ../Pkg Pkg/loop", "symlink Pkg/loop loops back" },
        { "ln -s nowhere Pkg/broken", "symlink Pkg/broken is broken" },
      } do
        os.execute("cd " .. proc.quote(dir) .. " && " .. c[1])
        for _, extra in ipairs { "--dry-run", "--json" } do
          local r = skafos { "publish", extra, "Pkg" }
          assert.are.equal(2, r.code, r.stderr)
          assert.matches(c[2], r.stderr)
        end
        os.execute("cd " .. proc.quote(dir) .. " && rm " .. c[1]:match("(%S+)$"))
      end
      local r = skafos { "publish", "broken-link" }
      assert.are.equal(2, r.code)
      assert.matches("no such file or directory: broken%-link", r.stderr)
      os.execute("ln -s nowhere " .. proc.quote(dir .. "/broken-link"))
      r = skafos { "publish", "broken-link" }
      assert.are.equal(2, r.code)
      assert.matches("broken%-link is a symbolic link to nothing", r.stderr)
      assert.are.equal(0, api_requests())
    end)

    it("finds a missing organization, app or model or a bad token before compressing anything", function()
      os.execute("head -c 2000000 /dev/urandom > " .. proc.quote(dir .. "/big.bin"))
      for _, c in ipairs {
        { { SKAFOS_MODEL_NAME = "no-such-model" }, 4,
          "model 'no%-such%-model' not found in app 'demo%-app'.*skafos summary" },
        { { SKAFOS_APP_NAME = "no-app" }, 4, "app 'no%-app' not found" },
        { { SKAFOS_API_TOKEN = "wrong-token" }, 3, "token was rejected" },
      } do
        local r = skafos({ "publish", "--progress", "plain", "big.bin" }, c[1])
        assert.are.equal(c[2], r.code, r.stderr)
        assert.matches(c[3], r.stderr)
      end
      local posts = 0
      for _, q in ipairs(emu:requests().api) do if q.method == "POST" then posts = posts + 1 end end
      assert.are.equal(0, posts)
      assert.are.equal(0, #emu:requests().storage)
    end)
  end)

  describe("login", function()
    it("checks a token from stdin, keeps it private, uses it, says where it comes from and forgets it", function()
      local no_env = { SKAFOS_API_TOKEN = "" }
      local r = proc.skafos({ "login" }, { cwd = dir, stdin = "wrong-token\n", env = {
        SKAFOS_API_URL = emu.api, HOME = dir, XDG_CONFIG_HOME = dir .. "/xdg" }, unset = { "SKAFOS_API_TOKEN" } })
      assert.are.equal(3, r.code, r.stderr)
      assert.is_nil(proc.read(dir .. "/xdg/skafos/token"))
      r = proc.skafos({ "login" }, { cwd = dir, stdin = TOKEN .. "\n", env = {
        SKAFOS_API_URL = emu.api, HOME = dir, XDG_CONFIG_HOME = dir .. "/xdg" }, unset = { "SKAFOS_API_TOKEN" } })
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Logged in to .*: the token sees 2 organizations%. Kept in .*/xdg/skafos/token", r.stdout)
      assert.is_nil((r.stdout .. r.stderr):find(TOKEN, 1, true))
      assert.are.equal(TOKEN .. "\n", proc.read(dir .. "/xdg/skafos/token"))
      local modes = io.popen("stat -c %a " .. proc.quote(dir .. "/xdg/skafos") .. " "
        .. proc.quote(dir .. "/xdg/skafos/token")):read("a")
      assert.are.equal("700\n600\n", modes)
      -- used when nothing else gives a token
      r = skafos({ "versions" }, no_env)
      assert.are.equal(0, r.code, r.stderr)
      r = skafos({ "auth", "status" }, no_env)
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Token from file .*/xdg/skafos/token %(skafos login%)\n  accepted by ", r.stdout)
      assert.is_nil(r.stdout:find(TOKEN, 1, true))
      r = skafos({ "auth", "status", "--json" }, { SKAFOS_API_TOKEN = "wrong-token" })
      assert.are.equal(3, r.code)
      assert.is_false(proc.json(r.stdout).accepted)
      r = skafos({ "logout" }, no_env)
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("Logged out: removed", r.stdout)
      assert.is_nil(proc.read(dir .. "/xdg/skafos/token"))
      r = skafos({ "versions" }, no_env)
      assert.are.equal(3, r.code)
      assert.matches("run 'skafos login'", r.stderr)
    end)

    it("reads the token at a prompt without echoing it", function()
      -- a real terminal: python's pty runs skafos login, answers the prompt, reads the screen
      local script = proc.write(dir .. "/drive_login.py", ([[
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ.update({"SKAFOS_API_URL": %q, "HOME": %q, "XDG_CONFIG_HOME": %q})
    os.environ.pop("SKAFOS_API_TOKEN", None)
    os.execv(%q, [%q, "login"])
import select, signal
seen = b""
def read_some():
    # a guard against a hang, not a measure of speed: a minute of silence fails the test
    if not select.select([fd], [], [], 60)[0]:
        os.kill(pid, signal.SIGKILL)
        sys.exit("no answer from skafos login in 60 s: " + seen.decode(errors="replace"))
    try:
        return os.read(fd, 1024)
    except OSError:
        return b""
while b"not shown" not in seen:
    seen += read_some()
os.write(fd, %q.encode() + b"\n")
while True:
    chunk = read_some()
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
]]):format(emu.api, dir, dir .. "/xdg", proc.bin, proc.bin, TOKEN))
      local r = proc.run { "python3", script }
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("Paste your Skafos API token", r.stdout)
      assert.matches("Logged in to", r.stdout)
      assert.is_nil(r.stdout:find(TOKEN, 1, true))
      assert.are.equal(TOKEN .. "\n", proc.read(dir .. "/xdg/skafos/token"))
    end)
  end)

  describe("retries", function()
    local function fail_once(method, suffix, status)
      emu:fault { role = "api", method = method, path_prefix = "/v2/organizations/demo-org/apps/demo-app" .. suffix,
        times = 1, action = { type = "status", status = status, body = '{"error": "try later"}' } }
    end

    it("every command retries what is safe to retry and says so the same way", function()
      proc.write(dir .. "/m.bin", "w")
      local pub = proc.json(skafos({ "publish", "--json", "m.bin" }).stdout)
      for _, c in ipairs {
        { "GET", "/models/demo-model/model_versions", { "versions" }, "list versions" },
        { "POST", "/models/demo-model/deploy", { "deploy", "--version", tostring(pub.version) }, "deploy" },
        { "GET", "/models/demo-model/environment_groups", { "environments" }, "list environments" },
        { "POST", "/models", { "models", "create", "retried-model" }, "create model" },
      } do
        fail_once(c[1], c[2], 503)
        local r = skafos(c[3])
        assert.are.equal(0, r.code, r.stderr)
        assert.matches("retrying " .. c[4] .. " in %d+%.%ds %(attempt 2 of 5%): .*HTTP 503", r.stderr)
      end
    end)

    local function records()
      local n = 0
      for _ in pairs(emu:state().model_versions) do n = n + 1 end
      return n
    end

    it("repeats the request that creates a version only when the server never processed it", function()
      proc.write(dir .. "/m.bin", "w")
      local before = records()
      fail_once("POST", "/models/demo-model/model_versions", 503)
      local r = skafos { "publish", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("retrying create model version", r.stderr)
      assert.are.equal(before + 1, records())
      -- a 500 may come after the record was made: not repeated, so never a duplicate
      fail_once("POST", "/models/demo-model/model_versions", 500)
      r = skafos { "publish", "m.bin" }
      assert.are.equal(6, r.code, r.stderr)
      assert.is_nil(r.stderr:find("retrying", 1, true))
      assert.are.equal(before + 1, records())
    end)
  end)

  describe("hooks", function()
    local function posts()
      local n = 0
      for _, q in ipairs(emu:requests().api) do
        if q.method == "POST" and q.path:match("/model_versions$") then n = n + 1 end
      end
      return n
    end

    local function config(body)
      proc.write(dir .. "/.skafos/config.lua", body)
      proc.write(dir .. "/m.bin", "weights")
    end

    it("tells a policy's refusal from a bug in the hook, naming the hook and its file:line", function()
      config([[
return {
  before_create = function(plan)
    if not plan.description then error("describe your change with -m", 0) end
  end,
}]])
      local r = skafos { "publish", "m.bin" }
      assert.are.equal(1, r.code, r.stderr)
      assert.matches("publish refused by policy %(before_create, [^ ]*/%.skafos/config%.lua:2%): describe your change",
        r.stderr)
      config([[
return {
  before_create = function(plan)
    return plan.nothing.here
  end,
}]])
      r = skafos { "publish", "m.bin" }
      assert.are.equal(1, r.code, r.stderr)
      assert.matches("the before_create hook %([^ ]*/%.skafos/config%.lua:2%) failed: [^ ]*/%.skafos/config%.lua:3: "
        .. "attempt to index a nil value", r.stderr)
      assert.is_nil(r.stderr:find("refused by policy", 1, true))
      config([[
return { compression = function(entry) return entry.size.bytes end }]])
      r = skafos { "publish", "--dry-run", "m.bin" }
      assert.are.equal(1, r.code, r.stderr)
      assert.matches("the compression hook %([^ ]*/%.skafos/config%.lua:1%) failed", r.stderr)
      assert.are.equal(0, posts())
    end)

    it("never hides a published version behind a failing after_publish hook (exit 8)", function()
      config([[
return { after_publish = function(result) error("chat webhook unreachable") end }]])
      local r = skafos { "publish", "--json", "m.bin" }
      assert.are.equal(8, r.code, r.stderr)
      local doc = proc.json(r.stdout)
      assert.is_true(math.type(doc.version) == "integer")
      assert.matches("after_publish", doc.hook_error.message)
      assert.matches("warning: version " .. doc.version .. " is published, but the after_publish hook "
        .. "%([^ ]*/%.skafos/config%.lua:1%) failed: .*chat webhook unreachable", r.stderr)
      assert.are.equal(1, posts())
      r = skafos { "publish", "m.bin" }
      assert.are.equal(8, r.code)
      assert.matches("^Published demo%-org/demo%-app/demo%-model version %d+", r.stdout)
    end)
  end)

  describe("progress", function()
    local function published(bytes)
      os.execute(("head -c %d /dev/urandom > %s"):format(bytes, proc.quote(dir .. "/big.bin")))
      local r = skafos { "publish", "--json", "--level", "store", "big.bin" }
      assert.are.equal(0, r.code, r.stderr)
      return proc.json(r.stdout)
    end

    it("draws a bar that fits the terminal's width and redraws it in place", function()
      published(3000000)
      emu:fault { role = "storage", method = "GET", action = { type = "stall", after_bytes = 1000000, ms = 400 } }
      local r = skafos({ "fetch", "--progress", "bar", "-o", "x.zip" }, { COLUMNS = "40" })
      assert.are.equal(0, r.code, r.stderr)
      local draws = 0
      for segment in r.stderr:gmatch("\r\27%[K([^\r\n]*)") do
        draws = draws + 1
        assert.is_true(#segment <= 39, ("a bar line of %d columns: %q"):format(#segment, segment))
      end
      assert.is_true(draws >= 2)
      -- cleared at the end: the last thing on the line is the clearing sequence
      assert.matches("\r\27%[K$", r.stderr)
    end)

    it("prints at most one plain line per tenth, and the error on a line of its own after Ctrl-C", function()
      published(3000000)
      local r = skafos({ "fetch", "--progress", "plain", "-o", "x.zip" })
      assert.are.equal(0, r.code, r.stderr)
      local lines = select(2, r.stderr:gsub("\n", ""))
      assert.is_true(lines <= 10, r.stderr)
      -- interrupted while the bar is drawn: the message starts on a clean line
      os.remove(dir .. "/x.zip")
      emu:fault { role = "storage", method = "GET", action = { type = "stall", after_bytes = 500000, ms = 5000 } }
      local code, err = e2e.signalled(e2e.env(emu, dir), dir, { "fetch", "--progress", "bar", "-o", "x.zip" },
        "INT", 1.5)
      assert.are.equal(130, code, err)
      assert.matches("\r\27%[Kskafos: [^\n]*interrupted", err)
      -- what was kept, and how to go on
      assert.matches("x%.zip%.download%.part", err)
      assert.matches("run the same command to resume", err)
      assert.is_not_nil(proc.read(dir .. "/x.zip.download.part"))
    end)
  end)

  describe("interrupted publish", function()
    it("says which record was left unfinished and what that means", function()
      proc.write(dir .. "/m.bin", ("weights"):rep(1000))
      emu:fault { role = "storage", method = "PUT", action = { type = "delay", ms = 5000 } }
      local function interrupted()
        return e2e.signalled(e2e.env(emu, dir), dir, { "publish", "m.bin" }, "INT", 1.5)
      end
      local code, err = interrupted()
      assert.are.equal(130, code, err)
      assert.matches("skafos: interrupted; model version record %d+ was left unfinished: it is never listed or "
        .. "served; publish again", err)
      -- and before anything is sent
      emu:fault { role = "api", method = "GET", action = { type = "delay", ms = 5000 } }
      code, err = interrupted()
      assert.are.equal(130, code, err)
      assert.matches("interrupted before anything was sent; nothing was published", err)
    end)
  end)

  describe("listings", function()
    it("versions takes --limit and keeps each version on one line whatever its description", function()
      proc.write(dir .. "/m.bin", "w")
      for i = 1, 3 do
        local d = i == 2 and ("a very long description\nover two lines " .. ("and on "):rep(30)) or ("v" .. i)
        assert.are.equal(0, skafos({ "publish", "-m", d, "m.bin" }).code)
      end
      local r = skafos { "versions", "--limit", "3" }
      assert.are.equal(0, r.code, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(4, #lines, r.stdout) -- a header and three versions
      assert.matches("a very long description over two lines and on", lines[3])
      assert.matches("…$", lines[3])
      r = skafos { "versions", "--limit", "2", "--json" }
      local list = proc.json(r.stdout)
      assert.are.equal(2, #list)
      assert.matches("\nover two lines", list[1].description)
      assert.are.equal("v3", list[2].description)
      r = skafos { "versions", "--limit", "0" }
      assert.are.equal(2, r.code)
    end)
  end)

  describe("from C", function()
    it("a host reads a run's result and error without parsing the output", function()
      local example = assert(os.getenv("SKAFOS_EMBED_EXAMPLE"))
      proc.write(dir .. "/m.bin", "weights")
      local function run(argv, extra)
        return proc.run(argv, { cwd = dir, env = e2e.env(emu, dir, extra), unset = e2e.UNSET })
      end
      local r = run { example, "publish", "--json", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      local pub = proc.json(r.stdout)
      assert.matches("embed_example: version " .. pub.version .. "\n", r.stderr)
      r = run({ example, "versions" }, { SKAFOS_MODEL_NAME = "nope" })
      assert.are.equal(4, r.code)
      assert.matches("embed_example: NOT_FOUND %(exit 4%): model 'nope' not found", r.stderr)
    end)

    it("gets the version and the hook's error together when after_publish fails", function()
      proc.write(dir .. "/m.bin", "w")
      proc.write(dir .. "/lib.lua", [[
local skafos = require "skafos"
local v, err = skafos.publish { files = { "m.bin" },
  hooks = { after_publish = function() error("webhook down") end } }
print(math.type(v.version), err.code, err.exit, tostring(err):match("webhook down") ~= nil)
]])
      local r = skafos { "run", "lib.lua" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("integer\tVETO\t8\ttrue\n", r.stdout)
    end)
  end)

  describe("scripting", function()
    it("runs the hooks of every source in order, and any refusal stops the publish", function()
      proc.write(dir .. "/m.bin", "w")
      local function hook(tag, veto)
        return ([[before_create = function() io.stderr:write("%s\n") %s end,
          after_publish = function() io.stderr:write("after %s\n") end]]):format(tag,
          veto and ('error("' .. tag .. ' says no", 0)') or "", tag)
      end
      proc.write(dir .. "/xdg/skafos/config.lua", "return { " .. hook("user") .. " }")
      proc.write(dir .. "/.skafos/config.lua", "return { " .. hook("project") .. " }")
      proc.write(dir .. "/lib.lua", [[
local skafos = require "skafos"
local v, err = skafos.publish { files = { "m.bin" }, hooks = { ]] .. hook("call") .. [[ } }
print(v and v.version, err and err.code)
]])
      local r = skafos { "run", "lib.lua" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("^user\nproject\ncall\nafter user\nafter project\nafter call\n", r.stderr)
      -- a refusal in the middle stops the rest and the publish
      proc.write(dir .. "/.skafos/config.lua", "return { " .. hook("project", true) .. " }")
      emu:clear_requests()
      r = skafos { "run", "lib.lua" }
      assert.matches("^user\nproject\n$", r.stderr)
      assert.matches("nil\tVETO", r.stdout)
      for _, q in ipairs(emu:requests().api) do assert.are_not.equal("POST", q.method) end
    end)

    it("shows every file inside directories to compression and before_create", function()
      proc.write(dir .. "/Pkg.mlpackage/Data/weights.bin", ("w"):rep(3000))
      proc.write(dir .. "/Pkg.mlpackage/Manifest.json", "{}")
      proc.write(dir .. "/.skafos/config.lua", [[return {
  compression = function(e)
    io.stderr:write("compression ", e.name, " ", e.bytes, " ", e.type, "\n")
    if e.name:match("%.bin$") then return "store" end
  end,
  before_create = function(plan)
    plan.each_file(function(f) io.stderr:write("plan ", f.name, " ", f.bytes, "\n") end)
  end,
}]])
      local r = skafos { "publish", "--json", "--level", "9", "Pkg.mlpackage" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("compression Pkg%.mlpackage/Data/weights%.bin 3000 file\n", r.stderr)
      assert.matches("compression Pkg%.mlpackage/Manifest%.json 2 file\n", r.stderr)
      assert.matches("plan Pkg%.mlpackage/Data/weights%.bin 3000\n", r.stderr)
      -- the hook's choice is what the archive holds, and the hook ran once per file
      assert.are.equal(1, select(2, r.stderr:gsub("compression Pkg%.mlpackage/Data/weights%.bin", "")))
      assert.are.equal(0, skafos({ "fetch", "-o", "back.zip" }).code)
      local listing = io.popen("unzip -v " .. proc.quote(dir .. "/back.zip")):read("a")
      assert.matches("3000%s+Stored%s+3000[^\n]*Pkg%.mlpackage/Data/weights%.bin", listing)
      assert.matches("Defl:%a[^\n]*Pkg%.mlpackage/Manifest%.json", listing)
    end)

    it("lets an edited copy of the publish workflow add a step between upload and finalize", function()
      proc.write(dir .. "/m.bin", "w")
      local src = skafos({ "scripts", "dump", "publish" }).stdout
      local edited, n = src:gsub("(local put = need%(publish%.upload%(job, record, archive%)%)[^\n]*\n)",
        "%1    io.stderr:write(\"checked between upload and finalize: \", record.model_version_id, \"\\n\")\n")
      assert.are.equal(1, n)
      proc.write(dir .. "/.skafos/scripts/publish.lua", edited)
      local r = skafos { "publish", "--json", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      local pub = proc.json(r.stdout)
      assert.matches("checked between upload and finalize: " .. pub.model_version_id .. "\n", r.stderr)
    end)

    it("lets an edited copy of the fetch workflow add a step between verify and extract", function()
      proc.write(dir .. "/m.bin", ("weights"):rep(1000))
      local pub = e2e.publish(emu, dir, { "m.bin" })
      local src = skafos({ "scripts", "dump", "fetch" }).stdout
      -- the step sees what verify found, before the archive is in place (the tree of an
      -- extraction streamed as the archive arrived is: verify finished it)
      local step = [[
    local fs = require "skafos.fs"
    io.stderr:write(("checked version %d: %d entries; in place: %s %s\n"):format(job.version,
      job.verified.entries, tostring(fs.lstat(job.target) ~= nil),
      tostring(job.unzip_dir ~= nil and fs.lstat(job.unzip_dir) ~= nil)))
]]
      local edited, n = src:gsub("(\n *need%(fetch%.verify%(job%)%)[^\n]*\n)", function(line) return line .. step end)
      assert.are.equal(1, n)
      proc.write(dir .. "/.skafos/scripts/fetch.lua", edited)
      local r = skafos { "fetch", "-o", "back.zip", "--unzip", "out" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("checked version " .. pub.version .. ": 1 entries; in place: false true\n", r.stderr)
      assert.are.equal(("weights"):rep(1000), proc.read(dir .. "/out/m.bin"))
      assert.are.equal(pub.bytes, #proc.read(dir .. "/back.zip"))
      -- without -o, extraction is streamed: the tree goes into place with verify
      r = skafos { "fetch", "--unzip", "streamed" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("checked version " .. pub.version .. ": 1 entries; in place: false true\n", r.stderr)
      assert.are.equal(("weights"):rep(1000), proc.read(dir .. "/streamed/m.bin"))
      r = skafos { "fetch", "-o", "only.zip" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("checked version " .. pub.version .. ": 1 entries; in place: false false\n", r.stderr)
      assert.is_not_nil(proc.read(dir .. "/only.zip"))
    end)

    it("fetches an archive it would refuse once the verify step is dropped from a copy", function()
      -- a version whose archive is not a zip at all, uploaded past publish's checks
      proc.write(dir .. "/bad.zip", "not a zip archive")
      proc.write(dir .. "/raw.lua", [[
local s = assert(require("skafos.config").resolve {})
local c = require("skafos.api").new(s)
local v = assert(c:create_version("demo-model.zip"))
assert(require("skafos.s3").put(v.presigned_url, "bad.zip"))
assert(c:finalize(v.model_version_id, v.filepath))
]])
      assert.are.equal(0, skafos({ "run", "raw.lua" }).code)
      local r = skafos { "fetch", "-o", "back.zip" }
      assert.are.equal(7, r.code, r.stderr)
      assert.matches("the downloaded archive was refused", r.stderr)
      assert.is_nil(proc.read(dir .. "/back.zip"))
      local src = skafos({ "scripts", "dump", "fetch" }).stdout
      local edited, n = src:gsub("\n *need%(fetch%.verify%(job%)%)[^\n]*\n", "\n")
      assert.are.equal(1, n)
      proc.write(dir .. "/.skafos/scripts/fetch.lua", edited)
      r = skafos { "fetch", "-o", "back.zip" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("not a zip archive", proc.read(dir .. "/back.zip"))
    end)
  end)

  describe("-q and pipes", function()
    it("prints only the essential result, ready for $(...)", function()
      proc.write(dir .. "/m.bin", ("weights"):rep(1000))
      local r = skafos { "publish", "-q", "m.bin" }
      assert.are.equal(0, r.code, r.stderr)
      local version = r.stdout:match("^(%d+)\n$")
      assert.is_not_nil(version, r.stdout)
      assert.are.equal("", r.stderr)
      r = skafos { "fetch", "-q", "--version", version, "-o", "back.zip" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("back.zip\n", r.stdout)
      r = skafos { "fetch", "-q", "--version", version, "--unzip", "out" }
      assert.are.equal("out\n", r.stdout)
      r = skafos { "versions", "-q" }
      assert.matches("\n" .. version .. "\n$", "\n" .. r.stdout)
      assert.is_nil(r.stdout:find(" ", 1, true))
      r = skafos { "-q", "deploy", "--version", version }
      assert.are.equal(version .. "\n", r.stdout)
      r = skafos { "environments", "-q" }
      assert.are.equal("Dev\nProd\n", r.stdout)
    end)

    it("writes the verified archive to standard output with -o -, and messages to stderr", function()
      proc.write(dir .. "/m.bin", ("weights"):rep(1000))
      local pub = proc.json(skafos({ "publish", "--json", "m.bin" }).stdout)
      local r = skafos { "fetch", "--version", tostring(pub.version), "-o", "-" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(pub.bytes, #r.stdout)
      assert.are.equal("PK\3\4", r.stdout:sub(1, 4))
      assert.matches("Fetched .* to %-", r.stderr)
      proc.write(dir .. "/piped.zip", r.stdout)
      assert.are.equal(pub.sha256, (io.popen("sha256sum " .. proc.quote(dir .. "/piped.zip")):read("a"):match("^%x+")))
      -- nothing left behind: not in the directory, not in TMPDIR
      assert.are.equal("m.bin\npiped.zip\n", io.popen("ls -A " .. proc.quote(dir)):read("a"))
      r = skafos { "fetch", "-o", "-", "--json" }
      assert.are.equal(2, r.code)
      assert.matches("drop one", r.stderr)
    end)
  end)

  describe("--json", function()
    it("prints an empty list as an array", function()
      for _, argv in ipairs { { "versions", "--json" }, { "--json", "versions" } } do
        local r = skafos(argv, { SKAFOS_MODEL_NAME = "empty-model" })
        assert.are.equal(0, r.code, r.stderr)
        assert.are.equal("[]\n", r.stdout)
      end
    end)

    it("prints keys in sorted order, the same in every run, and leaves / unescaped", function()
      local r = skafos { "environments", "--json" }
      assert.are.equal(0, r.code, r.stderr)
      local keys = key_order(r.stdout)
      assert.is_true(#keys > 2)
      local first = {}
      for i = 1, #keys do
        if keys[i] == keys[1] and i > 1 then break end
        first[#first + 1] = keys[i]
      end
      local sorted = table.move(first, 1, #first, 1, {})
      table.sort(sorted)
      assert.are.same(sorted, first)
      for _ = 1, 3 do assert.are.equal(r.stdout, skafos({ "environments", "--json" }).stdout) end
      r = skafos { "config", "--json" }
      assert.matches('"http://127%.0%.0%.1:%d+/v2"', r.stdout)
      assert.is_nil(r.stdout:find("\\/", 1, true))
    end)

    it("prints a failure as one JSON error document on stdout, the message on stderr too", function()
      for _, c in ipairs {
        { { "versions", "--json" }, { SKAFOS_API_TOKEN = "" }, "AUTH", 3 },
        { { "versions", "--json" }, { SKAFOS_MODEL_NAME = "nope" }, "NOT_FOUND", 4 },
        { { "versions", "--json", "--bogus" }, nil, "USAGE", 2 },
        { { "--json", "fetch", "--version", "99" }, nil, "NOT_FOUND", 4 },
        { { "fetch", "--json", "--api-url", "http://example.com/v2" }, nil, "USAGE", 2 },
      } do
        local r = skafos(c[1], c[2])
        assert.are.equal(c[4], r.code, r.stderr)
        assert.are.equal(1, select(2, r.stdout:gsub("\n", "")), r.stdout)
        local doc = proc.json(r.stdout)
        assert.are.equal(c[3], doc.error.code)
        assert.are.equal(c[4], doc.error.exit)
        assert.is_string(doc.error.message)
        assert.matches(doc.error.message:match("^[^\n]*"):sub(1, 30), r.stderr, 1, true)
        assert.are.same({ "error", "code", "exit", "message" }, key_order(r.stdout))
      end
    end)
  end)
end)
