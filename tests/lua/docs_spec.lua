-- The man page and the shell completions: generated from the option tables at build time,
-- the same as the golden copies in tests/golden (update them with tests/golden/update.sh
-- after a deliberate change), in step with every command's --help, and working in bash.
local proc = require "proc"

local build = os.getenv("SKAFOS_BUILD_DIR") or "build"
local golden = proc.source_dir .. "/tests/golden/"

local GENERATED = { ["skafos.1"] = { "help", "--man" }, ["skafos.bash"] = { "completion", "bash" },
  ["_skafos"] = { "completion", "zsh" }, ["skafos.fish"] = { "completion", "fish" } }

describe("docs", function()
  local dir, cleanup, env

  before_each(function()
    dir, cleanup = proc.tmpdir()
    env = { XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir }
  end)

  after_each(function() cleanup() end)

  local function skafos(args)
    return proc.skafos(args, { cwd = dir, env = env, unset = { "SKAFOS_PATH", "SKAFOS_DEBUG" } })
  end

  -- every command and sub-command with the options its --help lists
  local function commands_and_options()
    local listed = skafos({ "help" }).stdout
    local list = {}
    for line in listed:match("Commands:\n(.-)\n\n"):gmatch("[^\n]+") do
      local name = line:match("^  (%S+)")
      local help = skafos({ name, "--help" }).stdout
      local subs = help:match("\nCommands:\n(.*)$")
      local entry = { name = name, help = help }
      list[#list + 1] = entry
      for l in (subs or ""):gmatch("[^\n]+") do
        local sub = l:match("^   (%S+)")
        if sub then list[#list + 1] = { name = name .. " " .. sub, help = skafos({ name, sub, "--help" }).stdout } end
      end
    end
    for _, e in ipairs(list) do
      e.options = {}
      local opts = e.help:match("\nOptions:\n(.-)\n\n") or e.help:match("\nOptions:\n(.*)$") or ""
      for line in opts:gmatch("[^\n]+") do
        -- the option column: from the first '-' to two spaces or the end of the line
        local spec = line:match("^%s*(%-.-)%s%s") or line:match("^%s*(%-.*)$")
        for o in (spec or ""):gmatch("%-%-?[%w][%w%-]*") do e.options[#e.options + 1] = o end
      end
    end
    return list
  end

  it("builds the same man page and completions as the golden copies and as the binary prints", function()
    for file, argv in pairs(GENERATED) do
      local built = proc.read(build .. "/generated/" .. file)
      assert.is_not_nil(built, "not generated: " .. file)
      assert.are.equal(proc.read(golden .. file), built,
        file .. " differs from tests/golden: run tests/golden/update.sh and review the diff")
      assert.are.equal(built, skafos(argv).stdout)
    end
  end)

  it("lists every command and option of --help in the man page and every completion", function()
    local man = skafos({ "help", "--man" }).stdout
    local bash = skafos({ "completion", "bash" }).stdout
    local zsh = skafos({ "completion", "zsh" }).stdout
    local fish = skafos({ "completion", "fish" }).stdout
    local list = commands_and_options()
    assert.is_true(#list >= 14)
    for _, c in ipairs(list) do
      local host = ({ help = true, run = true, scripts = true, completion = true })[c.name]
      if not host then
        local section = man:match("\n%.SS " .. c.name:gsub("%p", "%%%0") .. "\n(.-)\n%.fi")
        assert.is_not_nil(section, "no man section for " .. c.name)
        for _, o in ipairs(c.options) do
          assert.is_truthy(section:find(o:gsub("%-", "\\-"), 1, true) or section:find(o, 1, true),
            c.name .. " " .. o .. " not in the man page")
          assert.is_truthy(bash:find(" " .. o:gsub("%p", "%%%0") .. "[ \"]"),
            c.name .. " " .. o .. " not in the bash completion")
          local long = o:match("^%-%-(.+)$")
          if long then
            assert.is_truthy(fish:find("-l " .. long, 1, true), o .. " not in the fish completion")
            assert.is_truthy(zsh:find(o, 1, true), o .. " not in the zsh completion")
          end
        end
      end
      local last = c.name:match("(%S+)$")
      assert.is_truthy(bash:find(last, 1, true), c.name .. " not in the bash completion")
    end
  end)

  it("completes commands, sub-commands and options in a real bash", function()
    local script = build .. "/generated/skafos.bash"
    local function complete(line)
      local words = {}
      for w in line:gmatch("%S+") do words[#words + 1] = w end
      if line:sub(-1) == " " then words[#words + 1] = "" end
      local quoted = {}
      for i, w in ipairs(words) do quoted[i] = proc.quote(w) end
      local cmd = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _skafos; printf '%%s\\n' \"${COMPREPLY[@]}\"")
        :format(proc.quote(script), table.concat(quoted, " "), #words - 1)
      local r = proc.run { "bash", "-c", cmd }
      assert.are.equal(0, r.code, r.stderr)
      return r.stdout
    end
    assert.matches("\nfetch\n", "\n" .. complete("skafos fe"))
    assert.matches("\n%-%-output\n", "\n" .. complete("skafos fetch --out"))
    assert.matches("\ncreate\n", "\n" .. complete("skafos models "))
    assert.matches("\n%-%-allow%-empty\n", "\n" .. complete("skafos publish --allow"))
  end)

  it("never runs project code to print a completion or the man page", function()
    proc.write(dir .. "/.skafos/scripts/planted.lua",
      ('io.open(%q, "w"):close() return { description = "x", run = print }'):format(dir .. "/ran"))
    proc.write(dir .. "/.skafos/lua/skafos/config.lua", ('io.open(%q, "w"):close() return {}'):format(dir .. "/ran"))
    for _, argv in pairs(GENERATED) do
      assert.are.equal(0, skafos(argv).code)
      assert.is_nil(proc.read(dir .. "/ran"))
    end
  end)
end)
