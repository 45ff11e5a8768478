-- The skafos command line: host commands (help, run, scripts, --version) and dispatch to
-- workflows found through the lookup path. This is the one place that turns errors into
-- messages and exit codes; the C host prints what is raised here.
local core = require "skafos.core"
local errors = require "skafos.errors"
local loader = require "skafos.loader"

local M = {}

local HOST_COMMANDS = {
  { "help", "Show help for skafos or for one command" },
  { "run", "Run a Lua script with the skafos modules: skafos run FILE.lua [ARGS...]" },
  { "scripts", "Show the script lookup order; 'scripts dump NAME' prints a built-in workflow" },
  { "completion", "Print the completion script for bash, zsh or fish" },
}

-- "Exit codes:" and the table of skafos.docs, one to a line.
local function exit_help()
  local lines = { "Exit codes:" }
  for _, e in ipairs(require("skafos.docs").EXIT) do lines[#lines + 1] = ("  %3d %s"):format(e[1], e[2]) end
  return table.concat(lines, "\n")
end

local function out(...) io.stdout:write(...) end

local function version_text()
  local v = core.versions()
  return ("skafos %s (Lua %s, libcurl %s, zlib %s)\n"):format(
    v.skafos, v.lua:match("[%d.]+$") or v.lua, v.curl, v.zlib)
end

local function usage_error(msg)
  errors.raise("USAGE", msg)
end

-- Help and listings never run project code: from here on, project directories are not
-- searched for modules, and a project workflow is described from its text.
local function help_mode()
  loader.project_code = false
end

local function workflow_list()
  local workflow = require "skafos.workflow"
  local rows = {}
  for _, w in ipairs(loader.workflows()) do
    local desc
    if w.origin == "project" then
      desc = (loader.describe(w.path) or "") .. " [project script " .. w.path .. "]"
    else
      local ok, wf = pcall(workflow.load, w.name)
      desc = ok and wf and wf.description or ("(cannot load: " .. tostring(wf) .. ")")
    end
    rows[#rows + 1] = { w.name, (desc:gsub("\n.*", "")) }
  end
  return rows
end

-- Help for a workflow defined by a project script, without running it.
local function project_help(name, path)
  out("skafos ", name, ": ", loader.describe(path) or "(no description)", "\n\n",
      "Defined by the project script ", path, ".\n",
      "Help does not run project code, so its options are not listed here: they are\n",
      "declared in that file, and 'skafos ", name, " ARGS' runs it.\n")
  return 0
end

-- Whether argv asks for help (-h or --help before any "--").
local function wants_help(argv)
  for _, a in ipairs(argv) do
    if a == "--" then return false end
    if a == "-h" or a == "--help" then return true end
  end
  return false
end

local function print_rows(rows)
  for _, r in ipairs(rows) do out(("  %-14s %s\n"):format(r[1], r[2])) end
end

local function general_help()
  help_mode()
  out("Usage: skafos [-v] COMMAND [OPTIONS] [ARGS...]\n\n",
      "Publish model versions to Skafos and fetch them back; every command is a Lua\n",
      "workflow you can override (see 'skafos scripts').\n\nCommands:\n")
  print_rows(workflow_list())
  print_rows(HOST_COMMANDS)
  out("\nOptions:\n  -h, --help     Show this help\n  -V, --version  Show versions\n",
      "  -v, --verbose  More messages (twice: trace HTTP with secrets redacted)\n\n",
      "'skafos help COMMAND' shows a command's options; 'skafos completion bash|zsh|fish' prints\n",
      "a completion script.\n\n", exit_help(), "\n")
  return 0
end

local function command_list()
  local names = {}
  for _, w in ipairs(loader.workflows()) do names[#names + 1] = w.name end
  for _, c in ipairs(HOST_COMMANDS) do names[#names + 1] = c[1] end
  return names
end

-- Edit distance (insertions, deletions, substitutions, swaps of neighbours).
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:sub(i, i) == b:sub(j - 1, j - 1) and a:sub(i - 1, i - 1) == b:sub(j, j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

---The names closest to `word` (a typo or a prefix of them), best first.
---@param word string
---@param names string[]
---@return string[]
function M.closest(word, names)
  local scored = {}
  for _, n in ipairs(names) do
    local dist = distance(word, n)
    if n:sub(1, #word) == word and #word >= 2 then dist = math.min(dist, 1) end
    if dist <= math.max(1, math.min(2, #word // 3)) then scored[#scored + 1] = { n = n, d = dist } end
  end
  table.sort(scored, function(x, y) return x.d < y.d or (x.d == y.d and x.n < y.n) end)
  local out_ = {}
  for _, e in ipairs(scored) do out_[#out_ + 1] = e.n end
  return out_
end

local function did_you_mean(word, names)
  local near = M.closest(word, names)
  if #near == 0 then return "" end
  return ("; did you mean %s?"):format(#near == 1 and ("'" .. near[1] .. "'")
    or ("one of '" .. table.concat(near, "', '") .. "'"))
end

-- Whether argv asks for JSON output (--json before any "--").
local function wants_json(argv)
  for _, a in ipairs(argv) do
    if a == "--" then return false end
    if a == "--json" then return true end
  end
  return false
end

-- With --json a failure is one JSON document on stdout too: {"error": {code, message, exit}}.
local function print_json_error(e)
  local json = require "skafos.json"
  local message, code, exit
  if type(e) == "table" then
    message = tostring(e.message or e.code or "failed")
    code = type(e.code) == "string" and e.code or "FAILED"
    exit = math.type(e.exit) == "integer" and e.exit or errors.exit_code(code)
  else
    message, code, exit = tostring(e), "FAILED", errors.EXIT.FAILED
  end
  io.stdout:write(core.redact(json.encode { error = { code = code, message = message, exit = exit } }), "\n")
  io.stdout:flush()
end

local run_workflow

---Runs workflow `name` with the argument list `argv`; returns the exit code.
---@param name string
---@param argv string[]
---@return integer
local function run_workflow_json(name, argv)
  if not wants_json(argv) or wants_help(argv) then return run_workflow(name, argv) end
  local ok, result = pcall(run_workflow, name, argv)
  if ok then return result end
  print_json_error(result)
  error(result, 0)
end

function M.run_workflow(name, argv)
  return loader.within(run_workflow_json, name, argv)
end

function run_workflow(name, argv)
  local workflow = require "skafos.workflow"
  if wants_help(argv) then
    help_mode()
    local path, origin = loader.find_workflow(name)
    if origin == "project" then return project_help(name, path) end
  end
  local wf, path, origin = workflow.load(name)
  if not wf then
    local names = command_list()
    usage_error(("unknown command '%s'%s\nCommands: %s (see 'skafos help')"):format(name,
      did_you_mean(name, names), table.concat(names, ", ")))
  end
  local parser, subs = workflow.parser(wf, name)
  -- the sub-command named before any -h, if any
  local sub
  for _, a in ipairs(argv) do
    if a == "-h" or a == "--help" or a == "--" then break end
    if subs[a] then sub = a break end
  end
  if wants_help(argv) then
    out((sub and subs[sub] or parser):get_help(), "\n")
    return 0
  end
  local ok, args = parser:pparse(argv)
  if not ok then
    local shown = sub and subs[sub] or parser
    if args == "a command is required" then
      local names = {}
      for _, c in ipairs(wf.commands) do names[#names + 1] = c[1] end
      args = ("missing sub-command: one of %s"):format(table.concat(names, ", "))
    end
    usage_error(("%s\n%s\nRun 'skafos help %s%s' for the options."):format(args, shown:get_usage(), name,
      sub and (" " .. sub) or ""))
  end
  local verbose = args.verbose or 0
  if verbose > 0 then core.set_verbose(verbose) end
  if verbose > 1 then core.set_trace(verbose - 1) end
  local ctx = { name = name, path = path, origin = origin, workflow = wf, argv = argv, verbose = verbose }
  local result = wf.run(ctx, args)
  if math.type(result) == "integer" then return result end
  return 0
end

local HOST_USAGE = {
  help = "Usage: skafos help [COMMAND [SUB-COMMAND]]\n       skafos help --man\n\n"
    .. "Show the commands, or one command's options; --man prints the manual page skafos(1) in roff.\n",
  completion = "Usage: skafos completion bash|zsh|fish\n\n"
    .. "Print the completion script for a shell, e.g.\n"
    .. "  skafos completion bash > ~/.local/share/bash-completion/completions/skafos\n"
    .. "  skafos completion zsh > ~/.zfunc/_skafos\n"
    .. "  skafos completion fish > ~/.config/fish/completions/skafos.fish\n"
    .. "(cmake --install puts all three where the shells look.) It describes the built-in commands only.\n",
  run = "Usage: skafos run FILE.lua [ARGS...]\n\n"
    .. "Run a Lua script with the skafos modules (require \"skafos\", skafos.http, skafos.s3, skafos.zip,\n"
    .. "skafos.fs); arg and ... are set as lua sets them, and an integer it returns is the exit code.\n",
  scripts = "Usage: skafos scripts\n       skafos scripts dump NAME\n\n"
    .. "Show where each workflow comes from and the lookup order, or print a built-in workflow\n"
    .. "(e.g. skafos scripts dump publish > .skafos/scripts/publish.lua to customise it).\n",
}

local function is_help(a) return a == "-h" or a == "--help" end

local function cmd_help(argv)
  help_mode()
  local name = argv[1]
  if not name then return general_help() end
  if name == "--man" then
    out(require("skafos.docs").man())
    return 0
  end
  if is_help(name) then name = "help" end
  if HOST_USAGE[name] then
    out(HOST_USAGE[name])
    return 0
  end
  local rest = table.move(argv, 2, #argv, 1, {})
  rest[#rest + 1] = "--help"
  return M.run_workflow(name, rest)
end

local function cmd_run(argv)
  if is_help(argv[1]) then
    out(HOST_USAGE.run)
    return 0
  end
  local file = argv[1]
  if not file then usage_error("missing script: skafos run FILE.lua [ARGS...]") end
  local chunk, err = loadfile(file)
  if not chunk then errors.raise("USAGE", err) end
  -- modules beside the script come first, as they would for lua5.4 run from there
  table.insert(loader.script_dirs, 1, (file:match("^(.*)/[^/]*$") or "."))
  local script_args = table.move(argv, 2, #argv, 1, {})
  local arg = { [-1] = "skafos", [0] = file }
  table.move(script_args, 1, #script_args, 1, arg)
  _G.arg = arg
  local result = chunk(table.unpack(script_args))
  if math.type(result) == "integer" then return result end
  return 0
end

local function cmd_scripts(argv)
  help_mode()
  if is_help(argv[1]) or is_help(argv[3]) or (argv[1] == "dump" and is_help(argv[2])) then
    out(HOST_USAGE.scripts)
    return 0
  end
  if argv[1] == "dump" then
    local name = argv[2]
    if not name then usage_error("missing name: skafos scripts dump NAME") end
    local src = core.embedded("scripts/" .. name .. ".lua")
    if not src then
      usage_error(("no built-in workflow '%s'; built-in ones: %s"):format(name,
        table.concat((function()
          local names = {}
          for _, p in ipairs(core.embedded_list("scripts/")) do
            local n = p:match("^scripts/([%w_%-]+)%.lua$")
            if n then names[#names + 1] = n end
          end
          return names
        end)(), ", ")))
    end
    out(src)
    return 0
  elseif argv[1] ~= nil then
    usage_error(("unknown 'scripts' action '%s'; use 'skafos scripts' or 'skafos scripts dump NAME'"):format(argv[1]))
  end
  local fs = require "skafos.fs"
  out("Workflow lookup order (first match wins):\n")
  for i, d in ipairs(loader.dirs("scripts", true)) do
    local st = fs.stat(d.path)
    out(("  %d. %-50s %s%s\n"):format(i, d.path, d.origin, st and "" or " (absent)"))
  end
  out(("  %d. %-50s %s\n"):format(#loader.dirs("scripts", true) + 1, "(built into skafos)", "embedded"))
  out("\nModules (require) are searched the same way, in the 'lua' directories:\n")
  for _, d in ipairs(loader.dirs("lua", true)) do out("  ", d.path, "\n") end
  out("\nWorkflows:\n")
  for _, w in ipairs(loader.workflows()) do
    out(("  %-14s %-10s %s\n"):format(w.name, w.origin, w.path))
  end
  return 0
end

local function cmd_completion(argv)
  help_mode()
  if is_help(argv[1]) then
    out(HOST_USAGE.completion)
    return 0
  end
  local script, err = require("skafos.docs").completion(argv[1])
  if not script then usage_error(err .. "; see 'skafos completion --help'") end
  out(script)
  return 0
end

local HOST = { help = cmd_help, run = cmd_run, scripts = cmd_scripts, completion = cmd_completion }

-- Options every workflow takes that may also come before the command name; the value
-- is the number of arguments each takes.
local GLOBAL = {
  ["--json"] = 0, ["-q"] = 0, ["--quiet"] = 0, ["--progress"] = 1, ["--org"] = 1, ["--app"] = 1,
  ["--model"] = 1, ["--api-url"] = 1, ["--download-url"] = 1, ["--hosts"] = 1, ["--token-file"] = 1,
  ["--ca-file"] = 1,
}

local function global_names()
  local names = { "--help", "--version", "--verbose" }
  for k in pairs(GLOBAL) do names[#names + 1] = k end
  table.sort(names)
  return names
end

---Entry point of the executable: `argv` is the command line without the program name.
---@param argv string[]
---@return integer exit code
local function main(argv)
  local i = 1
  local verbose = 0
  local moved = {} -- global options given before the command, handed to it
  while argv[i] and argv[i]:sub(1, 1) == "-" do
    local a = argv[i]
    local flag = a:match("^(%-%-[%w-]+)=")
    if a == "-V" or a == "--version" then
      out(version_text())
      return 0
    elseif a == "-h" or a == "--help" then
      return general_help()
    elseif a == "--verbose" then
      verbose = verbose + 1
    elseif a:match("^%-v+$") then
      verbose = verbose + #a - 1
    elseif GLOBAL[flag or a] then
      moved[#moved + 1] = a
      if not flag and GLOBAL[a] == 1 then
        if argv[i + 1] == nil then usage_error(("option '%s' requires an argument"):format(a)) end
        i = i + 1
        moved[#moved + 1] = argv[i]
      end
    else
      usage_error(("unknown option '%s' before the command%s\nSee 'skafos help'."):format(a,
        did_you_mean(flag or a, global_names())))
    end
    i = i + 1
  end
  if verbose > 0 then core.set_verbose(verbose) end
  if verbose > 1 then core.set_trace(verbose - 1) end
  local command = argv[i]
  if not command then return general_help() end
  local rest = table.move(argv, i + 1, #argv, 1, {})
  if HOST[command] then return HOST[command](rest) end
  -- keep the level and the global options for the workflow's own parser
  for _ = 1, verbose do table.insert(rest, 1, "-v") end
  table.move(rest, 1, #rest, #moved + 1)
  table.move(moved, 1, #moved, 1, rest)
  return M.run_workflow(command, rest)
end

function M.main(argv)
  return loader.within(main, argv)
end

return M
