-- The trust boundary, tried as an attacker would: links planted where skafos writes,
-- project code owned by someone else, a token sent in clear or echoed back, two runs on
-- one output, --force aimed at the current directory. Each case is built for real (the
-- suite runs as root in CI, so files are handed to nobody with chown) and checked by what
-- a user would look at afterwards: the exit code, the message, the files, and what the
-- emulator was asked.
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local TOKEN = e2e.TOKEN
local q, sh = proc.quote, e2e.sh

describe("trust", function()
  local emu, dir, cleanup

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
    -- one published version to fetch
    local d, done = proc.tmpdir()
    proc.write(d .. "/labels.txt", ("cat\ndog\n"):rep(500))
    proc.write(d .. "/weights.bin", ("\0\1\2\3"):rep(50000))
    e2e.publish(emu, d, { "labels.txt", "weights.bin" })
    done()
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/home") .. " " .. q(dir .. "/tmp"))
    emu:clear_faults()
    emu:clear_requests()
  end)

  after_each(function() cleanup() end)

  local UNSET = e2e.UNSET

  local function env(extra)
    local e = e2e.env(emu, dir, { HOME = dir .. "/home", TMPDIR = dir .. "/tmp" })
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local function skafos(args, extra_env, cwd)
    return proc.skafos(args, { cwd = cwd or dir, env = env(extra_env), unset = UNSET })
  end

  local function sent(role)
    return #emu:requests()[role]
  end

  local function no_request_sent()
    local log = emu:requests()
    assert.are.equal(0, #log.api, "the API host was asked")
    assert.are.equal(0, #log.download, "the download host was asked")
    assert.are.equal(0, #log.storage, "the storage host was asked")
  end

  describe("files it writes", function()
    local victim

    before_each(function()
      victim = proc.write(dir .. "/victim.txt", "precious\n")
    end)

    -- a link planted at `planted` (relative to dir) must leave the victim as it was
    local function planted_link(planted, args)
      os.execute(("ln -s %s %s"):format(q(victim), q(dir .. "/" .. planted)))
      local r = skafos(args)
      assert.are.equal(2, r.code, r.stderr)
      assert.matches(planted:gsub("%p", "%%%0") .. " is a symbolic link", r.stderr)
      assert.are.equal("precious\n", proc.read(victim))
      assert.are.equal("link", sh("stat -c %F " .. q(dir .. "/" .. planted)):match("symbolic (link)"))
      return r
    end

    it("never writes through a link planted at the part file of fetch -o", function()
      planted_link("out.zip.download.part", { "fetch", "-o", "out.zip" })
      assert.is_nil(proc.read(dir .. "/out.zip"))
      assert.are.equal(0, sent("storage"))
    end)

    it("never writes through a link planted at the default ./<model>.zip.download.part", function()
      planted_link("demo-model.zip.download.part", { "fetch" })
      assert.are.equal(0, sent("storage"))
    end)

    it("never writes through a link planted at the ETag file beside the part", function()
      planted_link("out.zip.download.part.etag", { "fetch", "-o", "out.zip" })
    end)

    it("never writes through a link planted at the lock file", function()
      planted_link("out.zip.download.lock", { "fetch", "-o", "out.zip" })
      no_request_sent()
    end)

    it("refuses a FIFO at the part file without hanging", function()
      os.execute("mkfifo " .. q(dir .. "/out.zip.download.part"))
      local r = skafos { "fetch", "-o", "out.zip" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("out%.zip%.download%.part is a FIFO", r.stderr)
    end)

    it("refuses a part file that belongs to another user", function()
      proc.write(dir .. "/out.zip.download.part", "PK planted")
      os.execute("chown nobody " .. q(dir .. "/out.zip.download.part"))
      local r = skafos { "fetch", "-o", "out.zip" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("out%.zip%.download%.part belongs to another user", r.stderr)
      assert.are.equal("PK planted", proc.read(dir .. "/out.zip.download.part"))
      assert.is_nil(proc.read(dir .. "/out.zip"))
    end)

    it("never extracts into a link planted at the partial directory or at the --unzip directory", function()
      proc.write(dir .. "/elsewhere/keep.txt", "keep")
      os.execute(("ln -s %s %s"):format(q(dir .. "/elsewhere"), q(dir .. "/.out.skafos-partial")))
      local r = skafos { "fetch", "--unzip", "out" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("%.out%.skafos%-partial is a symbolic link", r.stderr)
      os.remove(dir .. "/.out.skafos-partial")
      os.execute(("ln -s %s %s"):format(q(dir .. "/elsewhere"), q(dir .. "/out")))
      r = skafos { "fetch", "--unzip", "out", "--force" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("out exists and is not a directory", r.stderr)
      assert.are.same({ "keep.txt" }, (function()
        local names = {}
        for n in sh("ls -A " .. q(dir .. "/elsewhere")):gmatch("[^\n]+") do names[#names + 1] = n end
        return names
      end)())
    end)

    it("replaces a link planted at the -o target itself with --force, never writing through it", function()
      os.execute(("ln -s %s %s"):format(q(victim), q(dir .. "/out.zip")))
      local r = skafos { "fetch", "-o", "out.zip", "--force" }
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("precious\n", proc.read(victim))
      assert.are.equal("regular file", sh("stat -c %F " .. q(dir .. "/out.zip")):match("^(.-)\n"))
      assert.are.equal("", sh("unzip -tq " .. q(dir .. "/out.zip") .. " >/dev/null 2>&1 || echo bad"))
    end)
  end)

  describe("archives with names unsafe to extract", function()
    it("are kept intact by fetch -o with a warning, and refused by --unzip", function()
      -- uploaded past publish's checks, as another client could, to a model of its own
      local EMPTY = { SKAFOS_MODEL_NAME = "empty-model" }
      assert.are.equal("", sh(("cd %s && python3 -c '%s'"):format(q(dir), [[
import zipfile
with zipfile.ZipFile("evil.zip", "w") as z:
    z.writestr("ok.txt", "fine")
    z.writestr("../escape.txt", "outside")
]])))
      local r = skafos({ "publish", "evil.zip" }, EMPTY)
      assert.are.equal(7, r.code, r.stderr)
      assert.matches("evil%.zip cannot be published as it is: .*%.%./escape%.txt", r.stderr)
      proc.write(dir .. "/raw.lua", [[
local s = assert(require("skafos.config").resolve {})
local c = require("skafos.api").new(s)
local v = assert(c:create_version("demo-model.zip"))
assert(require("skafos.s3").put(v.presigned_url, "evil.zip"))
print(assert(c:finalize(v.model_version_id, v.filepath)).version)
]])
      r = skafos({ "run", "raw.lua" }, EMPTY)
      assert.are.equal(0, r.code, r.stderr)
      r = skafos({ "fetch", "-o", "kept.zip", "--json" }, EMPTY)
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("warning: the archive is intact and kept, but extracting it would be unsafe: .*%.%./escape",
        r.stderr)
      assert.matches("%.%./escape%.txt", proc.json(r.stdout).unsafe)
      assert.are.equal(proc.read(dir .. "/evil.zip"), proc.read(dir .. "/kept.zip"))
      r = skafos({ "fetch", "-o", "k2.zip", "--unzip", "out" }, EMPTY)
      assert.are.equal(7, r.code, r.stderr)
      assert.is_nil(proc.read(dir .. "/k2.zip"))
      assert.is_nil(proc.read(dir .. "/escape.txt"))
      r = skafos({ "fetch", "--unzip", "out" }, EMPTY)
      assert.are.equal(7, r.code, r.stderr)
      assert.is_nil(proc.read(dir .. "/escape.txt"))
    end)
  end)

  describe("two runs on one output", function()
    -- starts both at once and returns their exit codes
    local function race(args)
      local lines = {}
      for i = 1, 2 do
        local parts = { "cd " .. q(dir) .. " && env" }
        for _, name in ipairs(UNSET) do parts[#parts + 1] = "-u " .. name end
        for k, v in pairs(env()) do parts[#parts + 1] = q(k .. "=" .. v) end
        parts[#parts + 1] = q(proc.bin)
        for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
        lines[i] = ("(%s >%s 2>%s; echo $? >%s) &"):format(table.concat(parts, " "), q(dir .. "/out" .. i),
          q(dir .. "/err" .. i), q(dir .. "/rc" .. i))
      end
      os.execute(table.concat(lines, " ") .. " wait")
      return tonumber(proc.read(dir .. "/rc1")), tonumber(proc.read(dir .. "/rc2"))
    end

    it("lets exactly one of two simultaneous fetches to the same -o succeed, again and again", function()
      -- a slow storage host keeps the first run busy while the second starts
      emu:fault { role = "storage", method = "GET", times = -1, action = { type = "delay", ms = 400 } }
      for _ = 1, 3 do
        os.remove(dir .. "/model.zip")
        local a, b = race { "fetch", "-o", "model.zip" }
        local codes = { a, b }
        table.sort(codes)
        assert.are.same({ 0, 5 }, codes, proc.read(dir .. "/err1") .. proc.read(dir .. "/err2"))
        local loser = a == 5 and 1 or 2
        assert.matches("another skafos is fetching to model%.zip", proc.read(dir .. "/err" .. loser))
        assert.are.equal("", sh("unzip -tq " .. q(dir .. "/model.zip") .. " >/dev/null 2>&1 || echo bad"))
        assert.is_nil(proc.read(dir .. "/model.zip.download.lock"))
        assert.is_nil(proc.read(dir .. "/model.zip.download.part"))
      end
    end)
  end)

  describe("--force", function()
    it("never removes the current directory, a parent of it, HOME or / however they are spelled", function()
      proc.write(dir .. "/work/keep.txt", "keep")
      local cwd = dir .. "/work"
      local cases = {
        { cwd, "the current directory" },
        { dir .. "/work/../work/.", "the current directory" },
        { dir, "contains the current directory" },
        { dir .. "/home", "your home directory" },
        { "/", "the root directory" },
      }
      for _, c in ipairs(cases) do
        local r = skafos({ "fetch", "--unzip", c[1], "--force" }, nil, cwd)
        assert.are.equal(2, r.code, r.stderr)
        assert.matches("refusing to replace", r.stderr)
        assert.matches(c[2], r.stderr, 1, true)
      end
      assert.are.equal("keep", proc.read(dir .. "/work/keep.txt"))
      no_request_sent()
    end)

    it("refuses a mount point", function()
      local mnt = dir .. "/mnt"
      os.execute("mkdir -p " .. q(mnt))
      if not os.execute("mount -t tmpfs -o size=1m tmpfs " .. q(mnt) .. " 2>/dev/null") then
        -- no mount privileges here: the rule is still checked on / above
        pending("cannot mount a tmpfs here")
        return
      end
      finally(function() os.execute("umount " .. q(mnt)) end)
      proc.write(mnt .. "/data.txt", "on the mount")
      local r = skafos { "fetch", "--unzip", "mnt", "--force" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("it is a mount point", r.stderr)
      assert.are.equal("on the mount", proc.read(mnt .. "/data.txt"))
    end)

    it("still replaces an ordinary directory, the old contents only once the new are in place", function()
      proc.write(dir .. "/out/old.txt", "old")
      local r = skafos { "fetch", "--unzip", "out", "--force" }
      assert.are.equal(0, r.code, r.stderr)
      assert.is_nil(proc.read(dir .. "/out/old.txt"))
      assert.is_not_nil(proc.read(dir .. "/out/labels.txt"))
    end)
  end)

  describe("project code", function()
    local marker

    before_each(function()
      marker = dir .. "/ran"
    end)

    -- a config file that, when run, writes the token it can see into the marker file
    local function thief()
      return ([[io.open(%q, "w"):write(os.getenv("SKAFOS_API_TOKEN") or "ran") return { org = "demo-org" }]])
        :format(marker)
    end

    it("refuses a config file in a parent directory that belongs to another user", function()
      proc.write(dir .. "/shared/.skafos/config.lua", thief())
      os.execute("mkdir -p " .. q(dir .. "/shared/mine"))
      os.execute("chown -R nobody " .. q(dir .. "/shared/.skafos"))
      local r = skafos({ "versions" }, nil, dir .. "/shared/mine")
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("refusing to run project code: .*/shared/%.skafos/config%.lua belongs to another user", r.stderr)
      assert.matches("SKAFOS_SAFE_DIRECTORIES=", r.stderr)
      assert.is_nil(proc.read(marker))
      no_request_sent()
      -- allowed as the message says, it runs
      r = skafos({ "versions" }, { SKAFOS_SAFE_DIRECTORIES = dir .. "/shared" }, dir .. "/shared/mine")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(TOKEN, proc.read(marker))
    end)

    it("allows a project listed in the user's own config", function()
      proc.write(dir .. "/p/.skafos/config.lua", thief())
      os.execute("chown -R nobody " .. q(dir .. "/p/.skafos"))
      proc.write(dir .. "/xdg/skafos/config.lua", ("return { safe_directories = { %q } }"):format(dir .. "/*"))
      local r = skafos({ "versions" }, nil, dir .. "/p")
      assert.are.equal(0, r.code, r.stderr)
      assert.is_not_nil(proc.read(marker))
    end)

    it("refuses a group-writable config file and a config in a group-writable .skafos", function()
      proc.write(dir .. "/p/.skafos/config.lua", thief())
      os.execute("chmod 664 " .. q(dir .. "/p/.skafos/config.lua"))
      local r = skafos({ "publish", "--dry-run", "x" }, nil, dir .. "/p")
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("config%.lua is writable by its group %(mode 0664%)", r.stderr)
      os.execute("chmod 644 " .. q(dir .. "/p/.skafos/config.lua") .. " && chmod 777 " .. q(dir .. "/p/.skafos"))
      r = skafos({ "fetch" }, nil, dir .. "/p")
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("%.skafos is writable by others %(mode 0777%)", r.stderr)
      assert.is_nil(proc.read(marker))
      no_request_sent()
    end)

    it("stops the upward search at a directory everyone may write to, such as /tmp", function()
      -- dir/open is world-writable and holds a .skafos of another user's; below it, mine
      proc.write(dir .. "/open/.skafos/config.lua", thief())
      os.execute("chown -R nobody " .. q(dir .. "/open/.skafos") .. " && chmod 1777 " .. q(dir .. "/open"))
      os.execute("mkdir -p " .. q(dir .. "/open/mine"))
      local r = skafos({ "versions", "--json" }, nil, dir .. "/open/mine")
      assert.are.equal(0, r.code, r.stderr)
      assert.is_nil(proc.read(marker))
    end)

    it("runs no project script or module for help, --help, scripts or an unknown option", function()
      local evil = ([[io.open(%q, "a"):write("x") return { description = "planted", run = print }]]):format(marker)
      proc.write(dir .. "/.skafos/scripts/planted.lua", evil)
      proc.write(dir .. "/.skafos/scripts/publish.lua", evil)
      -- a module that would shadow the library the built-in workflows load
      proc.write(dir .. "/.skafos/lua/skafos/config.lua",
        ([[io.open(%q, "a"):write("m") return {}]]):format(marker))
      for _, argv in ipairs { { "--help" }, { "help" }, {}, { "help", "publish" }, { "publish", "--help" },
          { "help", "planted" }, { "planted", "-h" }, { "scripts" }, { "help", "fetch" }, { "fetch", "--help" },
          { "versions", "--help" } } do
        local r = skafos(argv)
        assert.are.equal(0, r.code, table.concat(argv, " ") .. ": " .. r.stderr)
        assert.is_nil(proc.read(marker), table.concat(argv, " ") .. " ran project code")
      end
      local r = skafos { "--help" }
      assert.matches("planted%s+planted %[project script", r.stdout)
      r = skafos { "scripts" }
      assert.matches("planted%s+project%s+%./%.skafos/scripts/planted%.lua", r.stdout)
      no_request_sent()
    end)

    it("refuses a project script or module of another user's when the command runs", function()
      proc.write(dir .. "/.skafos/scripts/planted.lua",
        ([[io.open(%q, "w"):write("x") return { run = print }]]):format(marker))
      os.execute("chown nobody " .. q(dir .. "/.skafos/scripts/planted.lua"))
      local r = skafos { "planted" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("planted%.lua belongs to another user", r.stderr)
      proc.write(dir .. "/.skafos/lua/skafos/api.lua", ([[io.open(%q, "w"):write("m") return {}]]):format(marker))
      os.execute("chmod 666 " .. q(dir .. "/.skafos/lua/skafos/api.lua"))
      r = skafos { "versions" }
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("api%.lua is writable by others", r.stderr)
      assert.is_nil(proc.read(marker))
      no_request_sent()
    end)
  end)

  describe("the token", function()
    it("is sent only over https, or plain http to loopback", function()
      for _, c in ipairs {
        { { SKAFOS_API_URL = "http://api.example.com/v2" }, "refusing API URL http://api%.example%.com/v2",
          "travel in clear", "https://api%.example%.com/v2" },
        { { SKAFOS_DOWNLOAD_URL = "http://download.example.com/v2" }, "refusing download URL", "travel in clear" },
        { { SKAFOS_API_URL = "api.example.com/v2" }, "has no scheme", "https://api%.example%.com/v2" },
        { { SKAFOS_API_URL = "ftp://api.example.com/v2" }, "scheme ftp is not supported" },
        { { SKAFOS_API_URL = "http://127.0.0.1.example.com/v2" }, "travel in clear" },
      } do
        local r = skafos({ "versions" }, c[1])
        assert.are.equal(2, r.code, r.stderr)
        for i = 2, #c do assert.matches(c[i], r.stderr) end
      end
      no_request_sent()
    end)

    it("is refused with a clear message when it holds whitespace or control characters", function()
      local r = skafos({ "versions" }, { SKAFOS_API_TOKEN = "demo-token\r\nX-Injected: 1" })
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("control character %(byte 13%) at character 11", r.stderr)
      assert.is_nil(r.stderr:find("stack traceback", 1, true))
      proc.write(dir .. "/tok", "demo token\n")
      os.execute("chmod 600 " .. q(dir .. "/tok"))
      r = skafos({ "versions", "--token-file", "tok" })
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("contains a space at character 5", r.stderr)
      no_request_sent()
    end)

    it("is read from a token file of bounded size, with a warning in every command when others can read it", function()
      proc.write(dir .. "/big", ("a"):rep(10000))
      local r = skafos({ "versions", "--token-file", "big" }, { SKAFOS_API_TOKEN = "" })
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("larger than 4096 bytes", r.stderr)
      proc.write(dir .. "/tok", TOKEN .. "\n")
      os.execute("chmod 644 " .. q(dir .. "/tok"))
      for _, argv in ipairs { { "versions" }, { "environments" }, { "fetch", "-o", "w.zip" },
          { "publish", "--dry-run", "tok" } } do
        table.insert(argv, "--token-file")
        table.insert(argv, "tok")
        r = skafos(argv)
        assert.are.equal(0, r.code, r.stderr)
        assert.matches("warning: token file tok can be read by everyone %(mode 0644%); run: chmod 600 tok", r.stderr)
      end
    end)

    it("is masked when a server echoes it back in an error, a header or a trace", function()
      emu:fault { role = "api", times = -1, action = { type = "status", status = 401,
        body = '{"error": "token ' .. TOKEN .. ' is not valid here"}', headers = { ["X-Echo"] = TOKEN } } }
      local r = skafos { "versions", "-vv" }
      assert.are.equal(3, r.code, r.stderr)
      assert.matches("token REDACTED is not valid here", r.stderr)
      assert.matches("X%-Echo: REDACTED", r.stderr)
      assert.is_nil(r.stderr:find(TOKEN, 1, true))
      r = skafos { "versions", "--json" }
      assert.are.equal(3, r.code)
      assert.is_nil((r.stdout .. r.stderr):find(TOKEN, 1, true))
      -- a description a server returns is printed masked too
      emu:clear_faults()
      emu:fault { role = "api", method = "GET", times = -1, action = { type = "status", status = 200,
        body = '[{"version": 1, "description": "built with ' .. TOKEN .. '"}]' } }
      r = skafos { "versions" }
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("built with REDACTED", r.stdout)
      r = skafos { "versions", "--json" }
      assert.is_nil(r.stdout:find(TOKEN, 1, true))
    end)
  end)
end)
