-- JSON output with a stable form, for --json and for scripts that read it: object keys in
-- sorted order, lists always as arrays (an empty one too, once marked with M.array), `/`
-- not escaped, integers printed as integers. Decoding stays with cjson.
local cjson = require "cjson"

local M = {}

local array_mt = { __name = "skafos.json.array" }

---The value a decoded JSON null has (cjson's).
M.null = cjson.null

---Marks t as a JSON array (so that it prints as [] when empty) and returns it.
---@generic T: table
---@param t T
---@return T
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

---Whether t is marked as an array, or is a non-empty sequence 1..n.
local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t",
}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function number(n)
  if math.type(n) == "integer" then return ("%d"):format(n) end
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then return ("%d"):format(math.tointeger(n)) end
  return ("%.14g"):format(n)
end

local function encode(v, buf, depth)
  local t = type(v)
  if t == "table" then
    if depth > 100 then error("json: nesting too deep", 0) end
    if is_array(v) then
      buf[#buf + 1] = "["
      for i = 1, #v do
        if i > 1 then buf[#buf + 1] = "," end
        encode(v[i], buf, depth + 1)
      end
      buf[#buf + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" then keys[#keys + 1] = k
        elseif math.type(k) == "integer" then keys[#keys + 1] = tostring(k) end
      end
      table.sort(keys)
      buf[#buf + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then buf[#buf + 1] = "," end
        buf[#buf + 1] = quote(k)
        buf[#buf + 1] = ":"
        local val = v[k]
        if val == nil then val = v[math.tointeger(tonumber(k))] end
        encode(val, buf, depth + 1)
      end
      buf[#buf + 1] = "}"
    end
  elseif t == "string" then
    buf[#buf + 1] = quote(v)
  elseif t == "number" then
    buf[#buf + 1] = number(v)
  elseif t == "boolean" then
    buf[#buf + 1] = tostring(v)
  elseif v == nil or v == cjson.null then
    buf[#buf + 1] = "null"
  else
    -- functions, userdata: what they are, not an error in the middle of an answer
    buf[#buf + 1] = quote(tostring(v))
  end
end

---Encodes v: sorted keys, arrays as marked or as sequences, no `/` escaping.
---@param v any
---@return string
function M.encode(v)
  local buf = {}
  encode(v, buf, 0)
  return table.concat(buf)
end

return M
