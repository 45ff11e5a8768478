-- The retry policy with a fake clock: which errors are retried, how long it waits, and
-- when it gives up. No network, no real sleeping.
local retry = require("skafos.retry")

-- A fake clock whose sleep advances time and records each wait.
local function fake(opts)
  local t = { now = 0, waits = {} }
  local o = {
    clock = function() return t.now end,
    sleep = function(s)
      t.waits[#t.waits + 1] = s
      t.now = t.now + s
      return true
    end,
    random = function() return 0.5 end,
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o, t
end

local function failing(errs, result)
  local calls = 0
  return function()
    calls = calls + 1
    local e = errs[calls]
    if e then return nil, e end
    return result or "ok", calls
  end, function() return calls end
end

local transient = { code = "UNAVAILABLE", message = "503", retryable = true }

describe("skafos.retry", function()
  it("returns the first success without waiting", function()
    local o, t = fake()
    local fn = failing({})
    assert.are.equal("ok", retry.run(fn, o))
    assert.are.equal(0, #t.waits)
  end)

  it("retries retryable errors and passes through all results of the success", function()
    local o, t = fake()
    local fn, calls = failing({ transient, transient }, "done")
    local a, b = retry.run(fn, o)
    assert.are.equal("done", a)
    assert.are.equal(3, b)
    assert.are.equal(3, calls())
    assert.are.equal(2, #t.waits)
  end)

  it("waits with exponential backoff and full jitter", function()
    local o, t = fake({ base_delay = 1, max_delay = 100, max_attempts = 5 })
    local fn = failing({ transient, transient, transient, transient })
    retry.run(fn, o)
    -- random() = 0.5 of ceilings 1, 2, 4, 8
    assert.are.same({ 0.5, 1, 2, 4 }, t.waits)
  end)

  it("caps the backoff at max_delay", function()
    local o, t = fake({ base_delay = 1, max_delay = 3, max_attempts = 5, random = function() return 0.999 end })
    retry.run(failing({ transient, transient, transient, transient }), o)
    for _, w in ipairs(t.waits) do assert.is_true(w < 3) end
    assert.is_true(t.waits[4] > 2.9)
  end)

  it("draws the jitter from the injected random source", function()
    local o, t = fake({ base_delay = 2, random = function() return 0 end })
    retry.run(failing({ transient }), o)
    assert.are.same({ 0 }, t.waits)
  end)

  it("does not retry errors that are not retryable", function()
    local o, t = fake()
    local fn, calls = failing({ { code = "EXPIRED", message = "Request has expired", retryable = false } })
    local res, err = retry.run(fn, o)
    assert.is_nil(res)
    assert.are.equal("EXPIRED", err.code)
    assert.are.equal(1, err.attempts)
    assert.are.equal(1, calls())
    assert.are.equal(0, #t.waits)
  end)

  it("does not retry non-idempotent requests", function()
    local o = fake({ idempotent = false })
    local fn, calls = failing({ transient })
    local res, err = retry.run(fn, o)
    assert.is_nil(res)
    assert.are.equal("UNAVAILABLE", err.code)
    assert.are.equal(1, calls())
  end)

  it("stops after max_attempts and reports them", function()
    local o = fake({ max_attempts = 3 })
    local fn, calls = failing({ transient, transient, transient, transient })
    local res, err = retry.run(fn, o)
    assert.is_nil(res)
    assert.are.equal(3, err.attempts)
    assert.are.equal(3, calls())
  end)

  it("honours Retry-After when it asks for more than the backoff", function()
    local o, t = fake({ base_delay = 0.1 })
    local slow = { code = "SLOW_DOWN", retryable = true, retry_after = 7 }
    retry.run(failing({ slow }), o)
    assert.are.same({ 7 }, t.waits)
  end)

  it("gives up when the next wait would pass max_elapsed", function()
    local o, t = fake({ max_elapsed = 10, max_attempts = 10 })
    local slow = { code = "SLOW_DOWN", retryable = true, retry_after = 6 }
    local fn, calls = failing({ slow, slow, slow })
    local res, err = retry.run(fn, o)
    assert.is_nil(res)
    assert.are.equal(2, calls())
    assert.are.same({ 6 }, t.waits)
    assert.is_string(err.gave_up)
  end)

  it("stops when sleeping is interrupted", function()
    local o = fake({ sleep = function() return nil, { code = "INTERRUPTED", message = "interrupted" } end })
    local res, err = retry.run(failing({ transient }), o)
    assert.is_nil(res)
    assert.are.equal("INTERRUPTED", err.code)
  end)

  it("lets the caller decide what is retryable", function()
    local o = fake({ retryable = function(e) return e.code == "CONFLICT" end })
    local fn, calls = failing({ { code = "CONFLICT", retryable = false } })
    assert.are.equal("ok", retry.run(fn, o))
    assert.are.equal(2, calls())
  end)

  it("tells the attempt number to the function", function()
    local seen = {}
    retry.run(function(n)
      seen[#seen + 1] = n
      if n < 3 then return nil, transient end
      return true
    end, fake())
    assert.are.same({ 1, 2, 3 }, seen)
  end)

  it("calls on_retry before each wait", function()
    local log = {}
    local o = fake({ on_retry = function(n, e, d) log[#log + 1] = { n, e.code, d } end })
    retry.run(failing({ transient }), o)
    assert.are.same({ { 1, "UNAVAILABLE", 0.25 } }, log)
  end)

  describe("parse_retry_after", function()
    it("reads delta-seconds", function()
      assert.are.equal(120, retry.parse_retry_after("120"))
      assert.are.equal(3, retry.parse_retry_after(3))
    end)

    it("reads an HTTP date relative to now", function()
      local now = os.time({ year = 2015, month = 10, day = 21, hour = 7, min = 27, sec = 0, isdst = false })
      now = now - (os.time(os.date("!*t", now)) - now)
      assert.are.equal(60, retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now))
    end)

    it("ignores junk", function()
      assert.is_nil(retry.parse_retry_after("soon"))
      assert.is_nil(retry.parse_retry_after(nil))
    end)
  end)

  describe("request", function()
    local function fake_http(statuses)
      local calls = 0
      return {
        request = function()
          calls = calls + 1
          local s = statuses[calls] or 200
          return { status = s, headers = s == 503 and { ["retry-after"] = "2" } or {}, body = "" }
        end,
      }, function() return calls end
    end

    it("retries 503 answers of idempotent requests, honouring Retry-After", function()
      local http, calls = fake_http({ 503, 503 })
      local o, t = fake({ http = http })
      local res = retry.request({ method = "GET", url = "http://x/" }, o)
      assert.are.equal(200, res.status)
      assert.are.equal(3, calls())
      assert.are.same({ 2, 2 }, t.waits)
    end)

    it("does not repeat a POST", function()
      local http, calls = fake_http({ 503 })
      local res = retry.request({ method = "POST", url = "http://x/" }, fake({ http = http }))
      assert.are.equal(503, res.status)
      assert.are.equal(1, calls())
    end)

    it("hands back the last answer when attempts run out", function()
      local http, calls = fake_http({ 503, 503, 503 })
      local res = retry.request({ url = "http://x/" }, fake({ http = http, max_attempts = 3 }))
      assert.are.equal(503, res.status)
      assert.are.equal(3, res.attempts)
      assert.are.equal(3, calls())
    end)
  end)

  describe("put and get", function()
    it("gives put a fresh source on every attempt", function()
      local made, seen = 0, {}
      local s3 = {
        put = function(_, src)
          seen[#seen + 1] = src
          if #seen < 2 then return nil, { code = "SEND", retryable = true } end
          return { status = 200 }
        end,
      }
      local res = retry.put("http://s/", function() made = made + 1; return "stream" .. made end, nil,
        fake({ s3 = s3 }))
      assert.are.equal(200, res.status)
      assert.are.same({ "stream1", "stream2" }, seen)
    end)

    it("resumes get from the second attempt on", function()
      local resumes = {}
      local s3 = {
        get = function(_, _, o)
          resumes[#resumes + 1] = o.resume or false
          if #resumes < 2 then return nil, { code = "TRUNCATED", retryable = true } end
          return { status = 206 }
        end,
      }
      local res = retry.get("http://s/", "/tmp/x", { progress = nil }, fake({ s3 = s3 }))
      assert.are.equal(206, res.status)
      assert.are.same({ false, true }, resumes)
    end)
  end)
end)
