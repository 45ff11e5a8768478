-- Calling the users' policy hooks (select_files, compression, before_create,
-- after_publish, retry) so that what goes wrong in one is told apart and named: a hook
-- that refuses on purpose (error("message"), assert(ok, "message") or hooks.refuse) is a
-- policy decision; any other error is a bug in the hook, reported with the hook's name,
-- the file and line it was defined at, and where it failed.
local errors = require "skafos.errors"

local M = {}

local refusal_mt = { __name = "skafos.Refusal", __tostring = function(r) return r.message end }

---Refuses, from inside a hook, with a message for the user (the same as error(message)).
---@param message string
function M.refuse(message)
  error(setmetatable({ message = tostring(message) }, refusal_mt), 2)
end

---Where fn was defined, as "file:line".
---@param fn function
---@return string
function M.where(fn)
  local info = debug.getinfo(fn, "S")
  if not info then return "?" end
  if info.what == "C" then return "[C]" end
  local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return ("%s:%d"):format(file, info.linedefined)
end

---Calls hook `name` with the arguments. Returns true and the hook's results, or nil and
---an error: code "VETO" when the hook refused on purpose, "HOOK" when it failed (a bug),
---or the interrupt as it came. err.hook and err.where name the hook.
---@param name string
---@param fn function
---@return boolean|nil ok, any ...
function M.call(name, fn, ...)
  local refused = false
  local function handler(e)
    if getmetatable(e) == refusal_mt then
      refused = true
      return e.message
    end
    if errors.is(e) then
      if e.code ~= "INTERRUPTED" then refused = true end
      return e
    end
    -- error() and assert() are the ways to refuse on purpose; a runtime error raised by
    -- Lua itself, or by a library function misused, is a bug in the hook
    local raiser = debug.getinfo(2, "f")
    refused = raiser ~= nil and (raiser.func == error or raiser.func == assert)
    return tostring(e)
  end
  local res = table.pack(xpcall(fn, handler, ...))
  if res[1] then return true, table.unpack(res, 2, res.n) end
  local e = res[2]
  if errors.is(e) and e.code == "INTERRUPTED" then return nil, e end
  local message = errors.is(e) and tostring(e.message) or tostring(e)
  local where = M.where(fn)
  if refused then
    return nil, errors.new("VETO", message, { hook = name, where = where, exit = errors.EXIT.FAILED })
  end
  return nil, errors.new("HOOK", ("the %s hook (%s) failed: %s"):format(name, where, message),
    { hook = name, where = where, exit = errors.EXIT.FAILED })
end

-- ---- several hooks of one name, from every source, in order -----------------------------

---Runs every hook of the list with the same arguments, in order; the first that fails
---stops the others. Returns true, or nil and its error (see M.call).
---@param name string
---@param list {fn: function, origin: string}[]
function M.run(name, list, ...)
  for _, h in ipairs(list or {}) do
    local ok, err = M.call(name, h.fn, ...)
    if not ok then return nil, err end
  end
  return true
end

---Runs every hook of the list, in order, whatever the others did. Returns the errors.
---@return table[] errors
function M.run_all(name, list, ...)
  local errs = {}
  for _, h in ipairs(list or {}) do
    local ok, err = M.call(name, h.fn, ...)
    if not ok then errs[#errs + 1] = err end
  end
  return errs
end

---Passes a value through every hook of the list: each gets what the one before returned
---(nil keeps it as it was). Returns the last value, or nil and the first error.
function M.chain(name, list, value)
  for _, h in ipairs(list or {}) do
    local ok, out = M.call(name, h.fn, value)
    if not ok then return nil, out end
    if out ~= nil then value = out end
  end
  return value
end

return M
