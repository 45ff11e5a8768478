-- Workflows: loading a `<name>.lua` through the lookup path, checking its contract
-- ({description, options, run, hooks...}) and turning its `options` into an argparse
-- command line. Every error names the file it came from.
local loader = require "skafos.loader"
local errors = require "skafos.errors"

local M = {}

-- Option properties passed through to argparse as they are.
local PASSTHROUGH = {
  "args", "default", "choices", "count", "argname", "hidden", "target", "defmode",
  "action", "init", "hidden_name", "show_default",
}

local CONVERTERS = {
  integer = function(s)
    local n = math.tointeger(tonumber(s))
    if n then return n end
    return nil, ("'%s' is not a whole number"):format(s)
  end,
  number = function(s)
    local n = tonumber(s)
    if n then return n end
    return nil, ("'%s' is not a number"):format(s)
  end,
}

local function invalid(where, fmt, ...)
  errors.raise("USAGE", where .. ": " .. fmt:format(...))
end

---Checks the contract of a workflow table; raises a USAGE error naming `where`.
---@param wf any the value the file returned
---@param where string the file, for messages
---@return table wf
function M.validate(wf, where)
  if type(wf) ~= "table" then
    invalid(where, "a workflow must return a table "
      .. "{description = ..., options = {...}, run = function(ctx, args)}, got %s", type(wf))
  end
  if type(wf.run) ~= "function" then invalid(where, "the workflow has no run(ctx, args) function") end
  if wf.description ~= nil and type(wf.description) ~= "string" then
    invalid(where, "'description' must be a string, got %s", type(wf.description))
  end
  if wf.options ~= nil and type(wf.options) ~= "table" then
    invalid(where, "'options' must be a list of options, got %s", type(wf.options))
  end
  local function check_options(options, what)
    for i, opt in ipairs(options or {}) do
      if type(opt) ~= "table" or type(opt[1]) ~= "string" or opt[1] == "" then
        invalid(where, "%soption #%d must be a table whose first item is its name, e.g. {\"--level\", \"help text\"}",
          what, i)
      end
      if opt.type ~= nil and type(opt.type) ~= "function" and not CONVERTERS[opt.type] then
        invalid(where, "%soption '%s': unknown type '%s' (use \"integer\", \"number\" or a function)",
          what, opt[1], tostring(opt.type))
      end
    end
  end
  check_options(wf.options, "")
  if wf.commands ~= nil and type(wf.commands) ~= "table" then
    invalid(where, "'commands' must be a list of sub-commands, got %s", type(wf.commands))
  end
  for i, c in ipairs(wf.commands or {}) do
    if type(c) ~= "table" or type(c[1]) ~= "string" or not c[1]:match("^[%w][%w_%-]*$") then
      invalid(where, "sub-command #%d must be a table whose first item is its name, e.g. {\"create\", \"help\"}", i)
    end
    if c.options ~= nil and type(c.options) ~= "table" then
      invalid(where, "sub-command '%s': 'options' must be a list of options", c[1])
    end
    check_options(c.options, ("sub-command '%s': "):format(c[1]))
  end
  return wf
end

---Loads and validates workflow `name` from the lookup path.
---@return table|nil wf, string|nil path, string|nil origin
function M.load(name)
  local path, origin = loader.find_workflow(name)
  if not path then return nil end
  local chunk, err = loader.load_workflow(path, origin)
  if not chunk then errors.raise("USAGE", "cannot load workflow: " .. tostring(err)) end
  local ok, wf = pcall(chunk, name)
  if not ok then
    if errors.is(wf) then error(wf, 0) end
    errors.raise("USAGE", path .. ": " .. tostring(wf))
  end
  return M.validate(wf, path), path, origin
end

local function add_option(parser, opt)
  local name = opt[1]
  local element
  if name:sub(1, 1) ~= "-" then
    element = parser:argument(name, opt[2])
  elseif opt.flag then
    element = parser:flag(name, opt[2])
  else
    element = parser:option(name, opt[2])
  end
  for _, key in ipairs(PASSTHROUGH) do
    if opt[key] ~= nil then element[key](element, opt[key]) end
  end
  if opt.type then
    element:convert(CONVERTERS[opt.type] or opt.type)
  end
end

local function common_flags(parser)
  parser:flag("-v --verbose", "More messages; twice traces HTTP (secrets redacted)"):count("*")
  parser:flag("-h --help", "Show this help and exit")
end

---Adds a workflow's options, the ones every command has (-h/--help, -v/--verbose) and
---one sub-parser per sub-command (the chosen one's name lands in args.command) to an
---argparse parser or command.
---@param parser table
---@param wf table
---@return table<string, table> subs the sub-command parsers by name
function M.fill(parser, wf)
  parser:add_help(false):help_max_width(100)
  if wf.epilog then parser:epilog(wf.epilog) end
  for _, opt in ipairs(wf.options or {}) do add_option(parser, opt) end
  common_flags(parser)
  local subs = {}
  if wf.commands and #wf.commands > 0 then
    parser:command_target("command")
    for _, c in ipairs(wf.commands) do
      local sub = parser:command(c[1], c[2]):add_help(false):help_max_width(100)
      if c.epilog then sub:epilog(c.epilog) end
      for _, opt in ipairs(c.options or {}) do add_option(sub, opt) end
      common_flags(sub)
      subs[c[1]] = sub
    end
  end
  return subs
end

---The argparse parser of a workflow (see M.fill). Help is handled by the caller, never by
---os.exit.
---@param wf table
---@param name string
---@return table parser, table<string, table> subs the sub-command parsers by name
function M.parser(wf, name)
  local argparse = require "argparse"
  local parser = argparse("skafos " .. name, wf.description)
  return parser, M.fill(parser, wf)
end

return M
