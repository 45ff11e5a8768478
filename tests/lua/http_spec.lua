-- skafos.http against the emulator: what goes on the wire (headers, token, User-Agent),
-- what comes back (status, lower-case headers, body or file), how redirects treat the
-- caller's headers, and the err tables of network failures. Also what it refuses: files
-- planted at its output, redirects down from https, secrets in its trace (with a small
-- HTTPS server and forward proxy of its own, below).
local cjson = require("cjson")
local core = require("skafos.core")
local http = require("skafos.http")
local planted = require("planted")
local proc = require("proc")
local emulator = require("emulator")

local TOKEN = "demo-token"
local MODEL = "/organizations/demo-org/apps/demo-app/models/demo-model"

-- file helpers shared by the specs (tests/helpers/proc.lua)
local slurp, spit = proc.read, proc.write

local function json_request(e, method, path, body)
  return assert(http.request({
    method = method,
    url = e.api .. MODEL .. path,
    headers = { ["X-API-TOKEN"] = TOKEN, ["Content-Type"] = "application/json" },
    body = body and cjson.encode(body),
  }))
end

-- Publishes `data` as a new version, so the download host has something to redirect to.
local function publish(e, dir, data)
  local res = json_request(e, "POST", "/model_versions", { filename = "demo-model.zip" })
  assert.are.equal(201, res.status)
  local v = cjson.decode(res.body)
  local file = dir .. "/upload.zip"
  spit(file, data)
  local put = assert(http.request({ method = "PUT", url = v.presigned_url, body_file = file }))
  assert.are.equal(200, put.status)
  res = json_request(e, "PATCH", ("/model_versions/%d"):format(v.model_version_id), { filepath = v.filepath })
  assert.are.equal(200, res.status)
  return v
end

-- Runs one call in a skafos subprocess that may take at most 60 s, so a call that would
-- block (on a FIFO, say) fails the test instead of hanging the run. Prints {status} or
-- {code, message}.
local RUNNER = [[
local cjson = require("cjson")
local res, err = require("skafos.http").request(cjson.decode(arg[1]))
print(cjson.encode(res and { status = res.status } or { code = err.code, message = err.message }))
]]

local function run_bounded(dir, req)
  local script = proc.write(dir .. "/runner.lua", RUNNER)
  local r = proc.run({ "timeout", "60", proc.bin, "run", script, cjson.encode(req) })
  assert(r.code ~= 124, "the call did not return within 60 s")
  assert.are.equal(0, r.code, r.stderr)
  return proc.json(r.stdout)
end

-- An HTTPS server (certificate made at test time) that redirects /redirect?to=URL and
-- answers /echo?s=TEXT with TEXT in its status line and an X-Echo header, and a plain
-- HTTP server that answers anything with "plain" and is also a forward proxy (absolute
-- URIs answered itself, CONNECT tunnelled). Every request is a JSON line in the log.
local SERVER_JS = [[
'use strict';
const fs = require('node:fs'), http = require('node:http'), https = require('node:https');
const net = require('node:net');
const [dir, log] = process.argv.slice(2);
const record = (entry) => fs.appendFileSync(log, JSON.stringify(entry) + '\n');
const secure = https.createServer({
  key: fs.readFileSync(dir + '/key.pem'), cert: fs.readFileSync(dir + '/cert.pem'),
}, (req, res) => {
  const u = new URL(req.url, 'https://here');
  record({ server: 'https', method: req.method, url: req.url });
  if (u.pathname === '/redirect') {
    res.writeHead(302, { Location: u.searchParams.get('to'), 'Content-Length': 0 });
    res.end();
  } else if (u.pathname === '/echo') {
    const s = u.searchParams.get('s');
    res.writeHead(200, 'OK ' + s, { 'X-Echo': s, 'Content-Length': 2 });
    res.end('ok');
  } else {
    res.writeHead(200, { 'Content-Length': 6 });
    res.end('secure');
  }
});
const plain = http.createServer((req, res) => {
  record({ server: 'http', method: req.method, url: req.url });
  res.writeHead(200, { 'Content-Length': 5 });
  res.end('plain');
});
plain.on('connect', (req, client, head) => {
  record({ server: 'http', method: 'CONNECT', url: req.url });
  const m = /^(.*):(\d+)$/.exec(req.url);
  const up = net.connect(Number(m[2]), m[1], () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) up.write(head);
    up.pipe(client);
    client.pipe(up);
  });
  up.on('error', () => client.destroy());
  client.on('error', () => up.destroy());
});
const listen = (s) => new Promise((ok) => s.listen(0, '127.0.0.1', () => ok(s.address().port)));
(async () => {
  const sp = await listen(secure), pp = await listen(plain);
  process.stdout.write(JSON.stringify({ https: 'https://127.0.0.1:' + sp, http: 'http://127.0.0.1:' + pp }) + '\n');
})();
process.on('SIGTERM', () => process.exit(0));
]]

local function alive(pid)
  local stat = proc.read("/proc/" .. pid .. "/stat")
  local state = stat and stat:match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Starts SERVER_JS with a fresh certificate in dir; returns its pid and URLs.
local function start_servers(dir, log)
  local q = proc.quote
  local r = proc.run({ "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-keyout", dir .. "/key.pem", "-out", dir .. "/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost" })
  assert(r.code == 0, "openssl req failed: " .. r.stderr)
  local js = proc.write(dir .. "/servers.js", SERVER_JS)
  local out, err = dir .. "/servers.out", dir .. "/servers.err"
  local p = assert(io.popen(("%s %s %s %s </dev/null >%s 2>%s & echo $!"):format(
    q(os.getenv("NODE") or "node"), q(js), q(dir), q(log), q(out), q(err))))
  local pid = assert(tonumber(p:read("l")), "could not start the test servers")
  p:close()
  while true do
    local text = proc.read(out)
    if text and text:find("\n") then return pid, cjson.decode(text:match("^[^\n]*")) end
    if not alive(pid) then error("the test servers exited: " .. (proc.read(err) or "")) end
    os.execute("sleep 0.05")
  end
end

describe("skafos.http", function()
  local e, dir

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
    e:clear_faults()
    e:clear_requests()
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("returns status, lower-case headers and body", function()
    local res = assert(http.request({ url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = TOKEN } }))
    assert.are.equal(200, res.status)
    assert.matches("json", res.headers["content-type"])
    assert.is_nil(res.headers["Content-Type"])
    local orgs = cjson.decode(res.body)
    assert.are.equal("demo-org", orgs[1].display_name)
  end)

  it("sends the caller's headers and a skafos User-Agent", function()
    assert(http.request({
      url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = TOKEN, ["X-Trace-Id"] = "t1" },
    }))
    local got = e:requests().api[1]
    assert.are.equal(TOKEN, got.headers["x-api-token"])
    assert.are.equal("t1", got.headers["x-trace-id"])
    assert.matches("^skafos/%S+ libcurl/%S+$", got.headers["user-agent"])
    assert.are.equal(http.user_agent, got.headers["user-agent"])
  end)

  it("answers 401 as a response, not an error", function()
    local res = assert(http.request({ url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = "wrong" } }))
    assert.are.equal(401, res.status)
  end)

  it("keeps the connection alive across calls", function()
    local trace = dir .. "/trace.log"
    for _ = 1, 3 do
      assert(http.request({ url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = TOKEN }, trace = trace }))
    end
    local text = slurp(trace)
    local _, connects = text:gsub("Connected to", "")
    local _, reuses = text:gsub("Re%-using existing connection", "")
    assert.is_true(connects <= 1)
    assert.is_true(reuses >= 2)
  end)

  it("does not follow redirects by default and reports where they point", function()
    publish(e, dir, "zip bytes")
    e:clear_requests()
    local res = assert(http.request({ url = e.download .. MODEL, headers = { ["X-API-TOKEN"] = TOKEN } }))
    assert.are.equal(302, res.status)
    assert.matches("^" .. e.storage:gsub("%p", "%%%0"), res.redirect_url)
    assert.is_string(res.headers["location"])
    assert.are.equal(0, #e:requests().storage)
  end)

  it("follows a redirect to another host without the caller's headers", function()
    publish(e, dir, "the model archive")
    e:clear_requests()
    local res = assert(http.request({
      url = e.download .. MODEL,
      headers = { ["X-API-TOKEN"] = TOKEN, ["X-Custom"] = "mine" },
      follow = true,
    }))
    assert.are.equal(200, res.status)
    assert.are.equal("the model archive", res.body)
    assert.are.equal(1, res.redirects)
    local log = e:requests()
    assert.are.equal(TOKEN, log.download[1].headers["x-api-token"])
    assert.are.equal(1, #log.storage)
    assert.is_nil(log.storage[1].headers["x-api-token"])
    assert.is_nil(log.storage[1].headers["x-custom"])
  end)

  it("streams a 2xx body to output and keeps an error body in memory", function()
    publish(e, dir, string.rep("z", 100000))
    local out = dir .. "/model.zip"
    local res = assert(http.request({
      url = e.download .. MODEL, headers = { ["X-API-TOKEN"] = TOKEN }, follow = true, output = out,
    }))
    assert.are.equal(200, res.status)
    assert.are.equal(100000, res.bytes)
    assert.are.equal(string.rep("z", 100000), slurp(out))

    local missing = dir .. "/none.zip"
    res = assert(http.request({
      url = e.download .. "/organizations/demo-org/apps/demo-app/models/no-such-model",
      headers = { ["X-API-TOKEN"] = TOKEN }, output = missing,
    }))
    assert.are.equal(404, res.status)
    assert.is_nil(slurp(missing))
    assert.matches("error", res.body)
  end)

  it("uploads body_file with a Content-Length", function()
    publish(e, dir, string.rep("q", 5000))
    local puts = {}
    for _, r in ipairs(e:requests().storage) do
      if r.method == "PUT" then puts[#puts + 1] = r end
    end
    assert.are.equal("5000", puts[1].headers["content-length"])
    assert.is_nil(puts[1].headers["transfer-encoding"])
  end)

  it("calls progress with byte counts", function()
    publish(e, dir, string.rep("p", 300000))
    local last
    assert(http.request({
      url = e.download .. MODEL, headers = { ["X-API-TOKEN"] = TOKEN }, follow = true,
      progress = function(done, total) last = { done, total } end,
    }))
    assert.are.same({ 300000, 300000 }, last)
  end)

  it("reports a refused port as COULDNT_CONNECT with the address", function()
    local res, err = http.request({ url = "http://127.0.0.1:9/" })
    assert.is_nil(res)
    assert.are.equal("COULDNT_CONNECT", err.code)
    assert.is_true(err.retryable)
    assert.matches("127%.0%.0%.1", err.message)
    assert.matches("port 9", err.message)
    assert.are.equal(err.message, tostring(err))
  end)

  it("reports an unresolvable host as COULDNT_RESOLVE naming the host", function()
    local res, err = http.request({ url = "http://no-such-host.invalid/" })
    assert.is_nil(res)
    assert.are.equal("COULDNT_RESOLVE", err.code)
    assert.matches("no%-such%-host%.invalid", err.message)
  end)

  it("times out a slow server with TIMEOUT", function()
    e:fault({ role = "api", action = { type = "delay", ms = 3000 } })
    local res, err = http.request({
      url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = TOKEN }, timeout = 0.3,
    })
    assert.is_nil(res)
    assert.are.equal("TIMEOUT", err.code)
    assert.is_true(err.retryable)
  end)

  it("redacts the API token and presigned signatures in its trace", function()
    local trace = dir .. "/trace.log"
    local res = json_request(e, "POST", "/model_versions", { filename = "demo-model.zip" })
    local v = cjson.decode(res.body)
    assert(http.request({ url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = TOKEN }, trace = trace }))
    spit(dir .. "/f", "x")
    assert(http.request({ method = "PUT", url = v.presigned_url, body_file = dir .. "/f", trace = trace }))
    local text = slurp(trace)
    assert.matches("X%-API%-TOKEN: REDACTED", text)
    assert.is_nil(text:find(TOKEN, 1, true))
    assert.matches("X%-Amz%-Signature=REDACTED", text)
    assert.is_nil(text:find(v.presigned_url:match("X%-Amz%-Signature=(%x+)"), 1, true))
    assert.is_nil(text:find(v.presigned_url:match("X%-Amz%-Credential=([^&]+)"), 1, true))
  end)

  it("redacts in the trace SKAFOS_TRACE=1 turns on for the skafos binary", function()
    local bin = os.getenv("SKAFOS_BIN")
    if not bin then
      pending("SKAFOS_BIN is not set")
      return
    end
    local script = dir .. "/t.lua"
    spit(script, ([[
      local http = require("skafos.http")
      assert(http.request({ url = %q, headers = { ["X-API-TOKEN"] = %q } }))
    ]]):format(e.api .. "/organizations", TOKEN))
    local p = io.popen(("SKAFOS_TRACE=1 '%s' run '%s' 2>&1"):format(bin, script))
    local text = p:read("a")
    p:close()
    assert.matches("X%-API%-TOKEN: REDACTED", text)
    assert.is_nil(text:find(TOKEN, 1, true))
  end)

  describe("a file planted at the output", function()
    local VICTIM = "the victim's bytes\n"
    local url, out, victim

    local WHAT = planted.WHAT
    local function plant(kind, path) planted.plant(kind, path, victim, VICTIM) end

    local function no_requests()
      local log = e:requests()
      assert.are.equal(0, #log.api + #log.download + #log.storage)
    end

    before_each(function()
      url = e.api .. "/organizations"
      out = dir .. "/orgs.json"
      victim = proc.write(dir .. "/victim.txt", VICTIM)
    end)

    for _, kind in ipairs({ "symlink", "hardlink", "foreign", "fifo" }) do
      it("is refused as UNSAFE_PATH before a request when it is a " .. kind, function()
        plant(kind, out)
        local req = { url = url, headers = { ["X-API-TOKEN"] = TOKEN }, output = out }
        local err
        if kind == "fifo" then
          err = run_bounded(dir, req)
        else
          local res
          res, err = http.request(req)
          assert.is_nil(res)
        end
        assert.are.equal("UNSAFE_PATH", err.code)
        assert.truthy(err.message:find(out .. " " .. WHAT[kind], 1, true), err.message)
        assert.truthy(err.message:find("skafos does not write through it: remove it or choose another output",
          1, true), err.message)
        assert.are.equal(VICTIM, slurp(victim))
        if kind == "foreign" then assert.are.equal(VICTIM, slurp(out)) end
        no_requests()
      end)
    end

    it("is refused as a trace file too", function()
      plant("symlink", dir .. "/trace.log")
      local res, err = http.request({ url = url, headers = { ["X-API-TOKEN"] = TOKEN }, trace = dir .. "/trace.log" })
      assert.is_nil(res)
      assert.are.equal("UNSAFE_PATH", err.code)
      assert.truthy(err.message:find(dir .. "/trace.log is a symbolic link", 1, true), err.message)
      assert.are.equal(VICTIM, slurp(victim))
      no_requests()
    end)

    it("replaces the whole of an output file of our own", function()
      spit(out, string.rep("old bytes, longer than the answer\n", 1000))
      local res = assert(http.request({ url = url, headers = { ["X-API-TOKEN"] = TOKEN }, output = out }))
      assert.are.equal(200, res.status)
      assert.are.equal("demo-org", cjson.decode(slurp(out))[1].display_name)
      assert.are.equal(res.bytes, #slurp(out))
    end)
  end)

  it("masks in its trace a secret the server echoes in another header", function()
    local REGISTERED, SENT = "registered-secret-7741", "token-nobody-registered-5150"
    core.add_secret(REGISTERED)
    e:fault({ role = "api", action = { type = "status", status = 200, body = { ok = true },
      headers = { ["X-Echo"] = REGISTERED, ["X-Echo-Token"] = SENT } } })
    local trace = dir .. "/trace.log"
    local res = assert(http.request({
      url = e.api .. "/organizations", headers = { ["X-API-TOKEN"] = SENT }, trace = trace,
    }))
    assert.are.equal(SENT, res.headers["x-echo-token"]) -- the response itself is not masked
    local text = slurp(trace)
    assert.truthy(text:lower():find("\n[^\n]*< x%-echo: redacted\r?\n"), text)
    assert.truthy(text:lower():find("\n[^\n]*< x%-echo%-token: redacted\r?\n"), text)
    assert.is_nil(text:find(REGISTERED, 1, true))
    assert.is_nil(text:find(SENT, 1, true))
    assert.are.equal("it was REDACTED", http.redact("it was " .. SENT))
  end)

  describe("over its own HTTPS server and proxy", function()
    local sdir, cleanup, pid, srv, log

    local function handled()
      local list = {}
      for line in (proc.read(log) or ""):gmatch("[^\n]+") do list[#list + 1] = cjson.decode(line) end
      return list
    end

    local function redirect(to)
      return srv.https .. "/redirect?to=" .. to:gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end)
    end

    setup(function()
      sdir, cleanup = proc.tmpdir()
      log = sdir .. "/requests.jsonl"
      pid, srv = start_servers(sdir, log)
    end)

    teardown(function()
      if pid then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
      if cleanup then cleanup() end
    end)

    before_each(function() os.remove(log) end)

    it("refuses to follow a redirect from https down to http", function()
      local to = "http://downgrade.example/model.zip"
      local req = { url = redirect(to), follow = true, ca_file = sdir .. "/cert.pem", proxy = srv.http,
        output = dir .. "/model.zip" }
      local res, err = http.request(req)
      assert.is_nil(res)
      assert.are.equal("REDIRECT", err.code)
      assert.is_false(err.retryable)
      assert.are.equal("refusing to follow a redirect from https down to plain http (only a loopback host "
        .. "may ask for that): " .. req.url .. " -> " .. to, err.message)
      -- followed, it would have gone through the proxy, which answers anything
      for _, entry in ipairs(handled()) do
        if entry.server == "http" then assert.is_nil(entry.url:find("downgrade", 1, true), entry.url) end
      end
      assert.is_nil(slurp(dir .. "/model.zip"))
      -- not following, the answer is the redirect itself
      req.follow, req.output = nil, nil
      res = assert(http.request(req))
      assert.are.equal(302, res.status)
      assert.are.equal(to, res.redirect_url)
    end)

    it("follows https to http on loopback, and never to another scheme", function()
      local ca = sdir .. "/cert.pem"
      local res = assert(http.request({ url = redirect(srv.http .. "/local"), follow = true, ca_file = ca }))
      assert.are.equal(200, res.status)
      assert.are.equal("plain", res.body)
      local port = srv.http:match(":(%d+)$")
      local named = "http://localhost:" .. port .. "/local"
      res = assert(http.request({ url = redirect(named), follow = true, ca_file = ca }))
      assert.are.equal("plain", res.body)
      for _, to in ipairs({ "file:///etc/passwd", "ftp://127.0.0.1/x" }) do
        local nores, err = http.request({ url = redirect(to), follow = true, ca_file = ca })
        assert.is_nil(nores)
        assert.are.equal("REDIRECT", err.code)
        assert.matches("^refusing to follow a redirect to a %a+: URL %(skafos follows only http and https%)",
          err.message)
      end
      assert.is_true(http.redirect_allowed(srv.https .. "/a", srv.http .. "/b"))
      local ok, err = http.redirect_allowed("https://a.example/", "http://b.example/")
      assert.is_nil(ok)
      assert.are.equal("REDIRECT", err.code)
    end)

    it("masks in its trace a secret echoed in the status line", function()
      local SECRET = "status-line-secret-9090"
      core.add_secret(SECRET)
      local trace = dir .. "/trace.log"
      local res = assert(http.request({ url = srv.https .. "/echo?s=" .. SECRET, ca_file = sdir .. "/cert.pem",
        trace = trace }))
      assert.are.equal(200, res.status)
      local text = slurp(trace)
      assert.truthy(text:find("< HTTP/1.1 200 OK REDACTED", 1, true), text)
      assert.truthy(text:find("skafos: http GET " .. srv.https .. "/echo?s=REDACTED", 1, true), text)
      assert.is_nil(text:find(SECRET, 1, true))
    end)
  end)

  it("rejects misuse by raising", function()
    assert.has_error(function() http.request({}) end)
    assert.has_error(function() http.request({ url = "http://x/", headers = { A = "b\r\nX-Evil: 1" } }) end)
    assert.has_error(function() http.request({ url = "http://x/", body = "a", body_file = "b" }) end)
  end)

  it("sleeps, and tells monotonic time", function()
    local t0 = http.now()
    assert.is_true(http.sleep(0.01))
    assert.is_true(http.now() > t0)
  end)

  it("redacts secrets in text on request", function()
    assert.are.equal("https://s/k?X-Amz-Signature=REDACTED&a=1",
      http.redact("https://s/k?X-Amz-Signature=abc123&a=1"))
  end)
end)
