-- Errors with stable codes and the exit codes they map to. Library modules return
-- `nil, err`; workflows and the CLI raise these with errors.raise, and the host prints
-- "skafos: <message>" and exits with err.exit.
local core = require "skafos.core"

local M = {}

---Exit codes, as documented in README and `skafos help`.
M.EXIT = {
  OK = 0, FAILED = 1, USAGE = 2, AUTH = 3, NOT_FOUND = 4, CONFLICT = 5,
  NETWORK = 6, INTEGRITY = 7, AFTER_HOOK = 8, INTERRUPTED = 130,
}

local mt = {
  __name = "skafos.Error",
  __tostring = function(e) return tostring(e.message or e.code) end,
}

---Exit code for an error code ("NOT_FOUND" -> 4); unknown codes give 1.
---@param code string
---@return integer
function M.exit_code(code)
  return core.exit_code(code)
end

---A new error object.
---@param code string stable upper-case code, e.g. "USAGE"
---@param message string what went wrong and how to fix it
---@param fields? table extra fields (status, retryable, exit, ...)
---@return table
function M.new(code, message, fields)
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = v end
  -- a message may quote a server, which could echo the token back
  e.code, e.message = code, message ~= nil and core.redact(tostring(message)) or nil
  if e.exit == nil then e.exit = M.exit_code(code) end
  return setmetatable(e, mt)
end

---`nil, err` for a library function: `return errors.fail("USAGE", "...")`.
---@return nil, table
function M.fail(code, message, fields)
  return nil, M.new(code, message, fields)
end

---Raises an error object (never returns).
function M.raise(code, message, fields)
  error(M.new(code, message, fields), 0)
end

---Raises `err` (a `nil, err` table from a native module or library) as a CLI error,
---optionally prefixing its message with context.
---@param err table|string
---@param context? string
function M.throw(err, context)
  if type(err) ~= "table" then err = M.new("FAILED", tostring(err)) end
  local copy = {}
  for k, v in pairs(err) do copy[k] = v end
  if context then copy.message = context .. ": " .. tostring(err.message or err.code) end
  error(M.new(copy.code or "FAILED", copy.message, copy), 0)
end

---True when `v` is an error object (ours or a native module's).
function M.is(v)
  return type(v) == "table" and type(v.code) == "string" and v.message ~= nil
end

return M
