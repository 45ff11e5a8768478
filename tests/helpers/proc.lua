-- Running the real skafos binary (or any command) from specs: argv in, exit code and
-- captured output out. Paths come from the environment ctest sets (SKAFOS_BIN, ...).
local M = {}

M.bin = os.getenv("SKAFOS_BIN") or "build/skafos"
M.source_dir = os.getenv("SKAFOS_SOURCE_DIR") or "."

---Quotes one word for /bin/sh.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

---Builds the shell command line of a run.
local function command_line(argv, opts)
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. M.quote(opts.cwd) .. " &&" end
  parts[#parts + 1] = "env"
  for _, name in ipairs(opts.unset or {}) do parts[#parts + 1] = "-u " .. M.quote(name) end
  for k, v in pairs(opts.env or {}) do parts[#parts + 1] = M.quote(k .. "=" .. v) end
  for _, a in ipairs(argv) do parts[#parts + 1] = M.quote(a) end
  return table.concat(parts, " ")
end

---Runs argv (a list; argv[1] is the program) and waits.
---@param argv string[]
---@param opts? {cwd?: string, env?: table<string,string>, unset?: string[], stdin?: string}
---@return {code: integer, stdout: string, stderr: string}
function M.run(argv, opts)
  opts = opts or {}
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(inp, "wb"))
  f:write(opts.stdin or "")
  f:close()
  local cmd = command_line(argv, opts) .. " <" .. inp .. " >" .. out .. " 2>" .. err
  local _, how, code = os.execute(cmd)
  local result = {
    code = how == "exit" and code or 128 + code,
    stdout = slurp(out),
    stderr = slurp(err),
  }
  os.remove(out)
  os.remove(err)
  os.remove(inp)
  return result
end

---Runs the skafos binary with the given arguments.
function M.skafos(args, opts)
  local argv = { M.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.run(argv, opts)
end

---A fresh temporary directory, removed by the returned function.
---@return string dir, function cleanup
function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/skafos-test.XXXXXX")
  local dir = p:read("l")
  p:close()
  return dir, function() os.execute("rm -rf " .. M.quote(dir)) end
end

---Writes `content` to `path`, creating parent directories.
function M.write(path, content)
  local f = io.open(path, "wb")
  if not f then
    os.execute("mkdir -p " .. M.quote((path:gsub("/[^/]*$", ""))))
    f = assert(io.open(path, "wb"))
  end
  f:write(content)
  f:close()
  return path
end

-- cjson decodes every number as a float; specs compare ids and versions as integers.
local function integral(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) == "table" then for k, x in pairs(v) do v[k] = integral(x) end end
  return v
end

---Decodes JSON with integral numbers as integers.
function M.json(text)
  return integral(require("cjson").decode(text))
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

return M
