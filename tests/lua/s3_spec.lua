-- skafos.s3 against the emulator's storage: bytes in equal bytes out, the hashes agree,
-- nothing secret reaches storage, every failure mode ends in the right err.code with
-- the right file left on disk, and nothing planted at its paths is written through.
local cjson = require("cjson")
local core = require("skafos.core")
local http = require("skafos.http")
local s3 = require("skafos.s3")
local planted = require("planted")
local proc = require("proc")
local retry = require("skafos.retry")
local emulator = require("emulator")

local TOKEN = "demo-token"
local MODEL = "/organizations/demo-org/apps/demo-app/models/demo-model"

-- file helpers shared by the specs (tests/helpers/proc.lua)
local slurp, spit = proc.read, proc.write

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Deterministic, incompressible-looking bytes.
local function make_bytes(n, seed)
  local parts, x = {}, seed or 1
  local chunk = {}
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[i] = string.char(x % 256)
  end
  local block = table.concat(chunk)
  local i = 0
  while i * #block < n do
    parts[#parts + 1] = block:sub(1 + i % 7) .. block:sub(1, i % 7)
    i = i + 1
  end
  return table.concat(parts):sub(1, n)
end

local function tool_digest(tool, path)
  local p = io.popen(tool .. " '" .. path .. "'")
  local out = p:read("a")
  p:close()
  return out:match("^(%x+)")
end

local function api(e, method, path, body)
  local res = assert(http.request({
    method = method,
    url = e.api .. MODEL .. path,
    headers = { ["X-API-TOKEN"] = TOKEN, ["Content-Type"] = "application/json" },
    body = body and cjson.encode(body),
  }))
  return res, cjson.decode(res.body)
end

-- A fresh presigned PUT URL (E4).
local function new_version(e)
  local res, v = api(e, "POST", "/model_versions", { filename = "demo-model.zip" })
  assert.are.equal(201, res.status)
  return v
end

-- Finalize a version (E6) and get the presigned GET URL the download host points at (E8).
local function get_url(e, v)
  local res = api(e, "PATCH", ("/model_versions/%d"):format(v.model_version_id), { filepath = v.filepath })
  assert.are.equal(200, res.status)
  local dl = assert(http.request({ url = e.download .. MODEL, headers = { ["X-API-TOKEN"] = TOKEN } }))
  assert.are.equal(302, dl.status)
  return dl.redirect_url
end

local function storage_log(e, method)
  local out = {}
  for _, r in ipairs(e:requests().storage) do
    if not method or r.method == method then out[#out + 1] = r end
  end
  return out
end

local function fake_policy(extra)
  local waits = {}
  local p = { sleep = function(s) waits[#waits + 1] = s; return true end, random = function() return 0 end }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p, waits
end

-- Runs one s3.get in a skafos subprocess that may take at most 60 s, so a get that would
-- block (on a FIFO, say) fails the test instead of hanging the run.
local RUNNER = [[
local cjson = require("cjson")
local call = cjson.decode(arg[1])
local res, err = require("skafos.s3").get(call.url, call.dest, call.opts)
print(cjson.encode(res and { status = res.status } or { code = err.code, message = err.message }))
]]

local function get_bounded(dir, url, dest, opts)
  local script = proc.write(dir .. "/runner.lua", RUNNER)
  local r = proc.run({ "timeout", "60", proc.bin, "run", script,
    cjson.encode({ url = url, dest = dest, opts = opts or {} }) })
  assert(r.code ~= 124, "s3.get did not return within 60 s")
  assert.are.equal(0, r.code, r.stderr)
  return proc.json(r.stdout)
end

describe("skafos.s3", function()
  local e, dir, src, data
  local SIZE = 3 * 1024 * 1024 + 17

  setup(function()
    e = emulator.start()
  end)

  teardown(function()
    if e then e:stop() end
  end)

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    src = dir .. "/model.zip"
    data = data or make_bytes(SIZE, 7)
    spit(src, data)
    e:clear_faults()
    e:clear_requests()
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("puts and gets a file byte for byte with matching MD5 and SHA-256", function()
    local v = new_version(e)
    local put = assert(s3.put(v.presigned_url, src))
    assert.are.equal(200, put.status)
    assert.are.equal(SIZE, put.bytes)
    assert.are.equal(tool_digest("md5sum", src), put.md5)
    assert.are.equal(tool_digest("sha256sum", src), put.sha256)
    assert.are.equal(put.md5, put.etag)
    assert.is_true(put.etag_verified)

    local dest = dir .. "/fetched.zip"
    local got = assert(s3.get(get_url(e, v), dest))
    assert.are.equal(200, got.status)
    assert.are.equal(SIZE, got.bytes)
    assert.are.equal(put.sha256, got.sha256)
    assert.are.equal(put.md5, got.etag)
    assert.is_true(slurp(dest) == data, "fetched bytes differ")
    assert.is_false(exists(dest .. ".part"))
    assert.is_false(exists(dest .. ".part.etag"))
  end)

  it("never sends X-API-TOKEN to storage and always sends Content-Length", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    assert(s3.get(get_url(e, v), dir .. "/out"))
    local puts = 0
    for _, r in ipairs(storage_log(e)) do
      assert.is_nil(r.headers["x-api-token"])
      assert.is_nil(r.headers["authorization"])
      if r.method == "PUT" then
        puts = puts + 1
        assert.are.equal(tostring(SIZE), r.headers["content-length"])
        assert.is_nil(r.headers["transfer-encoding"])
        assert.are.equal("application/octet-stream", r.headers["content-type"])
        assert.are.equal("100-continue", r.headers["expect"])
        assert.matches("^skafos/%S+ libcurl/", r.headers["user-agent"])
      end
    end
    assert.are.equal(1, puts)
  end)

  it("refuses to send an API token to storage", function()
    assert.has_error(function()
      s3.put("http://127.0.0.1:1/x", src, { headers = { ["X-API-TOKEN"] = TOKEN } })
    end)
  end)

  it("reports an expired URL as EXPIRED and does not retry it", function()
    e:fault({ role = "api", action = { type = "expire_next_url" } })
    local v = new_version(e)
    local policy, waits = fake_policy()
    local res, err = retry.put(v.presigned_url, src, nil, policy)
    assert.is_nil(res)
    assert.are.equal("EXPIRED", err.code)
    assert.are.equal(403, err.status)
    assert.is_false(err.retryable)
    assert.are.equal(1, err.attempts)
    assert.are.equal(0, #waits)
    local puts = storage_log(e, "PUT")
    assert.are.equal(1, #puts)
    assert.is_true(puts[1].bytes_in < SIZE, "a refused URL should not cost the upload")
  end)

  it("reports a tampered signature as SIGNATURE, not retryable", function()
    local v = new_version(e)
    local url = v.presigned_url:gsub("(X%-Amz%-Signature=)(%x)", function(k, c)
      return k .. (c == "0" and "1" or "0")
    end)
    local res, err = s3.put(url, src)
    assert.is_nil(res)
    assert.are.equal("SIGNATURE", err.code)
    assert.is_false(err.retryable)
    assert.are.equal("SignatureDoesNotMatch", err.s3_code)
  end)

  it("retries 503 twice and then succeeds through the retry policy", function()
    e:fault({ role = "storage", method = "PUT", times = 2, action = { type = "status", status = 503 } })
    local v = new_version(e)
    local policy, waits = fake_policy()
    local res = assert(retry.put(v.presigned_url, src, nil, policy))
    assert.are.equal(200, res.status)
    assert.are.equal(tool_digest("md5sum", src), res.etag)
    assert.are.equal(2, #waits)
    local puts = storage_log(e, "PUT")
    assert.are.equal(3, #puts)
    assert.are.same({ 503, 503, 200 }, { puts[1].status, puts[2].status, puts[3].status })
  end)

  it("survives a connection reset mid-put with a retry that sends the file again", function()
    e:fault({
      role = "storage", method = "PUT",
      action = { type = "reset", after_bytes = 1024 * 1024, direction = "request" },
    })
    local v = new_version(e)
    local first
    local policy = fake_policy({ on_retry = function(_, err) first = first or err end })
    local res = assert(retry.put(v.presigned_url, src, nil, policy))
    assert.are.equal(200, res.status)
    assert.are.equal(SIZE, res.bytes)
    assert.are.equal(tool_digest("md5sum", src), res.md5)
    assert.is_true(first.retryable)
    assert.is_truthy(({ SEND = true, RECV = true, EMPTY_REPLY = true })[first.code], first.code)
    local puts = storage_log(e, "PUT")
    assert.are.equal(2, #puts)
    assert.are.equal(200, puts[2].status)
  end)

  it("keeps the part file of a truncated get and resumes it with a Range request", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local url = get_url(e, v)
    local dest = dir .. "/out.zip"
    e:fault({ role = "storage", method = "GET", action = { type = "truncate", after_bytes = 1024 * 1024 } })
    local res, err = s3.get(url, dest)
    assert.is_nil(res)
    assert.are.equal("TRUNCATED", err.code)
    assert.is_true(err.retryable)
    assert.is_false(exists(dest))
    local part = slurp(dest .. ".part")
    assert.is_true(#part > 0 and #part < SIZE)
    assert.is_true(part == data:sub(1, #part))

    e:clear_requests()
    local got = assert(s3.get(url, dest, { resume = true }))
    assert.are.equal(206, got.status)
    assert.is_true(got.resumed)
    assert.are.equal(SIZE, got.bytes)
    assert.are.equal(tool_digest("sha256sum", src), got.sha256)
    assert.is_true(slurp(dest) == data, "resumed bytes differ")
    local gets = storage_log(e, "GET")
    assert.are.equal(1, #gets)
    assert.are.equal("bytes=" .. #part .. "-", gets[1].headers["range"])
    assert.are.equal('"' .. got.etag .. '"', gets[1].headers["if-range"])
    assert.is_false(exists(dest .. ".part"))
  end)

  it("resumes a truncated get through the retry policy", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local url = get_url(e, v)
    e:fault({ role = "storage", method = "GET", action = { type = "truncate", after_bytes = 512 * 1024 } })
    local got = assert(retry.get(url, dir .. "/out.zip", nil, fake_policy()))
    assert.is_true(got.resumed)
    assert.is_true(slurp(dir .. "/out.zip") == data)
  end)

  it("restarts from zero when the part file's ETag no longer matches", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local dest = dir .. "/out.zip"
    spit(dest .. ".part", string.rep("x", 1000))
    spit(dest .. ".part.etag", '"0123456789abcdef0123456789abcdef"')
    local got = assert(s3.get(get_url(e, v), dest, { resume = true }))
    assert.are.equal(200, got.status)
    assert.is_true(got.restarted)
    assert.are.equal(SIZE, got.bytes)
    assert.is_true(slurp(dest) == data, "restarted bytes differ")
    local gets = storage_log(e, "GET")
    assert.are.equal("bytes=1000-", gets[#gets].headers["range"])
  end)

  it("finishes from a part file that already holds the whole object (416)", function()
    local v = new_version(e)
    local put = assert(s3.put(v.presigned_url, src))
    local dest = dir .. "/out.zip"
    spit(dest .. ".part", data)
    spit(dest .. ".part.etag", '"' .. put.etag .. '"')
    local got = assert(s3.get(get_url(e, v), dest, { resume = true }))
    assert.are.equal(416, got.status)
    assert.are.equal(SIZE, got.bytes)
    assert.are.equal(put.sha256, got.sha256)
    assert.is_true(slurp(dest) == data)
  end)

  it("fails with INTEGRITY when the ETag does not match the MD5 sent", function()
    e:fault({ role = "storage", action = { type = "etag" } })
    local v = new_version(e)
    local res, err = s3.put(v.presigned_url, src)
    assert.is_nil(res)
    assert.are.equal("INTEGRITY", err.code)
    assert.matches("does not match", err.message)
  end)

  it("reports, but does not fail on, an ETag that is not a plain MD5", function()
    e:fault({ role = "storage", action = { type = "etag", value = '"9b2cf535f27731c974343645a3985328-2"' } })
    local v = new_version(e)
    local res = assert(s3.put(v.presigned_url, src))
    assert.is_false(res.etag_verified)
    assert.is_string(res.etag_note)
    assert.are.equal("9b2cf535f27731c974343645a3985328-2", res.etag)
  end)

  it("fails with INTEGRITY when the fetched bytes do not have the expected SHA-256", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local dest = dir .. "/out.zip"
    local res, err = s3.get(get_url(e, v), dest, { sha256 = string.rep("0", 64) })
    assert.is_nil(res)
    assert.are.equal("INTEGRITY", err.code)
    assert.is_false(exists(dest))
    assert.is_false(exists(dest .. ".part"))
  end)

  it("times out a stalled server with the low-speed limit", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local url = get_url(e, v)
    e:fault({ role = "storage", method = "GET", action = { type = "stall", after_bytes = 256 * 1024, ms = 10000 } })
    local res, err = s3.get(url, dir .. "/out.zip", { low_speed = { bytes = 1024, seconds = 1 } })
    assert.is_nil(res)
    assert.are.equal("TIMEOUT", err.code)
    assert.is_true(err.retryable)
    assert.is_false(exists(dir .. "/out.zip"))
  end)

  it("never writes an error body into the file", function()
    local v = new_version(e)
    assert(s3.put(v.presigned_url, src))
    local url = get_url(e, v)
    e:fault({ role = "storage", method = "GET", action = { type = "status", status = 500 } })
    local dest = dir .. "/out.zip"
    local res, err = s3.get(url, dest)
    assert.is_nil(res)
    assert.are.equal("INTERNAL", err.code)
    assert.is_true(err.retryable)
    assert.are.equal(500, err.status)
    assert.is_false(exists(dest))
    assert.are.equal("", slurp(dest .. ".part") or "")
  end)

  it("reports progress with done and total, ending at the size", function()
    local v = new_version(e)
    local calls = {}
    assert(s3.put(v.presigned_url, src, { progress = function(done, total) calls[#calls + 1] = { done, total } end }))
    assert.is_true(#calls >= 1)
    assert.are.same({ SIZE, SIZE }, calls[#calls])
    local gcalls = {}
    assert(s3.get(get_url(e, v), dir .. "/out", {
      progress = function(done, total) gcalls[#gcalls + 1] = { done, total } end,
    }))
    assert.are.same({ SIZE, SIZE }, gcalls[#gcalls])
  end)

  it("turns an error in the progress callback into a CALLBACK error", function()
    local v = new_version(e)
    local res, err = s3.put(v.presigned_url, src, { progress = function() error("stop here") end })
    assert.is_nil(res)
    assert.are.equal("CALLBACK", err.code)
    assert.matches("stop here", err.message)
  end)

  it("redacts signatures and credentials in its trace", function()
    local v = new_version(e)
    local trace = dir .. "/trace.log"
    assert(s3.put(v.presigned_url, src, { trace = trace }))
    local text = slurp(trace)
    local sig = v.presigned_url:match("X%-Amz%-Signature=(%x+)")
    local cred = v.presigned_url:match("X%-Amz%-Credential=([^&]+)")
    assert.matches("X%-Amz%-Signature=REDACTED", text)
    assert.matches("X%-Amz%-Credential=REDACTED", text)
    assert.is_nil(text:find(sig, 1, true))
    assert.is_nil(text:find(cred, 1, true))
  end)

  it("reports a missing source file without contacting storage", function()
    local res, err = s3.put("http://127.0.0.1:1/x", dir .. "/missing.zip")
    assert.is_nil(res)
    assert.are.equal("READ", err.code)
    assert.matches("missing%.zip", err.message)
  end)

  it("puts a byte source of known length", function()
    local ok, zip = pcall(require, "skafos.zip")
    if not ok or not zip.stream then
      pending("skafos.zip.stream is not available in this build")
      return
    end
    local size, stream = assert(zip.stream({ { src = src, name = "model.bin" } }, { level = "store" }))
    local archive = dir .. "/archive.zip"
    assert(zip.create(archive, { { src = src, name = "model.bin" } }, { level = "store" }))
    assert.are.equal(#slurp(archive), size)
    local v = new_version(e)
    local res = assert(s3.put(v.presigned_url, stream))
    assert.are.equal(200, res.status)
    assert.are.equal(size, res.bytes)
    assert.is_true(res.etag_verified)
    -- a second put (a retry) starts the stream again from byte 0
    v = new_version(e)
    local again = assert(s3.put(v.presigned_url, stream))
    assert.are.equal(res.md5, again.md5)
    local got = assert(s3.get(get_url(e, v), dir .. "/fetched.zip"))
    assert.are.equal(res.sha256, got.sha256)
  end)
  describe("files planted at the paths a get writes", function()
    local VICTIM = "the victim's bytes\n"
    local url, dest, victim
    local q = proc.quote

    local WHAT = planted.WHAT
    local function plant(kind, path) planted.plant(kind, path, victim, VICTIM) end
    local function sh(cmd) assert(os.execute(cmd), cmd) end

    before_each(function()
      local v = new_version(e)
      assert(s3.put(v.presigned_url, src))
      url = get_url(e, v)
      dest = dir .. "/out.zip"
      victim = spit(dir .. "/victim.txt", VICTIM)
      e:clear_requests()
    end)

    for _, suffix in ipairs({ ".part", ".part.etag" }) do
      for _, kind in ipairs({ "symlink", "hardlink", "foreign", "fifo" }) do
        it(("refuses a %s at dest%s as UNSAFE_PATH before a request"):format(kind, suffix), function()
          local path = dest .. suffix
          plant(kind, path)
          for _, resume in ipairs({ true, false }) do
            local err
            if kind == "fifo" then
              err = get_bounded(dir, url, dest, { resume = resume })
            else
              local res
              res, err = s3.get(url, dest, { resume = resume })
              assert.is_nil(res)
            end
            assert.are.equal("UNSAFE_PATH", err.code)
            assert.truthy(err.message:find(path .. " " .. WHAT[kind], 1, true), err.message)
            assert.truthy(err.message:find("skafos does not write through it", 1, true), err.message)
          end
          assert.are.equal(VICTIM, slurp(victim))
          if kind == "foreign" then assert.are.equal(VICTIM, slurp(path)) end
          assert.is_false(exists(dest))
          assert.are.equal(0, #storage_log(e))
          -- once it is gone, the same get goes through
          os.remove(path)
          assert(s3.get(url, dest, { resume = true }))
          assert.is_true(slurp(dest) == data)
          assert.are.equal(VICTIM, slurp(victim))
        end)
      end
    end

    it("does not resume a part file that now belongs to another user", function()
      e:fault({ role = "storage", method = "GET", action = { type = "truncate", after_bytes = 1024 * 1024 } })
      assert.is_nil((s3.get(url, dest)))
      local part = slurp(dest .. ".part")
      assert.is_true(#part > 0 and #part < SIZE)
      sh("chown nobody " .. q(dest .. ".part"))
      e:clear_requests()
      local res, err = s3.get(url, dest, { resume = true })
      assert.is_nil(res)
      assert.are.equal("UNSAFE_PATH", err.code)
      assert.truthy(err.message:find(dest .. ".part belongs to another user (uid ", 1, true), err.message)
      assert.are.equal(part, slurp(dest .. ".part"))
      assert.are.equal(0, #storage_log(e))
      -- our own stale part resumes as ever
      sh("chown " .. q(proc.run({ "id", "-u" }).stdout:match("%d+")) .. " " .. q(dest .. ".part"))
      local got = assert(s3.get(url, dest, { resume = true }))
      assert.is_true(got.resumed)
      assert.is_true(slurp(dest) == data)
    end)

    it("refuses a planted trace file, for put and get", function()
      local trace = dir .. "/trace.log"
      plant("symlink", trace)
      local v = new_version(e)
      e:clear_requests()
      local res, err = s3.put(v.presigned_url, src, { trace = trace })
      assert.is_nil(res)
      assert.are.equal("UNSAFE_PATH", err.code)
      assert.truthy(err.message:find(trace .. " is a symbolic link", 1, true), err.message)
      res, err = s3.get(url, dest, { trace = trace })
      assert.is_nil(res)
      assert.are.equal("UNSAFE_PATH", err.code)
      assert.are.equal(VICTIM, slurp(victim))
      assert.are.equal(0, #storage_log(e))
    end)

    it("masks in its trace a registered secret that storage echoes", function()
      local SECRET = "storage-echoed-secret-3141"
      core.add_secret(SECRET)
      e:fault({ role = "storage", method = "GET",
        action = { type = "status", status = 503, headers = { ["X-Echo"] = "[" .. SECRET .. "]" } } })
      local trace = dir .. "/trace.log"
      local res, err = s3.get(url, dest, { trace = trace })
      assert.is_nil(res)
      assert.are.equal(503, err.status)
      local text = slurp(trace)
      assert.truthy(text:lower():find("< x%-echo: %[redacted%]"), text)
      assert.is_nil(text:find(SECRET, 1, true))
    end)
  end)

  describe("get into a zip extractor", function()
    local zip = require("skafos.zip")
    local archive, url

    local function listing()
      local p = assert(io.popen("ls -A '" .. dir .. "'"))
      local out = p:read("a")
      p:close()
      return out
    end

    -- A zip whose stored entry has its sizes after the data (as Python writes to a pipe),
    -- put into storage; returns its path and a GET URL.
    local function stored_descriptor_zip()
      local bad = dir .. "/stored-descriptor.zip"
      assert(os.execute(([[python3 -c '
import io, sys, zipfile
class Pipe(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
with open(sys.argv[1], "wb") as f, zipfile.ZipFile(Pipe(f), "w") as z:
    z.writestr("a.txt", "stored, sizes after the data")
' '%s']]):format(bad)))
      local v = new_version(e)
      assert(s3.put(v.presigned_url, bad))
      return bad, get_url(e, v)
    end

    before_each(function()
      archive = dir .. "/archive.zip"
      spit(dir .. "/card.txt", ("a line of a model card\n"):rep(20000))
      assert(zip.create(archive, {
        { src = src, name = "model.bin" },
        { src = dir .. "/card.txt", name = "doc/card.txt", level = 6 },
      }, { level = "store" }))
      local v = new_version(e)
      assert(s3.put(v.presigned_url, archive))
      url = get_url(e, v)
      e:clear_requests()
    end)

    it("extracts while downloading, keeping no archive and no part file", function()
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(s3.get(url, ex, { resume = true }))
      assert.are.equal(200, got.status)
      assert.are.equal(#slurp(archive), got.bytes)
      assert.are.equal(tool_digest("sha256sum", archive), got.sha256)
      assert.are.same({ entries = 2, bytes = SIZE + 20000 * 23 }, assert(ex:finish()))
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      assert.are.equal("archive.zip\ncard.txt\nmodel.zip\nout\n", listing())
      assert.is_nil(storage_log(e, "GET")[1].headers["range"])
      -- without the SHA-256, on request
      ex = assert(zip.extractor(dir .. "/out2"))
      got = assert(s3.get(url, ex, { hash = false }))
      assert.is_nil(got.sha256)
      assert.are.equal(#slurp(archive), got.bytes)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out2/model.bin") == data, "extracted bytes differ")
    end)

    it("fails a truncated or refused get, leaves nothing staged, and starts over on the next", function()
      local ex = assert(zip.extractor(dir .. "/out"))
      e:fault({ role = "storage", method = "GET", times = 1,
        action = { type = "truncate", after_bytes = 1024 * 1024 } })
      local res, err = s3.get(url, ex)
      assert.is_nil(res)
      assert.are.equal("TRUNCATED", err.code)
      assert.are.equal("archive.zip\ncard.txt\nmodel.zip\n", listing())
      e:fault({ role = "storage", method = "GET", times = 1, action = { type = "status", status = 500 } })
      res, err = s3.get(url, ex)
      assert.is_nil(res)
      assert.are.equal(500, err.status)
      assert.are.equal("archive.zip\ncard.txt\nmodel.zip\n", listing())
      assert(s3.get(url, ex))
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
    end)

    it("resets the extractor when the retry policy tries again", function()
      local ex = assert(zip.extractor(dir .. "/out"))
      e:fault({ role = "storage", method = "GET", times = 1, action = { type = "truncate", after_bytes = 512 * 1024 } })
      local got = assert(retry.get(url, ex, nil, fake_policy()))
      assert.is_false(got.resumed)
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local gets = storage_log(e, "GET")
      assert.are.equal(2, #gets)
      assert.is_nil(gets[2].headers["range"])
    end)

    it("goes on after a failed get with Range + If-Range, and starts over for a changed object", function()
      local ex = assert(zip.extractor(dir .. "/out", { resumable = true }))
      e:fault({ role = "storage", method = "GET", times = 1,
        action = { type = "truncate", after_bytes = 1024 * 1024 } })
      local res, err = s3.get(url, ex, { resume = true })
      assert.is_nil(res)
      assert.are.equal("TRUNCATED", err.code)
      assert.are.equal(dir .. "/.out.skafos-partial", ex:partial_dir())
      local got = assert(retry.get(url, ex, { resume = true }, fake_policy()))
      assert.is_true(got.resumed)
      assert.is_false(got.restarted)
      assert.are.equal(#slurp(archive), got.bytes)
      assert.are.same({ entries = 2, bytes = SIZE + 20000 * 23 }, assert(ex:finish()))
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      local gets = storage_log(e, "GET")
      assert.are.equal(2, #gets)
      assert.are.equal("bytes=1048576-", gets[2].headers["range"])
      assert.matches('^"%x+"$', gets[2].headers["if-range"])
      assert.are.equal("archive.zip\ncard.txt\nmodel.zip\nout\n", listing())
      -- interrupted again; then the object at the URL changes: If-Range fails, 200, afresh
      ex = assert(zip.extractor(dir .. "/out2", { resumable = true }))
      e:fault({ role = "storage", method = "GET", times = 1,
        action = { type = "truncate", after_bytes = 1024 * 1024 } })
      assert.is_nil((s3.get(url, ex, { resume = true })))
      ex:close()
      local v2 = new_version(e)
      spit(dir .. "/card.txt", ("another card\n"):rep(9))
      assert(zip.create(archive, { { src = dir .. "/card.txt", name = "card.txt" } }))
      assert(s3.put(v2.presigned_url, archive))
      e:clear_requests()
      ex = assert(zip.extractor(dir .. "/out2", { resumable = true }))
      got = assert(s3.get(get_url(e, v2), ex, { resume = true }))
      assert.is_true(got.restarted)
      assert.is_false(got.resumed)
      assert.are.same({ entries = 1, bytes = 13 * 9 }, assert(ex:finish()))
      assert.are.equal(("another card\n"):rep(9), slurp(dir .. "/out2/card.txt"))
      assert.is_nil(exists(dir .. "/out2/model.bin") or nil)
      assert.matches("^bytes=", storage_log(e, "GET")[1].headers["range"])
      assert.are.equal("archive.zip\ncard.txt\nmodel.zip\nout\nout2\n", listing())
    end)

    it("writes the file and hands the same bytes to a sink given as the sink option", function()
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(s3.get(url, dir .. "/copy.zip", { sink = ex }))
      assert.are.equal(200, got.status)
      assert.is_nil(got.sink_skipped)
      assert.are.equal(tool_digest("sha256sum", archive), got.sha256)
      assert.is_true(slurp(dir .. "/copy.zip") == slurp(archive), "the file differs")
      assert.are.same({ entries = 2, bytes = SIZE + 20000 * 23 }, assert(ex:finish()))
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      assert.are.equal(1, #storage_log(e, "GET"))
      assert.are.equal("archive.zip\ncard.txt\ncopy.zip\nmodel.zip\nout\n", listing())
      assert.has_error(function() s3.get(url, dir .. "/x.zip", { sink = {} }) end,
        "s3: option 'sink' must be a byte sink such as zip.extractor(dir)")
    end)

    it("replays a kept part file into the sink and resets it when a get fails", function()
      local dest = dir .. "/copy.zip"
      local ex = assert(zip.extractor(dir .. "/out"))
      e:fault({ role = "storage", method = "GET", times = 1,
        action = { type = "truncate", after_bytes = 1024 * 1024 } })
      local res, err = s3.get(url, dest, { sink = ex })
      assert.is_nil(res)
      assert.are.equal("TRUNCATED", err.code)
      local part = slurp(dest .. ".part")
      assert.is_true(#part >= 1024 * 1024 and #part < #slurp(archive))
      -- nothing extracted is left: the sink was reset
      assert.are.equal("archive.zip\ncard.txt\ncopy.zip.part\ncopy.zip.part.etag\nmodel.zip\n", listing())
      e:clear_requests()
      local got = assert(s3.get(url, dest, { sink = ex, resume = true }))
      assert.is_true(got.resumed)
      assert.are.equal(tool_digest("sha256sum", archive), got.sha256)
      assert.are.equal("bytes=" .. #part .. "-", storage_log(e, "GET")[1].headers["range"])
      assert(ex:finish())
      assert.is_true(slurp(dir .. "/out/model.bin") == data, "extracted bytes differ")
      assert.is_true(slurp(dest) == slurp(archive), "the file differs")
    end)

    it("starts the sink over when a resumed get finds the object changed", function()
      local dest = dir .. "/copy.zip"
      e:fault({ role = "storage", method = "GET", times = 1,
        action = { type = "truncate", after_bytes = 1024 * 1024 } })
      assert.is_nil((s3.get(url, dest)))
      local v2 = new_version(e)
      spit(dir .. "/card.txt", ("another card\n"):rep(9))
      assert(zip.create(archive, { { src = dir .. "/card.txt", name = "card.txt" } }))
      assert(s3.put(v2.presigned_url, archive))
      local ex = assert(zip.extractor(dir .. "/out"))
      -- the part file's ETag is the old object's: If-Range fails, the whole new one comes
      local got = assert(s3.get(get_url(e, v2), dest, { sink = ex, resume = true }))
      assert.is_true(got.restarted)
      assert.are.same({ entries = 1, bytes = 13 * 9 }, assert(ex:finish()))
      assert.are.equal(("another card\n"):rep(9), slurp(dir .. "/out/card.txt"))
      assert.is_true(slurp(dest) == slurp(archive), "the file differs")
    end)

    it("lets go of a sink that refuses the archive and still writes the file", function()
      local bad, bad_url = stored_descriptor_zip()
      local ex = assert(zip.extractor(dir .. "/out"))
      local got = assert(s3.get(bad_url, dir .. "/copy.zip", { sink = ex }))
      assert.matches("^NOT_STREAMABLE: ", got.sink_skipped)
      assert.are.equal(slurp(bad), slurp(dir .. "/copy.zip"))
      assert.is_false(exists(dir .. "/out"))
      ex:close()
    end)

    it("passes the extractor's refusal on with its code", function()
      local _, bad_url = stored_descriptor_zip()
      local ex = assert(zip.extractor(dir .. "/out"))
      local res, err = s3.get(bad_url, ex)
      assert.is_nil(res)
      assert.are.equal("NOT_STREAMABLE", err.code)
      assert.is_false(err.retryable)
      assert.is_false(exists(dir .. "/out"))
    end)
  end)
end)
