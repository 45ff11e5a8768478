-- What the end-to-end specs share: the environment that points skafos at an emulator as
-- the demo user, a runner for the real binary with it, a shell capture and a listing.
--
--   local e2e = require "e2e"
--   local r = e2e.skafos(emu, dir, { "versions", "--json" }, { SKAFOS_MODEL_NAME = "x" })
local proc = require "proc"

local M = {}

M.TOKEN = "demo-token"

-- Variables of the caller's environment that would change what skafos does.
M.UNSET = { "SKAFOS_PATH", "SKAFOS_DEBUG", "SKAFOS_TRACE", "SKAFOS_SAFE_DIRECTORIES", "SKAFOS_API_TOKEN",
  "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY" }

---The environment of a run against emulator `emu` as the seed's demo user, with HOME,
---XDG_CONFIG_HOME and TMPDIR inside `dir`; `extra` adds or replaces variables.
---@return table<string, string>
function M.env(emu, dir, extra)
  local e = {
    SKAFOS_API_URL = emu.api, SKAFOS_DOWNLOAD_URL = emu.download, SKAFOS_API_TOKEN = M.TOKEN,
    SKAFOS_ORG_NAME = "demo-org", SKAFOS_APP_NAME = "demo-app", SKAFOS_MODEL_NAME = "demo-model",
    XDG_CONFIG_HOME = dir .. "/xdg", HOME = dir, TMPDIR = dir,
  }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

---Runs the skafos binary in `cwd` (default dir) with M.env.
---@return {code: integer, stdout: string, stderr: string}
function M.skafos(emu, dir, args, extra, cwd, stdin)
  return proc.skafos(args, { cwd = cwd or dir, env = M.env(emu, dir, extra), unset = M.UNSET, stdin = stdin })
end

---The standard output of a shell command.
function M.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

---The names in a directory, one level, sorted, one per line ("" when empty or missing).
function M.listing(dir)
  return M.sh("ls -A " .. proc.quote(dir) .. " 2>/dev/null")
end

---A config for the user (in dir/xdg) that retries what the default policy would, without
---waiting between attempts: for specs about what happens, not when.
function M.fast_retries(dir, attempts)
  proc.write(dir .. "/xdg/skafos/config.lua", ("return { retry = function(err, attempt) "
    .. "if err.retryable and attempt < %d then return 0 end end }"):format(attempts or 5))
end

---Runs skafos in `cwd` with `env` in the background, sends it `signal` (a name: INT, TERM,
---HUP, KILL) after `after` seconds, and returns its exit code and standard error. The
---signal goes to skafos alone (`timeout` would send it twice: to the child and its group).
---@return integer code, string stderr
function M.signalled(env, cwd, args, signal, after)
  local parts = { "cd", proc.quote(cwd), "&&", "env" }
  for k, v in pairs(env) do parts[#parts + 1] = proc.quote(k .. "=" .. v) end
  parts[#parts + 1] = proc.quote(proc.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = proc.quote(a) end
  local errfile = os.tmpname()
  local cmd = table.concat(parts, " ") .. " 2>" .. proc.quote(errfile) .. " & pid=$!; sleep " .. after
    .. "; kill -" .. signal .. " $pid; wait $pid; echo $?"
  local code = tonumber(M.sh(cmd))
  local err = proc.read(errfile) or ""
  os.remove(errfile)
  return code, err
end

---Publishes `files` (names in dir) as the demo model and returns the JSON result.
function M.publish(emu, dir, files, extra_args, extra)
  local args = { "publish", "--json" }
  for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
  for _, f in ipairs(files) do args[#args + 1] = f end
  local r = M.skafos(emu, dir, args, extra)
  assert(r.code == 0, r.stderr)
  return proc.json(r.stdout)
end

return M
