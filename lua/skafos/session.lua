-- What every API workflow starts with: resolved settings, the settings it needs checked,
-- the policy hooks (workflow overrides over config files), a retry policy and a client.
local api = require "skafos.api"
local config = require "skafos.config"
local hooks_mod = require "skafos.hooks"
local retry = require "skafos.retry"

local M = {}

---The hooks of every source, in the order they run: the user's config, the project's
---config, the workflow file, the call. Returns {name = {{fn, origin}, ...}}.
---@param s table resolved settings (s.hook_layers)
---@param workflow_hooks? table the workflow file's table
---@param call_hooks? table hooks given to the library call
function M.compose_hooks(s, workflow_hooks, call_hooks)
  local hooks = {}
  for _, name in ipairs(config.HOOKS) do hooks[name] = {} end
  local function add(t, origin)
    for _, name in ipairs(config.HOOKS) do
      if t and type(t[name]) == "function" then
        table.insert(hooks[name], { fn = t[name], origin = origin })
      end
    end
  end
  for _, layer in ipairs(s.hook_layers or {}) do add(layer.hooks, layer.origin) end
  add(workflow_hooks, "the workflow")
  add(call_hooks, "the call")
  return hooks
end

-- What a request that is not idempotent may be retried after: only a failure that shows
-- the server never processed it (no connection, no name, or an answer that says to come
-- back later).
local UNSENT = { COULDNT_CONNECT = true, COULDNT_RESOLVE = true }
local function unsent(err)
  return UNSENT[err.code] or err.status == 429 or err.status == 503
end

---The retry policy of a session: skafos.retry's defaults, or the user's `retry(err, attempt)`
---hook deciding (a delay in seconds, or nil to give up). `policy.call(fn, {what, unsent_only})`
---runs fn under it (unsent_only: a request that is not idempotent, retried only when it
---never reached the server); `on_retry(err, attempt, delay)` hears of each new attempt.
function M.policy(hook, on_retry)
  local policy = {}
  function policy.call(fn, info)
    local what = info and info.what
    local only_unsent = info and info.unsent_only
    local o = {
      on_retry = function(attempt, err, delay)
        err.what = what
        err.max_attempts = retry.defaults.max_attempts
        if on_retry then on_retry(err, attempt, delay) end
      end,
    }
    if only_unsent then
      o.retryable = function(err) return err.retryable == true and unsent(err) end
    end
    if hook then
      local first = o.retryable
      -- the hook's delay replaces the backoff: a zero base and the delay as Retry-After
      o.base_delay = 0
      o.retryable = function(err)
        if first and not first(err) then return false end
        local ok, delay = hooks_mod.call("retry", hook, err, err.attempts)
        if not ok then
          -- a failing retry hook gives up; its failure is told with the error it judged
          err.message = ("%s (the retry hook gave up: %s)"):format(tostring(err.message), tostring(delay.message))
          return false
        end
        if delay == nil or delay == false then return false end
        err.retry_after = tonumber(delay) or 0
        return true
      end
    end
    return retry.run(fn, o)
  end
  return policy
end

---Opens a session.
---@param opts table {flags = parsed options or library options, settings? (already resolved),
---  workflow_hooks? (the workflow file's table), hooks? (the call's), needs = {"token", "org", ...},
---  on_retry? fun(err, attempt, delay),
---  on_warning? fun(message) (hears the settings' warnings, e.g. a token file others can read)}
---@return table|nil session {settings, client, hooks, retry}
---@return table|nil err
function M.open(opts)
  local s = opts.settings
  if not s then
    local err
    s, err = config.resolve(opts.flags or {})
    if not s then return nil, err end
  end
  if opts.on_warning then
    for _, w in ipairs(s.warnings or {}) do opts.on_warning(w) end
  end
  -- --timeout bounds the whole command (where the host handles signals: the executable)
  if s.timeout then require("skafos.core").set_deadline(s.timeout) end
  local ok, err = config.require(s, opts.needs or { "token", "org", "app", "model" })
  if not ok then return nil, err end
  local hooks = M.compose_hooks(s, opts.workflow_hooks, opts.hooks)
  -- one retry policy decides: the most specific (the call's over the workflow's over the
  -- configs')
  local retry_hook = hooks.retry[#hooks.retry]
  local policy = M.policy(retry_hook and retry_hook.fn, opts.on_retry)
  return {
    settings = s,
    hooks = hooks,
    retry = policy,
    client = api.new(s, { retry = policy }),
  }
end

return M
