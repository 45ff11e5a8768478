-- skafos.s3.get over several connections against the emulator's storage: ranges written at
-- their offsets with the whole object's SHA-256, each failed, short or stalled range asked
-- for again alone, one connection for a server without ranges, a resume (after a failure
-- or a kill) that asks only for the ranges missing, and a clean restart when the object
-- changes between ranges. Into a sink (the zip extractor): the same ranges handed over in
-- order through a window of memory that the bytes ahead never exceed.
local s3 = require("skafos.s3")
local zip = require("skafos.zip")
local proc = require("proc")
local emulator = require("emulator")

local MiB = 1024 * 1024
-- The first request asks for 8 MiB; the rest is cut into pieces of 8 MiB at least, which
-- idle connections may split: ranges start at 8 MiB and 16 MiB, and perhaps in between.
local SIZE = 24 * MiB + 1234
local PROBE = "bytes=0-8388607"
local SECOND, THIRD = 8388608, 16777216

local slurp, spit = proc.read, proc.write

local function make_bytes(n, seed)
  local chunk, x = {}, seed
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[i] = string.char(x % 256)
  end
  local block = table.concat(chunk)
  local parts, i = {}, 0
  while i * #block < n do
    parts[#parts + 1] = block:sub(1 + i % 13) .. block:sub(1, i % 13)
    i = i + 1
  end
  return table.concat(parts):sub(1, n)
end

local function sha256(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("a")
  p:close()
  return out:match("^(%x+)")
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The storage GETs of the log as {range, if_range, status} in arrival order.
local function gets(e)
  local out = {}
  for _, r in ipairs(e:requests().storage) do
    if r.method == "GET" then
      out[#out + 1] = { range = r.headers["range"], if_range = r.headers["if-range"], status = r.status }
    end
  end
  return out
end

local function parse_range(range)
  local a, b = tostring(range):match("^bytes=(%d+)%-(%d+)$")
  return tonumber(a), tonumber(b)
end

-- The statuses of the requests whose range starts at `first`, in order.
local function starting_at(list, first)
  local out = {}
  for _, g in ipairs(list) do
    if parse_range(g.range) == first then out[#out + 1] = math.tointeger(g.status) end
  end
  return out
end

-- Sorts and merges {first, last} pairs (inclusive) into "a-b,c-d".
local function merged(pairs)
  table.sort(pairs, function(x, y) return x[1] < y[1] end)
  local out = {}
  for _, p in ipairs(pairs) do
    local last = out[#out]
    if last and p[1] <= last[2] + 1 then
      if p[2] > last[2] then last[2] = p[2] end
    else
      out[#out + 1] = { p[1], p[2] }
    end
  end
  local words = {}
  for _, p in ipairs(out) do words[#words + 1] = p[1] .. "-" .. p[2] end
  return table.concat(words, ",")
end

-- What the requests asked for, merged.
local function asked(list)
  local pairs = {}
  for _, g in ipairs(list) do
    local a, b = parse_range(g.range)
    pairs[#pairs + 1] = { assert(a, g.range), b }
  end
  return merged(pairs)
end

-- The ranges a meta file does not record as done, merged.
local function missing(meta)
  local done = {}
  for a, b in meta:gmatch("\ndone (%d+) (%d+)") do done[#done + 1] = { tonumber(a), tonumber(b) } end
  table.sort(done, function(x, y) return x[1] < y[1] end)
  local gaps, at = {}, 0
  for _, d in ipairs(done) do
    if d[1] > at then gaps[#gaps + 1] = { at, d[1] - 1 } end
    if d[2] + 1 > at then at = d[2] + 1 end
  end
  if at < SIZE then gaps[#gaps + 1] = { at, SIZE - 1 } end
  return merged(gaps)
end

-- No request but for status 206, every one from the `from`th conditional on the ETag.
local function all_ranged(list, etag, from)
  for i, g in ipairs(list) do
    assert.are.equal(206, math.tointeger(g.status), g.range)
    if i >= (from or 2) then assert.are.equal('"' .. etag .. '"', g.if_range) end
  end
end

describe("skafos.s3.get over several connections", function()
  local e, dir, data, src, key

  setup(function()
    e = emulator.start()
    data = make_bytes(SIZE, 11)
  end)

  teardown(function()
    if e then e:stop() end
  end)

  local n = 0
  before_each(function()
    dir = proc.tmpdir()
    src = spit(dir .. "/src.bin", data)
    n = n + 1
    key = "demo-org/ranges/" .. n .. "/model.zip"
    assert(s3.put(e:presign { method = "PUT", key = key }, src))
    e:clear_faults()
    e:clear_shaping()
    e:clear_requests()
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function url() return e:presign { method = "GET", key = key } end

  it("writes every range at its offset and checks the whole object's SHA-256", function()
    local dest = dir .. "/out.bin"
    local res = assert(s3.get(url(), dest, { connections = 4, ramp = false }))
    assert.are.equal(SIZE, res.bytes)
    assert.are.equal(sha256(src), res.sha256)
    assert.is_true(slurp(dest) == data, "the file differs from the object")
    assert.is_true(res.connections >= 2)
    local list = gets(e)
    -- the first request learns the size and the ETag; every later one is conditional on it
    assert.are.equal(PROBE, list[1].range)
    assert.is_nil(list[1].if_range)
    assert.is_true(#list >= 3)
    all_ranged(list, res.etag)
    assert.are.same({ 206 }, starting_at(list, SECOND))
    assert.are.same({ 206 }, starting_at(list, THIRD))
    assert.are.equal("0-" .. (SIZE - 1), asked(list))
    assert.is_false(exists(dest .. ".part"))
    assert.is_false(exists(dest .. ".part.etag"))
  end)

  it("grows from one connection while more add throughput", function()
    -- each connection 4 MiB/s: one more is worth it every time
    e:shape { storage = { rate = 4 * MiB, first_byte_ms = 10 } }
    local res = assert(s3.get(url(), dir .. "/out.bin", { connections = 4 }))
    assert.are.equal(sha256(src), res.sha256)
    assert.is_true(res.connections >= 2, "connections: " .. tostring(res.connections))
  end)

  it("goes on over the first connection when its range came fast, hashing nothing twice", function()
    -- Unshaped loopback: the first 8 MiB come fast enough that one connection is best.
    -- Whether they do depends on the machine's load, so up to five gets are tried, each
    -- checked whole, until one shows the hand-over: the first range, then the rest as
    -- one request from where it ended, conditional on the ETag.
    local handed = false
    for attempt = 1, 5 do
      local dest = dir .. "/out" .. attempt .. ".bin"
      e:clear_requests()
      local res = assert(s3.get(url(), dest, { connections = 4 }))
      assert.are.equal(SIZE, res.bytes)
      assert.are.equal(sha256(src), res.sha256)
      assert.is_true(slurp(dest) == data, "the file differs from the object")
      local list = gets(e)
      if #list == 2 then
        assert.are.equal(PROBE, list[1].range)
        assert.are.equal("bytes=" .. (8 * MiB) .. "-", list[2].range)
        assert.are.equal('"' .. res.etag .. '"', list[2].if_range)
        assert.is_false(res.resumed)
        handed = true
        break
      end
    end
    assert.is_true(handed, "no get handed its first range over in five tries")
  end)

  it("asks again for a range that failed, alone", function()
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=8388608-",
      action = { type = "status", status = 503 } }
    local res = assert(s3.get(url(), dir .. "/out.bin", { connections = 4, ramp = false }))
    assert.are.equal(sha256(src), res.sha256)
    local list = gets(e)
    assert.are.same({ 503, 206 }, starting_at(list, SECOND))
    assert.are.same({ 206 }, starting_at(list, 0))
    assert.are.same({ 206 }, starting_at(list, THIRD))
    local failed = 0
    for _, g in ipairs(list) do if g.status ~= 206 then failed = failed + 1 end end
    assert.are.equal(1, failed)
  end)

  it("asks for the rest of a range that came back short, from where it stopped", function()
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=16777216-",
      action = { type = "truncate", after_bytes = 1000000 } }
    local res = assert(s3.get(url(), dir .. "/out.bin", { connections = 4, ramp = false }))
    assert.are.equal(sha256(src), res.sha256)
    local list = gets(e)
    assert.are.same({ 206 }, starting_at(list, SECOND))
    assert.are.same({ 206 }, starting_at(list, THIRD)) -- cut short after 1000000 bytes, no error status
    assert.are.same({ 206 }, starting_at(list, THIRD + 1000000))
    all_ranged(list, res.etag)
  end)

  it("abandons a range that stalls past the low-speed limit and asks for the rest alone", function()
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=8388608-",
      action = { type = "stall", after_bytes = 500000, ms = 8000 } }
    local res = assert(s3.get(url(), dir .. "/out.bin",
      { connections = 4, ramp = false, low_speed = { bytes = 1000, seconds = 1 } }))
    assert.are.equal(sha256(src), res.sha256)
    local list = gets(e)
    assert.are.same({ 206 }, starting_at(list, THIRD))
    assert.are.same({ 206 }, starting_at(list, SECOND + 500000))
  end)

  it("takes the whole answer over one connection when storage does not answer ranges", function()
    e:fault { role = "storage", method = "GET", times = -1, action = { type = "ignore_range" } }
    local dest = dir .. "/out.bin"
    local res = assert(s3.get(url(), dest, { connections = 4, ramp = false }))
    assert.are.equal(200, res.status)
    assert.are.equal(1, res.connections)
    assert.are.equal(sha256(src), res.sha256)
    local list = gets(e)
    assert.are.equal(1, #list)
    assert.are.equal(200, list[1].status)
    assert.is_false(exists(dest .. ".part.etag"))
  end)

  it("keeps the ranges done when one fails for good; the next get asks only for the rest", function()
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=16777216-", times = -1,
      action = { type = "status", status = 503 } }
    local dest = dir .. "/out.bin"
    local res, err = s3.get(url(), dest, { connections = 4, ramp = false })
    assert.is_nil(res)
    assert.are.equal(503, err.status)
    assert.is_true(err.retryable)
    local meta = assert(slurp(dest .. ".part.etag"))
    assert.matches("^skafos%-ranges 1\netag \"%x+\"\nsize " .. SIZE .. "\n", meta)
    -- what failed is missing, from the start of the range that failed
    local want = missing(meta)
    assert.matches("^" .. THIRD .. "%-", want)
    e:clear_faults()
    e:clear_requests()
    res = assert(s3.get(url(), dest, { connections = 4, ramp = false, resume = true }))
    assert.is_true(res.resumed)
    assert.are.equal(sha256(src), res.sha256)
    assert.is_true(slurp(dest) == data, "the file differs from the object")
    local list = gets(e)
    all_ranged(list, res.etag, 1) -- every one conditional
    assert.are.equal(want, asked(list))
  end)

  it("resumes after a kill in the middle, asking only for the ranges missing", function()
    -- the third range crawls; the first two finish and are recorded, then the get is killed
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=16777216-", times = -1,
      action = { type = "trickle", after_bytes = 100000, bytes_per_second = 10000 } }
    local dest = dir .. "/out.bin"
    local script = spit(dir .. "/get.lua", ([[
      local s3 = require "skafos.s3"
      print(s3.get(%q, %q, { connections = 4, ramp = false, resume = true }))
    ]]):format(url(), dest))
    local p = assert(io.popen(("%s run %s >/dev/null 2>&1 & echo $!"):format(proc.quote(proc.bin), proc.quote(script))))
    local pid = assert(tonumber(p:read("a"):match("%d+")))
    p:close()
    -- wait (at most 60 s) until the first two ranges are on record
    local meta
    for _ = 1, 600 do
      meta = slurp(dest .. ".part.etag") or ""
      if missing(meta):match("^" .. THIRD .. "%-") then break end
      os.execute("sleep 0.1")
    end
    os.execute("kill -9 " .. pid)
    os.execute("sleep 0.2")
    meta = slurp(dest .. ".part.etag") or ""
    local want = missing(meta)
    assert.matches("^" .. THIRD .. "%-", want)
    assert.is_true(exists(dest .. ".part"))
    assert.is_false(exists(dest))
    e:clear_faults()
    e:clear_requests()
    local res = assert(s3.get(url(), dest, { connections = 4, ramp = false, resume = true }))
    assert.is_true(res.resumed)
    assert.are.equal(sha256(src), res.sha256)
    assert.is_true(slurp(dest) == data, "the file differs from the object")
    local list = gets(e)
    all_ranged(list, res.etag, 1)
    -- only what was missing, nothing of what the killed run had recorded
    assert.are.equal(want, asked(list))
    assert.are.same({}, starting_at(list, 0))
    assert.are.same({}, starting_at(list, SECOND))
  end)

  it("starts over cleanly when the object changes between ranges", function()
    e:shape { storage = { rate = 8 * MiB } }
    local new = spit(dir .. "/new.bin", make_bytes(SIZE - 5000, 23))
    local put = e:presign { method = "PUT", key = key }
    local changed = false
    local dest = dir .. "/out.bin"
    local res = assert(s3.get(url(), dest, { connections = 2, ramp = false, progress = function()
      if not changed then -- once the first two ranges are under way
        changed = true
        assert(os.execute("curl -sS -o /dev/null -T " .. proc.quote(new) .. " " .. proc.quote(put)))
      end
    end }))
    assert.is_true(changed)
    assert.is_true(res.restarted)
    assert.are.equal(SIZE - 5000, res.bytes)
    assert.are.equal(sha256(new), res.sha256)
    assert.is_true(slurp(dest) == slurp(new), "the file is not the new object")
    -- a range asked for with the old ETag got the whole new object: that was the restart
    local saw = false
    for _, g in ipairs(gets(e)) do
      if g.if_range and g.status == 200 then saw = true end
    end
    assert.is_true(saw)
    assert.is_false(exists(dest .. ".part.etag"))
  end)

  it("hands the file's bytes to a sink beside it in order, and again from 0 after a failure", function()
    local archive = dir .. "/archive.zip"
    assert(zip.create(archive, { { src = src, name = "model.bin" } }, { level = "store" }))
    assert(s3.put(e:presign { method = "PUT", key = key }, archive))
    e:clear_requests()
    local ex = assert(zip.extractor(dir .. "/tree"))
    -- the first attempt fails for good on its third range, after the sink saw the front
    e:fault { role = "storage", method = "GET", range_prefix = "bytes=" .. THIRD .. "-", times = -1,
      action = { type = "status", status = 503 } }
    local dest = dir .. "/out.zip"
    assert.is_nil(s3.get(url(), dest, { connections = 4, ramp = false, sink = ex, resume = true }))
    e:clear_faults()
    local res = assert(s3.get(url(), dest, { connections = 4, ramp = false, sink = ex, resume = true }))
    assert.is_true(res.resumed)
    assert.is_nil(res.sink_skipped)
    assert.are.equal(sha256(archive), res.sha256)
    assert.is_true(slurp(dest) == slurp(archive), "the file differs from the object")
    assert(ex:finish())
    assert.is_true(slurp(dir .. "/tree/model.bin") == data, "extracted bytes differ")
  end)

  it("starts the sink beside the file over when the object changes between ranges", function()
    local archive, new = dir .. "/archive.zip", dir .. "/new.zip"
    assert(zip.create(archive, { { src = src, name = "model.bin" } }, { level = "store" }))
    local other = make_bytes(SIZE - 5000, 23)
    spit(dir .. "/new.bin", other)
    assert(zip.create(new, { { src = dir .. "/new.bin", name = "model.bin" } }, { level = "store" }))
    local put = e:presign { method = "PUT", key = key }
    assert(s3.put(put, archive))
    e:clear_requests()
    e:shape { storage = { rate = 8 * MiB } }
    local ex = assert(zip.extractor(dir .. "/tree"))
    local changed = false
    local dest = dir .. "/out.zip"
    local res = assert(s3.get(url(), dest, { connections = 2, ramp = false, sink = ex, progress = function()
      if not changed then
        changed = true
        assert(os.execute("curl -sS -o /dev/null -T " .. proc.quote(new) .. " " .. proc.quote(put)))
      end
    end }))
    assert.is_true(res.restarted)
    assert.is_nil(res.sink_skipped)
    assert.is_true(slurp(dest) == slurp(new), "the file is not the new object")
    assert(ex:finish())
    assert.is_true(slurp(dir .. "/tree/model.bin") == other, "the tree is not the new object's")
  end)

  describe("into a sink", function()
    -- A 1 MiB window over 4 connections: ranges of 512 KiB, the first one too, so that a
    -- few MiB take many requests and the connections ahead must wait for the window.
    local WINDOW = 1024 * 1024
    local PIECE = 512 * 1024
    local archive, asize

    before_each(function()
      archive = dir .. "/archive.zip"
      assert(zip.create(archive, { { src = src, name = "model.bin" } }, { level = "store" }))
      asize = #slurp(archive)
      assert(s3.put(e:presign { method = "PUT", key = key }, archive))
      e:clear_requests()
    end)

    local function stream(ex, opts)
      local o = { connections = 4, ramp = false, window = WINDOW }
      for k, v in pairs(opts or {}) do o[k] = v end
      return s3.get(url(), ex, o)
    end

    it("extracts over several connections in order, holding no more than the window", function()
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(stream(ex))
      assert.are.equal(asize, got.bytes)
      assert.are.equal(sha256(archive), got.sha256)
      assert.is_true(got.connections >= 2, "connections: " .. tostring(got.connections))
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local list = gets(e)
      assert.is_true(#list >= 8, #list .. " requests")
      assert.are.equal("bytes=0-" .. (PIECE - 1), list[1].range)
      all_ranged(list, got.etag)
      assert.are.equal("0-" .. (asize - 1), asked(list))
      -- ranges ahead of the one being extracted waited in memory, never more than the window
      assert.are.equal(WINDOW, got.window)
      assert.is_true(got.buffered_peak > 0, "nothing was held: the test shows nothing")
      assert.is_true(got.buffered_peak <= WINDOW,
        ("held %d bytes, the window is %d"):format(got.buffered_peak, WINDOW))
    end)

    it("asks again for a range that failed or came back short, alone", function()
      e:fault { role = "storage", method = "GET", range_prefix = "bytes=" .. (2 * PIECE) .. "-",
        action = { type = "status", status = 503 } }
      e:fault { role = "storage", method = "GET", range_prefix = "bytes=" .. (4 * PIECE) .. "-",
        action = { type = "truncate", after_bytes = 100000 } }
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(stream(ex))
      assert.are.equal(sha256(archive), got.sha256)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local list = gets(e)
      assert.are.same({ 503, 206 }, starting_at(list, 2 * PIECE))
      assert.are.same({ 206 }, starting_at(list, 4 * PIECE))
      assert.are.same({ 206 }, starting_at(list, 4 * PIECE + 100000))
      assert.are.same({ 206 }, starting_at(list, 3 * PIECE))
      local failed = 0
      for _, g in ipairs(list) do if g.status ~= 206 then failed = failed + 1 end end
      assert.are.equal(1, failed)
    end)

    it("takes the whole answer over one connection when storage does not answer ranges", function()
      e:fault { role = "storage", method = "GET", times = -1, action = { type = "ignore_range" } }
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(stream(ex))
      assert.are.equal(200, got.status)
      assert.are.equal(1, got.connections)
      assert.are.equal(sha256(archive), got.sha256)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local list = gets(e)
      assert.are.equal(1, #list)
      assert.are.equal(200, list[1].status)
    end)

    it("starts the extraction over cleanly when the object changes between ranges", function()
      e:shape { storage = { rate = 8 * MiB } }
      local other = make_bytes(SIZE - 5000, 23)
      spit(dir .. "/new.bin", other)
      local new = dir .. "/new.zip"
      assert(zip.create(new, { { src = dir .. "/new.bin", name = "model.bin" } }, { level = "store" }))
      local put = e:presign { method = "PUT", key = key }
      local changed = false
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(stream(ex, { connections = 2, progress = function()
        if not changed then -- once the first ranges are under way
          changed = true
          assert(os.execute("curl -sS -o /dev/null -T " .. proc.quote(new) .. " " .. proc.quote(put)))
        end
      end }))
      assert.is_true(changed)
      assert.is_true(got.restarted)
      assert.are.equal(#slurp(new), got.bytes)
      assert.are.equal(sha256(new), got.sha256)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == other, "the tree is not the new object's")
      local saw = false
      for _, g in ipairs(gets(e)) do
        if g.if_range and g.status == 200 then saw = true end
      end
      assert.is_true(saw)
    end)

    it("goes on from what a resumable extractor kept, with If-Range", function()
      -- one range fails for good: the get fails, the extractor keeps what came before it
      e:fault { role = "storage", method = "GET", range_prefix = "bytes=" .. (8 * PIECE) .. "-", times = -1,
        action = { type = "status", status = 503 } }
      local ex = assert(zip.extractor(dir .. "/out", { resumable = true }))
      local res, err = stream(ex, { resume = true })
      assert.is_nil(res)
      assert.are.equal(503, err.status)
      e:clear_faults()
      e:clear_requests()
      local got = assert(stream(ex, { resume = true, hash = false }))
      assert.is_true(got.resumed)
      assert.is_false(got.restarted)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local list = gets(e)
      local first = parse_range(list[1].range)
      assert.is_true(first > 0 and first <= 8 * PIECE, list[1].range)
      all_ranged(list, got.etag, 1)
    end)
  end)
end)
