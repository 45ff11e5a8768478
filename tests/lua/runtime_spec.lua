-- The host: command dispatch, script lookup and shadowing, the workflow contract, the
-- option parser, exit codes, errors, SIGINT, embedding from C and from stock Lua.
local proc = require "proc"

local WORKFLOW = [[
return {
  description = "%s",
  options = {
    { "-m --description", "text", argname = "TEXT" },
    { "--level", "level", default = "auto", choices = { "auto", "store", "1", "9" } },
    { "--count", "a number", type = "integer" },
    { "--tag", "repeatable", count = "*" },
    { "--dry-run", "flag", flag = true },
    { "files", "inputs", args = "*" },
  },
  run = function(ctx, args)
    local cjson = require "cjson"
    io.stdout:write(cjson.encode({ origin = ctx.origin, description = args.description, level = args.level,
      count = args.count, tag = args.tag, dry_run = args.dry_run or false, files = args.files }), "\n")
  end,
}
]]

local GREET = [[
return {
  description = "Print a greeting",
  options = { { "--name", "Who to greet", default = "world" } },
  run = function(_, args) io.stdout:write("hello, ", args.name, "\n") end,
}
]]

describe("runtime", function()
  local dir, cleanup, env

  before_each(function()
    dir, cleanup = proc.tmpdir()
    env = { XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir .. "/home" }
  end)

  after_each(function() cleanup() end)

  local function skafos(args, opts)
    opts = opts or {}
    opts.env = opts.env or env
    opts.cwd = opts.cwd or dir
    opts.unset = opts.unset or { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE" }
    return proc.skafos(args, opts)
  end

  local function decode(s) return require("cjson").decode(s) end

  it("prints its version with the Lua, libcurl and zlib versions", function()
    local r = skafos { "--version" }
    assert.are.equal(0, r.code)
    assert.matches("^skafos %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libcurl [%d.]+, .*zlib [%d.]+%)\n$", r.stdout)
  end)

  it("lists commands and exit codes in help", function()
    local r = skafos { "help" }
    assert.are.equal(0, r.code)
    assert.matches("publish%s+Publish files", r.stdout)
    assert.matches("fetch%s+Download", r.stdout)
    assert.matches("Exit codes:", r.stdout)
    assert.matches("130 interrupted", r.stdout)
  end)

  it("loads libcurl only for commands that make requests, never for help", function()
    -- the dynamic loader names every library it opens when LD_DEBUG=libs
    local function loads_curl(args)
      local e = {}
      for k, v in pairs(env) do e[k] = v end
      e.LD_DEBUG = "libs"
      local r = skafos(args, { env = e })
      return r.stderr:find("libcurl", 1, true) ~= nil, r
    end
    for _, args in ipairs { { "--version" }, { "--help" }, { "help" }, { "publish", "--help" },
                            { "fetch", "-h" }, { "help", "versions" }, { "config" } } do
      local curl, r = loads_curl(args)
      assert.is_false(curl, table.concat(args, " "))
      assert.are.equal(0, r.code, r.stderr:sub(-300))
    end
    proc.write(dir .. "/net.lua", [[require "skafos.http"]])
    assert.is_true((loads_curl { "run", "net.lua" }))
    -- a command that may make requests starts loading it at once, before any require
    proc.write(dir .. "/maps.lua", [[
      for _ = 1, 100000 do
        local f = assert(io.open("/proc/self/maps"))
        local maps = f:read("a")
        f:close()
        if maps:find("libcurl", 1, true) then print("loaded") return end
      end
      print("never loaded")
    ]])
    local r = skafos { "-v", "run", "maps.lua" }
    assert.are.equal("loaded\n", r.stdout, r.stderr)
  end)

  it("exits 2 on an unknown command and lists the commands", function()
    local r = skafos { "frobnicate" }
    assert.are.equal(2, r.code)
    assert.matches("skafos: unknown command 'frobnicate'\nCommands: .*publish", r.stderr)
    assert.are.equal("", r.stdout)
  end)

  it("suggests the closest command, sub-command or option", function()
    for _, c in ipairs {
      { { "publsh" }, "unknown command 'publsh'; did you mean 'publish'%?" },
      { { "fech", "-o", "x" }, "did you mean 'fetch'%?" },
      { { "--jsn", "versions" }, "unknown option '%-%-jsn' before the command; did you mean '%-%-json'%?" },
      { { "versions", "--jsn" }, "Did you mean '%-%-json'%?" },
      { { "models", "crate", "x" }, "Did you mean 'create'%?" },
      { { "models" }, "missing sub%-command: one of create" },
    } do
      local r = skafos(c[1])
      assert.are.equal(2, r.code, r.stderr)
      assert.matches(c[2], r.stderr)
    end
  end)

  it("answers help for every command and sub-command in every spelling, with exit 0", function()
    local listed = skafos({ "help" }).stdout
    local names = {}
    for line in listed:match("Commands:\n(.-)\n\n"):gmatch("[^\n]+") do names[#names + 1] = line:match("^  (%S+)") end
    assert.is_true(#names >= 11, listed)
    for _, name in ipairs(names) do
      for _, argv in ipairs { { "help", name }, { name, "--help" }, { name, "-h" } } do
        local r = skafos(argv)
        assert.are.equal(0, r.code, table.concat(argv, " ") .. ": " .. r.stderr)
        assert.matches("^Usage: skafos " .. name:gsub("%p", "%%%0"), r.stdout, nil, table.concat(argv, " "))
      end
    end
    for _, argv in ipairs { { "help", "models", "create" }, { "models", "create", "--help" },
        { "models", "create", "-h" }, { "models", "create", "new", "-m", "x", "--help" } } do
      local r = skafos(argv)
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("^Usage: skafos models create ", r.stdout)
      assert.matches("The new model's name", r.stdout)
    end
  end)

  it("takes the global options before the command as well as after it", function()
    local r = skafos { "--json", "config" }
    assert.are.equal(0, r.code, r.stderr)
    assert.is_table(decode(r.stdout).settings)
    r = skafos { "--org=acme", "--hosts", "staging", "config", "--json" }
    assert.are.equal(0, r.code, r.stderr)
    local got = decode(r.stdout).settings
    assert.are.equal("acme", got.org.value)
    assert.are.equal("https://api.skafos.wtf/v2", got.api_url.value)
    r = skafos { "--org" }
    assert.are.equal(2, r.code)
    assert.matches("option '%-%-org' requires an argument", r.stderr)
  end)

  it("runs an unknown command from a project script", function()
    proc.write(dir .. "/.skafos/scripts/greet.lua", WORKFLOW:format("greets"))
    local r = skafos { "greet", "a.bin" }
    assert.are.equal(0, r.code, r.stderr)
    local got = decode(r.stdout)
    assert.are.equal("project", got.origin)
    assert.are.same({ "a.bin" }, got.files)
  end)

  it("lets a project script shadow a built-in workflow", function()
    proc.write(dir .. "/.skafos/scripts/versions.lua",
      [[return { description = "mine", run = function() print("overridden") end }]])
    local r = skafos { "versions" }
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("overridden\n", r.stdout)
    local s = skafos { "scripts" }
    assert.matches("versions%s+project%s+%./%.skafos/scripts/versions%.lua", s.stdout)
    assert.matches("publish%s+embedded%s+scripts/publish%.lua", s.stdout)
  end)

  it("searches SKAFOS_PATH first, and ';;' stands for the default locations", function()
    proc.write(dir .. "/p1/greet.lua", [[return { run = function() print("p1") end }]])
    proc.write(dir .. "/xdg/skafos/scripts/greet.lua", [[return { run = function() print("user") end }]])
    proc.write(dir .. "/xdg/skafos/scripts/other.lua", [[return { run = function() print("user-other") end }]])
    env.SKAFOS_PATH = dir .. "/p1;;"
    assert.are.equal("p1\n", skafos({ "greet" }, { unset = {} }).stdout)
    assert.are.equal("user-other\n", skafos({ "other" }, { unset = {} }).stdout)
    -- without ';;' the defaults are not searched (the embedded copies still are)
    env.SKAFOS_PATH = dir .. "/p1"
    local r = skafos({ "other" }, { unset = {} })
    assert.are.equal(2, r.code)
    r = skafos({ "config", "--json" }, { unset = {} })
    assert.are.equal(0, r.code, r.stderr)
    -- order of the listing
    env.SKAFOS_PATH = dir .. "/p1;;"
    local s = skafos({ "scripts" }, { unset = {} }).stdout
    local i1 = s:find(dir .. "/p1", 1, true)
    local i2, i3 = s:find("./.skafos/scripts", 1, true), s:find("xdg/skafos", 1, true)
    assert.truthy(i1 and i2 and i3 and i1 < i2 and i2 < i3, s)
  end)

  it("finds modules beside the script and on the lookup path, never in ./", function()
    proc.write(dir .. "/.skafos/lua/team/policy.lua", [[return { name = "team policy" }]])
    proc.write(dir .. "/sneaky.lua", [[return "from cwd"]])
    proc.write(dir .. "/tools/helper.lua", [[return "beside the script"]])
    proc.write(dir .. "/tools/use.lua", [[
      print(require("team.policy").name)
      print(require("helper"))
      print(pcall(require, "sneaky"))
    ]])
    local r = skafos { "run", "tools/use.lua" }
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^team policy\nbeside the script\t[^\n]*\nfalse\t", r.stdout)
  end)

  it("loads the embedded files from bytecode that keeps their names and lines", function()
    proc.write(dir .. "/lines.lua", [[
      local core, loader = require "skafos.core", require "skafos.loader"
      local chunk = assert(core.load_embedded("lua/skafos/errors.lua"))
      local info = debug.getinfo(chunk, "SL")
      local lines = 0
      for _ in pairs(info.activelines) do lines = lines + 1 end
      print(info.source, lines > 10, core.load_embedded("lua/nothing.lua") == nil)
      print(select(2, pcall(require("skafos.errors").new, "X", "m", 3)))
      print(loader.find_module("argparse"))
    ]])
    local r = skafos { "run", "lines.lua" }
    assert.are.equal(0, r.code, r.stderr)
    local first, second, third = r.stdout:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n$")
    assert.are.equal("@lua/skafos/errors.lua\ttrue\ttrue", first)
    -- fields that are not a table fail inside the embedded module: the message names its line
    assert.matches("^lua/skafos/errors%.lua:%d+: ", second)
    -- argparse, which every command parses its options with, is compiled in as well
    assert.are.equal("lua/argparse.lua\tembedded\tlua/argparse.lua", third)
  end)

  it("lets a different argparse on package.path win over the compiled-in copy", function()
    local system = assert(package.searchpath("argparse", "/usr/share/lua/5.4/?.lua"))
    proc.write(dir .. "/same/argparse.lua", proc.read(system))
    proc.write(dir .. "/other/argparse.lua", [[return { mine = true }]])
    proc.write(dir .. "/which.lua", [[
      local a = require "argparse"
      print(a.mine or debug.getinfo(getmetatable(a).__call, "S").source)
    ]])
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    e.LUA_PATH = dir .. "/other/?.lua;;"
    local r = skafos({ "run", "which.lua" }, { env = e })
    assert.are.equal("true\n", r.stdout, r.stderr)
    -- an identical copy runs from the compiled-in bytecode
    e.LUA_PATH = dir .. "/same/?.lua;;"
    r = skafos({ "run", "which.lua" }, { env = e })
    assert.are.equal("@lua/argparse.lua\n", r.stdout, r.stderr)
  end)

  it("names a malformed workflow file and exits 2", function()
    proc.write(dir .. "/.skafos/scripts/bad.lua", [[return { description = 42, run = print }]])
    local r = skafos { "bad" }
    assert.are.equal(2, r.code)
    assert.matches("skafos: %./%.skafos/scripts/bad%.lua: 'description' must be a string", r.stderr)
    proc.write(dir .. "/.skafos/scripts/bad2.lua", [[return 7]])
    r = skafos { "bad2" }
    assert.are.equal(2, r.code)
    assert.matches("bad2%.lua: a workflow must return a table", r.stderr)
    proc.write(dir .. "/.skafos/scripts/bad3.lua", [[return {]])
    r = skafos { "bad3" }
    assert.are.equal(2, r.code)
    assert.matches("bad3%.lua:1:", r.stderr)
    proc.write(dir .. "/.skafos/scripts/bad4.lua", [[return { run = print, options = { { 1 } } }]])
    r = skafos { "bad4" }
    assert.are.equal(2, r.code)
    assert.matches("bad4%.lua: option #1 must be a table whose first item is its name", r.stderr)
  end)

  describe("option parser", function()
    before_each(function()
      proc.write(dir .. "/.skafos/scripts/opts.lua", WORKFLOW:format("options"))
    end)

    it("takes long and short flags, --flag=value, repeats, typed values and --", function()
      local r = skafos { "opts", "-m", "first", "--level=store", "--count", "3", "--tag", "a", "--tag=b",
        "--dry-run", "x", "--", "--not-a-flag" }
      assert.are.equal(0, r.code, r.stderr)
      local got = decode(r.stdout)
      assert.are.equal("first", got.description)
      assert.are.equal("store", got.level)
      assert.are.equal(3, got.count)
      assert.are.same({ "a", "b" }, got.tag)
      assert.is_true(got.dry_run)
      assert.are.same({ "x", "--not-a-flag" }, got.files)
      got = decode(skafos({ "opts", "-mjoined" }).stdout)
      assert.are.equal("joined", got.description)
      assert.are.equal("auto", got.level)
    end)

    it("reports an unknown flag, a missing value, a bad choice and a bad number with exit 2", function()
      local r = skafos { "opts", "--bogus" }
      assert.are.equal(2, r.code)
      assert.matches("unknown option '%-%-bogus'", r.stderr)
      assert.matches("Usage: skafos opts", r.stderr)
      r = skafos { "opts", "--description" }
      assert.are.equal(2, r.code)
      assert.matches("option '%-%-description' requires an argument", r.stderr)
      r = skafos { "opts", "--level", "7" }
      assert.are.equal(2, r.code)
      assert.matches("must be one of 'auto', 'store', '1', '9'", r.stderr)
      r = skafos { "opts", "--count", "many" }
      assert.are.equal(2, r.code)
      assert.matches("'many' is not a whole number", r.stderr)
      assert.are.equal("", r.stdout)
    end)

    it("generates --help from the options of a workflow on the user's own path", function()
      proc.write(dir .. "/mine/opts.lua", WORKFLOW:format("options"))
      local opts = { env = { XDG_CONFIG_HOME = env.XDG_CONFIG_HOME, HOME = env.HOME, SKAFOS_PATH = dir .. "/mine" } }
      local r = skafos({ "opts", "--help" }, opts)
      assert.are.equal(0, r.code)
      assert.matches("Usage: skafos opts", r.stdout)
      assert.matches("%-m TEXT,%s+text%s+%-%-description TEXT", r.stdout)
      assert.are.same(r.stdout, skafos({ "help", "opts" }, opts).stdout)
    end)

    it("describes a project workflow from its text in --help, without running it", function()
      proc.write(dir .. "/.skafos/scripts/opts.lua", 'io.open("' .. dir .. '/ran", "w"):close()\n'
        .. WORKFLOW:format("options from the project"))
      for _, argv in ipairs { { "opts", "--help" }, { "help", "opts" }, { "opts", "-x", "-h" } } do
        local r = skafos(argv)
        assert.are.equal(0, r.code, r.stderr)
        assert.matches("^skafos opts: options from the project\n", r.stdout)
        assert.matches("Defined by the project script %./%.skafos/scripts/opts%.lua", r.stdout)
        assert.is_nil(io.open(dir .. "/ran"))
      end
      -- run for real, it runs
      assert.are.equal(0, skafos({ "opts" }).code)
      assert.is_not_nil(io.open(dir .. "/ran"))
    end)
  end)

  it("runs a file with its arguments in arg and ...", function()
    proc.write(dir .. "/args.lua", [[
      local a, b = ...
      print(arg[0], arg[1], arg[2], #arg, a, b, type(require("skafos.fs").stat))
    ]])
    local r = skafos { "run", "args.lua", "one", "two words" }
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("args.lua\tone\ttwo words\t2\tone\ttwo words\tfunction\n", r.stdout)
    r = skafos { "run", "missing.lua" }
    assert.are.equal(2, r.code)
    assert.matches("cannot open missing%.lua", r.stderr)
  end)

  it("prints a Lua error as one line with exit 1, with a traceback only when asked", function()
    proc.write(dir .. "/.skafos/scripts/boom.lua",
      [[return { run = function() local t = nil; return t.field end }]])
    local r = skafos { "boom" }
    assert.are.equal(1, r.code)
    assert.matches("^skafos: %./%.skafos/scripts/boom%.lua:1: attempt to index a nil value", r.stderr)
    assert.is_nil(r.stderr:find("traceback", 1, true))
    r = skafos { "boom", "--verbose" }
    assert.matches("stack traceback:", r.stderr)
    env.SKAFOS_DEBUG = "1"
    r = skafos({ "boom" }, { unset = {} })
    assert.are.equal(1, r.code)
    assert.matches("stack traceback:", r.stderr)
  end)

  it("maps raised error codes to exit codes", function()
    proc.write(dir .. "/.skafos/scripts/nf.lua", [[
      return { run = function() require("skafos.errors").raise("NOT_FOUND", "model 'x' not found") end }]])
    local r = skafos { "nf" }
    assert.are.equal(4, r.code)
    assert.are.equal("skafos: model 'x' not found\n", r.stderr)
  end)

  it("dumps a built-in workflow", function()
    local r = skafos { "scripts", "dump", "publish" }
    assert.are.equal(0, r.code)
    assert.are.equal(proc.read(proc.source_dir .. "/scripts/publish.lua"), r.stdout)
    r = skafos { "scripts", "dump", "nope" }
    assert.are.equal(2, r.code)
    assert.matches("no built%-in workflow 'nope'", r.stderr)
  end)

  it("turns SIGINT into a Lua error: cleanup runs and the exit code is 130", function()
    proc.write(dir .. "/spin.lua", [[
      local marker = io.open("work.tmp", "w"); marker:close()
      local guard <close> = setmetatable({}, { __close = function() os.remove("work.tmp") end })
      io.open("ready", "w"):close()
      while true do end
    ]])
    local script = ("cd %s && %s run spin.lua 2>err & pid=$!; "
      .. "while [ ! -f %s/ready ]; do sleep 0.05; done; kill -INT $pid; wait $pid; echo $?")
      :format(proc.quote(dir), proc.quote(proc.bin), proc.quote(dir))
    local p = io.popen(script)
    local code = p:read("l")
    p:close()
    assert.are.equal("130", code)
    assert.are.equal("skafos: interrupted\n", proc.read(dir .. "/err"))
    assert.is_nil(proc.read(dir .. "/work.tmp"))
  end)

  it("embeds in a C program through skafos.h", function()
    local example = os.getenv("SKAFOS_EMBED_EXAMPLE")
    assert.truthy(example, "SKAFOS_EMBED_EXAMPLE is set by ctest")
    proc.write(dir .. "/.skafos/scripts/greet.lua", GREET)
    local r = proc.run({ example, "greet", "--name", "C" }, { cwd = dir, env = env })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("hello, C\n", r.stdout)
    r = proc.run({ example, "nope" }, { cwd = dir, env = env })
    assert.are.equal(2, r.code)
    assert.matches("unknown command 'nope'", r.stderr)
  end)

  it("leaves a host interpreter's paths and other modules as they were", function()
    local moddir = os.getenv("SKAFOS_LUA_MODULE_DIR")
    local preload = os.getenv("SKAFOS_SANITIZER_PRELOAD")
    if preload then
      env.LD_PRELOAD = preload
      env.ASAN_OPTIONS = "detect_leaks=0"
    end
    -- a module of the project's: reached by a skafos run, never by the host's require
    proc.write(dir .. "/.skafos/lua/mything.lua", [[return "project module"]])
    proc.write(dir .. "/.skafos/scripts/uses.lua", [[
      return { run = function() io.stdout:write("in a run: ", require("mything"), "\n") end }]])
    proc.write(dir .. "/local.lua", [[return "the host's own ./?.lua"]])
    local r = proc.run({ "lua5.4", "-e", ("package.cpath = %q .. '/?.so;' .. package.cpath"):format(moddir), "-e", [[
      local path, cpath, n = package.path, package.cpath, #package.searchers
      local skafos = require "skafos"
      print(package.path == path, package.cpath == cpath)
      print(require("local"))
      print(pcall(require, "mything"))
      print(skafos.run("uses", {}))
      -- errors are one kind of table, with __tostring and an exit code
      local v, err = skafos.versions { org = "o", app = "a", model = "m", token = "t", api_url = "http://x.example/v2" }
      print(v, tostring(err):match("^refusing API URL") ~= nil, err.code, err.exit)
      local _, zerr = require("skafos.zip").list("/nonexistent.zip")
      print(zerr.code, zerr.exit, tostring(zerr):match("nonexistent") ~= nil)
    ]] }, { cwd = dir, env = env })
    assert.are.equal(0, r.code, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]*") do lines[#lines + 1] = l end
    assert.are.equal("true\ttrue", lines[1])
    assert.matches("^the host's own %./%?%.lua", lines[2])
    assert.matches("^false\tmodule 'mything' not found", lines[3])
    assert.matches("in a run: project module", r.stdout)
    assert.matches("\nnil\ttrue\tUSAGE\t2\n", r.stdout)
    assert.matches("\nNOT_FOUND\t4\ttrue\n", r.stdout)
  end)

  it("loads into stock lua5.4 as a C module", function()
    local moddir = os.getenv("SKAFOS_LUA_MODULE_DIR")
    assert.truthy(moddir, "SKAFOS_LUA_MODULE_DIR is set by ctest")
    local preload = os.getenv("SKAFOS_SANITIZER_PRELOAD")
    if preload then
      env.LD_PRELOAD = preload
      env.ASAN_OPTIONS = "detect_leaks=0"
    end
    proc.write(dir .. "/.skafos/scripts/greet.lua", GREET)
    local r = proc.run({ "lua5.4", "-e", ("package.cpath = %q .. '/?.so;' .. package.cpath"):format(moddir),
      "-l", "skafos", "-e", [[
        print(skafos.version, type(require("cjson").encode), skafos.run("greet", { "--name", "lua" }))
      ]] }, { cwd = dir, env = env })
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("hello, lua\n" .. require("skafos.core").version .. "\tfunction\t0\n", r.stdout)
  end)
end)
