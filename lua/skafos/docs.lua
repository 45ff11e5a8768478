-- The man page skafos(1) and the shell completions, generated from the same workflow
-- option tables as --help, so they cannot drift apart. Only the built-in workflows are
-- described (never project code); `skafos completion SHELL` and `skafos help --man` print
-- them, and the build installs what they print.
local core = require "skafos.core"
local workflow = require "skafos.workflow"

local M = {}

-- Host commands (in lua/skafos/cli.lua), with their arguments for the completions.
M.HOST = {
  { "help", "Show help for skafos or for one command", args = { { "command", "A command", args = "?" } } },
  { "run", "Run a Lua script with the skafos modules", args = { { "file", "The script" },
    { "args", "Its arguments", args = "*" } } },
  { "scripts", "Show the script lookup order; 'scripts dump NAME' prints a built-in workflow",
    args = { { "action", "dump", args = "?" }, { "name", "A built-in workflow", args = "?" } } },
  { "completion", "Print the completion script for a shell: bash, zsh or fish",
    args = { { "shell", "The shell", choices = { "bash", "zsh", "fish" } } } },
}

M.EXIT = {
  { 0, "ok" }, { 1, "failed, including a policy hook's refusal or a bug in a hook" },
  { 2, "usage or invalid input (nothing was sent)" }, { 3, "authentication: no token, or the token was rejected" },
  { 4, "not found: the message names the organization, app, model or version" }, { 5, "conflict" },
  { 6, "network or storage failure after retries" }, { 7, "integrity failure or unsafe archive" },
  { 8, "done, but a hook run after it failed (the result was printed)" },
  { 130, "interrupted by SIGINT (143 SIGTERM, 129 SIGHUP); a partial download is kept for resuming" },
}

---The built-in workflows, by name, loaded from the copies compiled into the binary.
---@return {name: string, wf: table}[]
function M.builtins()
  local list = {}
  for _, path in ipairs(core.embedded_list("scripts/")) do
    local name = path:match("^scripts/([%w_][%w_%-]*)%.lua$")
    if name then
      local chunk = assert(core.load_embedded(path))
      list[#list + 1] = { name = name, wf = workflow.validate(chunk(name), path) }
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

---One argparse parser for the whole command line: every built-in workflow and host
---command as a command of it.
function M.parser()
  local argparse = require "argparse"
  local p = argparse("skafos", "Publish model versions to Skafos and fetch them back"):add_help(false)
  p:flag("-h --help", "Show help")
  p:flag("-V --version", "Show versions")
  p:flag("-v --verbose", "More messages; twice traces HTTP (secrets redacted)"):count("*")
  for _, b in ipairs(M.builtins()) do
    workflow.fill(p:command(b.name, b.wf.description), b.wf)
  end
  for _, h in ipairs(M.HOST) do
    local c = p:command(h[1], h[2]):add_help(false)
    for _, a in ipairs(h.args) do
      local arg = c:argument(a[1], a[2])
      if a.args then arg:args(a.args) end
      if a.choices then arg:choices(a.choices) end
    end
    c:flag("-h --help", "Show this help and exit")
  end
  return p
end

---The completion script for shell "bash", "zsh" or "fish".
---@param shell string
---@return string|nil script, string|nil err
function M.completion(shell)
  local p = M.parser()
  if shell == "bash" then return p:get_bash_complete() end
  if shell == "zsh" then return p:get_zsh_complete() end
  if shell == "fish" then return p:get_fish_complete() end
  return nil, ("unknown shell '%s': use bash, zsh or fish"):format(tostring(shell))
end

-- roff: a backslash is \e, and a line may not start with . or '
local function roff(text)
  text = text:gsub("\\", "\\e")
  return (text:gsub("\n([.'])", "\n\\&%1"):gsub("^([.'])", "\\&%1"))
end

local function section(out, title, paragraphs)
  out[#out + 1] = ".SH " .. title
  for i, p in ipairs(paragraphs) do
    if i > 1 then out[#out + 1] = ".PP" end
    out[#out + 1] = roff(p)
  end
end

---The man page skafos(1), in roff.
---@return string
function M.man()
  local out = {
    '.TH SKAFOS 1 "" "skafos ' .. core.version .. '" "User Commands"',
    ".SH NAME",
    "skafos \\- publish machine-learning model versions to Skafos and fetch them back",
    ".SH SYNOPSIS",
    ".B skafos",
    "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR...]",
  }
  section(out, "DESCRIPTION", {
    "skafos is a small C host that embeds Lua 5.4. Every command except help, run, scripts and "
      .. "completion is a workflow written in Lua, compiled into the binary and replaceable by a file on "
      .. "disk. The options --json, -q, --progress and the connection options (--org, --app, --model, "
      .. "--api-url, --download-url, --hosts, --token-file, --ca-file) may come before the command name "
      .. "as well as after it.",
  })
  out[#out + 1] = ".SH COMMANDS"
  for _, b in ipairs(M.builtins()) do
    local parser, subs = workflow.parser(b.wf, b.name)
    out[#out + 1] = ".SS " .. b.name
    out[#out + 1] = ".nf"
    out[#out + 1] = roff(parser:get_help())
    out[#out + 1] = ".fi"
    local names = {}
    for name in pairs(subs) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      out[#out + 1] = ".SS " .. b.name .. " " .. name
      out[#out + 1] = ".nf"
      out[#out + 1] = roff(subs[name]:get_help())
      out[#out + 1] = ".fi"
    end
  end
  for _, h in ipairs(M.HOST) do
    out[#out + 1] = ".SS " .. h[1]
    out[#out + 1] = roff(h[2] .. ".")
  end
  section(out, "WORKFLOW LOOKUP", {
    "A command NAME runs NAME.lua from the first of: the directories in SKAFOS_PATH (separated by ;, an "
      .. "empty item standing for the defaults that follow), ./.skafos/scripts, "
      .. "$XDG_CONFIG_HOME/skafos/scripts, the installed share/skafos/scripts, and the copy built into "
      .. "the binary. Modules loaded with require are searched the same way in the lua directories. "
      .. "'skafos scripts' prints the order; 'skafos scripts dump NAME' prints a built-in workflow.",
  })
  section(out, "SECURITY", {
    "Files under ./.skafos/ (and a .skafos/config.lua found in a parent directory) run only when they "
      .. "and the directories holding them belong to the current user or root and are writable by "
      .. "neither group nor others, or when the project directory is listed in SKAFOS_SAFE_DIRECTORIES "
      .. "or in safe_directories in the user's config. help, --help, scripts and completion never run "
      .. "them. The token goes only over https (plain http only to loopback), never to storage, and is "
      .. "never printed. Outputs are never written through a symbolic link, a FIFO or another user's "
      .. "file. See SECURITY.md.",
  })
  section(out, "ENVIRONMENT", {
    "SKAFOS_API_TOKEN, SKAFOS_ORG_NAME, SKAFOS_APP_NAME, SKAFOS_MODEL_NAME, SKAFOS_API_URL, "
      .. "SKAFOS_DOWNLOAD_URL, SKAFOS_CA_FILE: connection settings (flags win over them; they win over "
      .. "config files).",
    "SKAFOS_PATH: extra directories for workflows and modules.",
    "SKAFOS_SAFE_DIRECTORIES: project directories (separated by :; DIR/* for every directory under DIR, "
      .. "* for all) whose .skafos files may run although another user owns them or they are writable by "
      .. "others.",
    "SKAFOS_DEBUG=1: errors are printed with a Lua traceback. SKAFOS_TRACE=1: HTTP is traced to "
      .. "standard error, secrets masked.",
  })
  section(out, "FILES", {
    "$XDG_CONFIG_HOME/skafos/config.lua (the user's settings and hooks), "
      .. "$XDG_CONFIG_HOME/skafos/token (the token 'skafos login' keeps, mode 0600), "
      .. ".skafos/config.lua (a project's settings and hooks).",
  })
  local codes = {}
  for _, e in ipairs(M.EXIT) do codes[#codes + 1] = ("%d %s"):format(e[1], e[2]) end
  section(out, "EXIT STATUS", { table.concat(codes, "; ") .. "." })
  out[#out + 1] = ".SH SEE ALSO"
  out[#out + 1] = ".BR lua (1)"
  return table.concat(out, "\n") .. "\n"
end

return M
