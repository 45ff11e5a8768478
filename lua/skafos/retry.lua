-- Retry policy for transfers and API calls: exponential backoff with full jitter,
-- Retry-After honoured, bounded by attempts and total time, only for retryable errors of
-- idempotent requests. Sleep, clock and randomness are injectable; users may replace it.
local M = {}

---@class skafos.RetryOptions
---@field max_attempts? integer    attempts in all, first included (default 5)
---@field max_elapsed? number      seconds from the first attempt after which no new one starts (default 600)
---@field base_delay? number       seconds; the cap of the first backoff (default 0.5)
---@field max_delay? number        seconds; the largest backoff cap (default 30)
---@field idempotent? boolean      false: never retry (default true)
---@field retryable? fun(err: table): boolean  overrides err.retryable
---@field sleep? fun(seconds: number): any, table?  default skafos.http.sleep
---@field clock? fun(): number     monotonic seconds, default skafos.http.now
---@field random? fun(): number    uniform in [0, 1), default math.random
---@field on_retry? fun(attempt: integer, err: table, delay: number)  called before each wait

M.defaults = {
  max_attempts = 5,
  max_elapsed = 600,
  base_delay = 0.5,
  max_delay = 30,
}

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local RETRY_STATUS = { [408] = "REQUEST_TIMEOUT", [429] = "SLOW_DOWN", [500] = "INTERNAL",
  [502] = "BAD_GATEWAY", [503] = "UNAVAILABLE", [504] = "GATEWAY_TIMEOUT" }

local function native_http()
  return require("skafos.http")
end

local function merged(opts)
  local o = {}
  for k, v in pairs(M.defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  o.sleep = o.sleep or native_http().sleep
  o.clock = o.clock or native_http().now
  o.random = o.random or math.random
  return o
end

---The backoff before retry number `n` (1 = after the first failure): a uniform draw in
---[0, min(max_delay, base_delay * 2^(n-1))) ("full jitter").
---@param n integer
---@param opts? skafos.RetryOptions
---@return number seconds
function M.backoff(n, opts)
  local o = opts or M.defaults
  local base = o.base_delay or M.defaults.base_delay
  local cap = o.max_delay or M.defaults.max_delay
  local ceiling = math.min(cap, base * 2 ^ (n - 1))
  return (o.random or math.random)() * ceiling
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

---Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.
---@param value string|number|nil
---@param now? integer  current epoch seconds (default os.time())
---@return number|nil seconds (never negative), nil when absent or unreadable
function M.parse_retry_after(value, now)
  if type(value) == "number" then return math.max(0, value) end
  if type(value) ~= "string" then return nil end
  local secs = value:match("^%s*(%d+)%s*$")
  if secs then return tonumber(secs) end
  local d, mon, y, h, mi, s = value:match("^%s*%a+,%s*(%d+)%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+GMT")
  if not d or not MONTHS[mon] then return nil end
  local t = { year = tonumber(y), month = MONTHS[mon], day = tonumber(d), hour = tonumber(h),
    min = tonumber(mi), sec = tonumber(s), isdst = false }
  -- os.time reads the table as local time: shift by this zone's offset from UTC.
  local here = os.time(t)
  local offset = os.time(os.date("!*t", here)) - here
  now = now or os.time()
  return math.max(0, here - offset - now)
end

---Whether the policy may repeat a request after this error.
---@param err table
---@param opts? skafos.RetryOptions
---@return boolean
function M.should_retry(err, opts)
  opts = opts or {}
  if opts.idempotent == false then return false end
  if type(err) ~= "table" or err.code == "INTERRUPTED" then return false end
  if opts.retryable then return opts.retryable(err) and true or false end
  return err.retryable == true
end

---Runs fn(attempt) until it succeeds, fails for good, or the budget is spent. fn returns
---its results on success or `nil, err` (err as the native modules make them).
---On failure returns nil and the last err, with err.attempts set.
---@param fn fun(attempt: integer): any, table?
---@param opts? skafos.RetryOptions
---@return any ...
function M.run(fn, opts)
  local o = merged(opts)
  local start = o.clock()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local results = table.pack(fn(attempt))
    if results[1] ~= nil then return table.unpack(results, 1, results.n) end
    local err = results[2]
    if type(err) ~= "table" then
      err = { code = "FAILED", message = tostring(err), retryable = false }
    end
    err.attempts = attempt
    if attempt >= o.max_attempts or not M.should_retry(err, o) then return nil, err end
    local delay = M.backoff(attempt, o)
    local after = M.parse_retry_after(err.retry_after)
    if after and after > delay then delay = after end
    if o.clock() - start + delay > o.max_elapsed then
      err.gave_up = "retry time budget spent"
      return nil, err
    end
    if o.on_retry then o.on_retry(attempt, err, delay) end
    local ok, serr = o.sleep(delay)
    if ok == nil and serr ~= nil then
      serr.attempts = attempt
      return nil, serr
    end
  end
end

---Turns an HTTP response that deserves another try (408, 429, 5xx gateway or unavailable)
---into a retryable error carrying Retry-After; other responses pass through.
---@param res table   a skafos.http.request result
---@return table|nil res, table|nil err
function M.classify_response(res)
  local code = RETRY_STATUS[res.status]
  if not code then return res end
  local after = M.parse_retry_after(res.headers and res.headers["retry-after"])
  return nil, setmetatable({
    code = code,
    message = ("HTTP %d from %s"):format(res.status, res.url and res.url:gsub("%?.*", "") or "server"),
    status = res.status,
    retryable = true,
    retry_after = after,
    response = res,
  }, { __tostring = function(e) return e.message end })
end

---skafos.http.request under the policy. Only idempotent methods are retried unless
---policy.idempotent says otherwise (PATCH of a filepath, for instance, is safe).
---@param req table          skafos.http.request options
---@param policy? skafos.RetryOptions
---@return table|nil res, table|nil err
function M.request(req, policy)
  local o = {}
  for k, v in pairs(policy or {}) do o[k] = v end
  if o.idempotent == nil then o.idempotent = IDEMPOTENT[(req.method or "GET"):upper()] or false end
  local http = o.http or native_http()
  local res, err = M.run(function()
    local r, e = http.request(req)
    if not r then return nil, e end
    return M.classify_response(r)
  end, o)
  if res == nil and err and err.response then -- out of attempts: hand back the answer
    err.response.attempts = err.attempts
    return err.response
  end
  return res, err
end

---skafos.s3.put under the policy. `source` is a path (reopened on each attempt), a
---byte source (reset by put), or a function returning a fresh source per attempt.
---@param url string
---@param source string|userdata|fun(attempt: integer): any
---@param opts? table   skafos.s3.put options
---@param policy? skafos.RetryOptions
---@return table|nil res, table|nil err
function M.put(url, source, opts, policy)
  local s3 = (policy and policy.s3) or require("skafos.s3")
  return M.run(function(attempt)
    local src = source
    if type(source) == "function" then
      local e
      src, e = source(attempt)
      if not src then return nil, e end
    end
    return s3.put(url, src, opts)
  end, policy)
end

---skafos.s3.get under the policy: every attempt after the first resumes the part file.
---@param url string
---@param dest string
---@param opts? table   skafos.s3.get options
---@param policy? skafos.RetryOptions
---@return table|nil res, table|nil err
function M.get(url, dest, opts, policy)
  local s3 = (policy and policy.s3) or require("skafos.s3")
  return M.run(function(attempt)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if attempt > 1 then o.resume = true end
    return s3.get(url, dest, o)
  end, policy)
end

return M
