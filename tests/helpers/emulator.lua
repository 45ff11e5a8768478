-- The Skafos emulator (tests/emulator/server.js) as a fixture for busted specs: start it on
-- a fresh data directory, read its URLs, drive its admin endpoint, restart and stop it.
-- Needs only cjson and the curl and node commands; works from any current directory.
--
--   local emu = require "emulator"
--   local e <close> = emu.start{}            -- or emu.start{seed = path, url_ttl = 60}
--   e:fault{role = "storage", method = "PUT", action = {type = "status", status = 503}}
--   ... run the client with e:env() ...
--   local log = e:requests()                 -- {api = {...}, download = {...}, storage = {...}}
--   e:stop()

local cjson = require "cjson"

local M = {}

---Quotes one word for /bin/sh.
local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

-- The repository root, from this file's own path (tests/helpers/emulator.lua).
local function repo_root()
  local source = debug.getinfo(1, "S").source
  local file = source:sub(1, 1) == "@" and source:sub(2) or "tests/helpers/emulator.lua"
  if file:sub(1, 1) ~= "/" then file = capture("pwd") .. "/" .. file end
  local dir = file:match("^(.*)/[^/]*$")
  return capture("cd " .. quote(dir .. "/../..") .. " && pwd")
end

M.root = repo_root()
M.server = M.root .. "/tests/emulator/server.js"
M.node = os.getenv("NODE") or "node"
M.token = "demo-token"

---True while the process runs (a zombie counts as gone).
local function alive(pid)
  local stat = slurp("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("%) (%a)")
  return state ~= "Z" and state ~= "X"
end

---Sends a JSON request with curl; returns status and decoded body (or raw text).
local function http(self, method, url, body)
  local out = self.work .. "/http.out"
  local args = { "curl", "-sS", "-X", method, "-o", quote(out), "-w", "'%{http_code}'" }
  if body ~= nil then
    local inp = self.work .. "/http.in"
    local f = assert(io.open(inp, "wb"))
    f:write(cjson.encode(body))
    f:close()
    args[#args + 1] = "-H 'Content-Type: application/json' --data-binary @" .. quote(inp)
  end
  args[#args + 1] = quote(url)
  local status = tonumber(capture(table.concat(args, " ") .. " 2>/dev/null")) or 0
  local text = slurp(out) or ""
  os.remove(out)
  local ok, decoded = pcall(cjson.decode, text)
  return status, ok and decoded or text
end

local Emulator = {}
Emulator.__index = Emulator

---Starts the server process on self.data_dir and fills in the URLs.
function Emulator:launch()
  local out, err = self.work .. "/stdout", self.work .. "/stderr"
  os.remove(out)
  local cmd = { quote(M.node), quote(M.server), "--data", quote(self.data_dir) }
  if self.opts.seed then cmd[#cmd + 1] = "--seed " .. quote(self.opts.seed) end
  if self.opts.url_ttl then cmd[#cmd + 1] = "--url-ttl " .. tostring(math.tointeger(self.opts.url_ttl)) end
  if self.opts.verbose then cmd[#cmd + 1] = "--verbose" end
  local line = table.concat(cmd, " ") .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err) .. " & echo $!"
  self.pid = assert(tonumber(capture(line)), "could not start the emulator")
  for _ = 1, 300 do
    local text = slurp(out)
    if text and text:find("\n") then
      local urls = cjson.decode(text:match("^[^\n]*"))
      self.api, self.download, self.storage, self.admin = urls.api, urls.download, urls.storage, urls.admin
      return self
    end
    if not alive(self.pid) then
      error("the emulator exited before it was ready: " .. (slurp(err) or "")
        .. "\n(are its dependencies installed? npm ci --prefix tests/emulator)", 2)
    end
    sleep(0.05)
  end
  self:kill()
  error("the emulator did not print its URLs within 15 s: " .. (slurp(err) or ""), 2)
end

---Stops the process (SIGTERM, then SIGKILL after 5 s) and keeps the data directory.
function Emulator:kill()
  local pid = self.pid
  if not pid then return end
  self.pid = nil
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(pid) then return end
    sleep(0.05)
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

---Stops the emulator and removes its data directory. Safe to call twice.
function Emulator:stop()
  self:kill()
  if self.work then
    os.execute("rm -rf " .. quote(self.work))
    self.work = nil
  end
end

---Stops and starts again on the same data directory (ports may change).
function Emulator:restart()
  self:kill()
  return self:launch()
end

local function admin_call(self, method, sub, body)
  local status, decoded = http(self, method, self.admin .. sub, body)
  if status < 200 or status >= 300 then
    error(string.format("admin %s %s: %d %s", method, sub, status,
      type(decoded) == "table" and tostring(decoded.error) or tostring(decoded)), 3)
  end
  return decoded
end

---Adds a fault rule ({role, method?, path_prefix?, times?, action}); returns {id = n}.
function Emulator:fault(rule) return admin_call(self, "POST", "/faults", rule) end
function Emulator:clear_faults() return admin_call(self, "DELETE", "/faults") end
---The log of requests: {api = {...}, download = {...}, storage = {...}}.
function Emulator:requests() return admin_call(self, "GET", "/requests") end
function Emulator:clear_requests() return admin_call(self, "DELETE", "/requests") end
---The records: organizations, apps, models, model_versions, environments, objects, ...
function Emulator:state() return admin_call(self, "GET", "/state") end
---A presigned storage URL for any key: {method = "GET", key = "...", ttl?, expired?} -> url.
function Emulator:presign(spec) return admin_call(self, "POST", "/presign", spec).url end
---Link shaping: {storage = {rate?, first_byte_ms?}, download = {...}} merged in; without an
---argument, the current settings.
function Emulator:shape(spec)
  if spec == nil then return admin_call(self, "GET", "/shaping") end
  return admin_call(self, "PUT", "/shaping", spec)
end
function Emulator:clear_shaping() return admin_call(self, "DELETE", "/shaping") end

---Environment variables that point a client at this emulator.
function Emulator:env()
  return {
    SKAFOS_API_URL = self.api,
    SKAFOS_DOWNLOAD_URL = self.download,
    SKAFOS_API_TOKEN = M.token,
  }
end

Emulator.__gc = Emulator.stop
Emulator.__close = Emulator.stop

---Starts an emulator on a fresh temporary data directory.
---@param opts? {seed?: string, url_ttl?: integer, verbose?: boolean}
function M.start(opts)
  opts = opts or {}
  local tmp = os.getenv("TMPDIR") or "/tmp"
  local work = capture("mktemp -d " .. quote(tmp .. "/skafos-emu.XXXXXX"))
  assert(work ~= "", "mktemp -d failed")
  local self = setmetatable({ opts = opts, work = work, data_dir = work .. "/data" }, Emulator)
  return self:launch()
end

return M
