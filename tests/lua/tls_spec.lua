-- skafos.http and skafos.s3 over TLS, through forward proxies and over HTTP/2, all on
-- loopback: a CA and server certificates made with the openssl command at test time,
-- the HTTPS servers, plain HTTP server and proxy of tests/helpers/tls_server.js, and the
-- skafos binary run as a subprocess where stderr or the proxy environment matters.
local cjson = require("cjson")
local http = require("skafos.http")
local s3 = require("skafos.s3")
local proc = require("proc")

local NODE = os.getenv("NODE") or "node"
local SERVER_JS = proc.source_dir .. "/tests/helpers/tls_server.js"

-- Every variable libcurl reads for proxies: subprocesses start without them, so only
-- what a case sets is in effect.
local PROXY_VARS = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
  "ALL_PROXY", "no_proxy", "NO_PROXY" }

-- Runs the calls given as JSON in arg[1] in one process (one connection cache) and
-- prints one JSON result per call; marks each finished call on stderr.
local RUNNER = [[
local cjson = require("cjson")
local http = require("skafos.http")
local s3 = require("skafos.s3")
local out = {}
for i, call in ipairs(cjson.decode(arg[1])) do
  local res, err
  if call.fn == "request" then
    res, err = http.request(call.req)
  elseif call.fn == "put" then
    res, err = s3.put(call.url, call.path, call.opts)
  else
    res, err = s3.get(call.url, call.path, call.opts)
  end
  io.stderr:write(("-- call %d done\n"):format(i))
  out[i] = res and { status = res.status, version = res.version, body = res.body }
    or { code = err.code, message = err.message, retryable = err.retryable }
end
print(cjson.encode(out))
]]

local function openssl(args)
  local argv = { "openssl" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = proc.run(argv)
  assert(r.code == 0, "openssl " .. args[1] .. " failed: " .. r.stderr)
end

local EC = { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes" }

local function self_signed_ca(dir, name, cn)
  local args = { "req", "-x509" }
  for _, a in ipairs(EC) do args[#args + 1] = a end
  for _, a in ipairs({ "-keyout", dir .. "/" .. name .. ".key", "-out", dir .. "/" .. name .. ".pem",
    "-days", "2", "-subj", "/CN=" .. cn, "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign" }) do
    args[#args + 1] = a
  end
  openssl(args)
end

-- A server key and certificate signed by ca.pem, valid for the names in san.
local function server_cert(dir, name, san, serial)
  local base = dir .. "/" .. name
  proc.write(base .. ".ext", ("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
    .. "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"):format(san))
  local args = { "req" }
  for _, a in ipairs(EC) do args[#args + 1] = a end
  for _, a in ipairs({ "-keyout", base .. ".key", "-out", base .. ".csr", "-subj", "/CN=skafos test server" }) do
    args[#args + 1] = a
  end
  openssl(args)
  openssl({ "x509", "-req", "-in", base .. ".csr", "-CA", dir .. "/ca.pem", "-CAkey", dir .. "/ca.key",
    "-set_serial", tostring(serial), "-days", "2", "-out", base .. ".pem", "-extfile", base .. ".ext" })
end

local function alive(pid)
  local stat = proc.read("/proc/" .. pid .. "/stat")
  local state = stat and stat:match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Starts tls_server.js and waits (for as long as it takes) for its line of URLs.
local function start_server(dir, log)
  local out, err = dir .. "/server.out", dir .. "/server.err"
  local q = proc.quote
  local p = assert(io.popen(("%s %s --certs %s --log %s </dev/null >%s 2>%s & echo $!"):format(
    q(NODE), q(SERVER_JS), q(dir), q(log), q(out), q(err))))
  local pid = assert(tonumber(p:read("l")), "could not start tls_server.js")
  p:close()
  while true do
    local text = proc.read(out)
    if text and text:find("\n") then return pid, cjson.decode(text:match("^[^\n]*")) end
    if not alive(pid) then error("tls_server.js exited: " .. (proc.read(err) or "")) end
    os.execute("sleep 0.05")
  end
end

local function stop_server(pid)
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(pid) then return end
    os.execute("sleep 0.05")
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

describe("TLS, proxies and HTTP/2 in skafos.http and skafos.s3", function()
  local dir, cleanup, pid, srv, log, ca, runner

  -- The requests the servers handled since the last before_each, optionally of one server.
  local function handled(server)
    local list = {}
    for line in (proc.read(log) or ""):gmatch("[^\n]+") do
      local entry = proc.json(line)
      if server == nil or entry.server == server then list[#list + 1] = entry end
    end
    return list
  end

  -- Runs the calls in a skafos subprocess with no proxy variables but those in env.
  local function run(calls, env)
    local r = proc.skafos({ "run", runner, cjson.encode(calls) }, { cwd = dir, env = env or {}, unset = PROXY_VARS })
    assert.are.equal(0, r.code, r.stderr)
    return proc.json(r.stdout), r.stderr
  end

  local function port(url) return url:match(":(%d+)$") end

  setup(function()
    dir, cleanup = proc.tmpdir()
    self_signed_ca(dir, "ca", "skafos test CA")
    self_signed_ca(dir, "other-ca", "skafos unrelated CA")
    server_cert(dir, "server", "IP:127.0.0.1,DNS:localhost", 1)
    server_cert(dir, "localhost", "DNS:localhost", 2)
    ca = dir .. "/ca.pem"
    log = dir .. "/requests.jsonl"
    runner = proc.write(dir .. "/runner.lua", RUNNER)
    pid, srv = start_server(dir, log)
  end)

  teardown(function()
    if pid then stop_server(pid) end
    if cleanup then cleanup() end
  end)

  before_each(function()
    proc.write(log, "")
  end)

  describe("TLS", function()
    it("verifies the server against ca_file and negotiates HTTP/2 by ALPN", function()
      local res = assert(http.request({ url = srv.https .. "/hello", ca_file = ca }))
      assert.are.equal(200, res.status)
      assert.are.equal("2", res.version)
      assert.are.equal("hello from https over HTTP/2.0\n", res.body)
      local got = handled()
      assert.are.equal(1, #got)
      assert.are.same({ "https", "GET", "/hello", "2.0" },
        { got[1].server, got[1].method, got[1].path, got[1].version })
    end)

    it("reports HTTP/1.1 from a server that offers nothing else", function()
      local res = assert(http.request({ url = srv.http .. "/hello" }))
      assert.are.equal(200, res.status)
      assert.are.equal("1.1", res.version)
      assert.are.equal("hello from http over HTTP/1.1\n", res.body)
    end)

    it("refuses a certificate from a CA it does not trust, and says to pass ca_file", function()
      -- A verified connection to the same server sits in the cache; it must not be reused.
      assert(http.request({ url = srv.https .. "/hello", ca_file = ca }))
      proc.write(log, "")
      local res, err = http.request({ url = srv.https .. "/hello" })
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.matches("^cannot verify the TLS certificate of 127%.0%.0%.1: ", err.message)
      assert.truthy(err.message:find("give that CA's certificate (PEM) with --ca-file or SKAFOS_CA_FILE", 1, true),
        err.message)
      assert.are.equal(srv.https .. "/hello", err.url)
      assert.are.same({}, handled())
    end)

    it("names the ca_file that holds no CA of the server", function()
      local other = dir .. "/other-ca.pem"
      local res, err = http.request({ url = srv.https .. "/hello", ca_file = other })
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("no CA in " .. other .. " signed it", 1, true), err.message)
      assert.are.same({}, handled())
    end)

    it("reports a ca_file that cannot be read", function()
      local missing = dir .. "/missing.pem"
      local res, err = http.request({ url = srv.https .. "/hello", ca_file = missing })
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("cannot use ca_file " .. missing .. " as a CA bundle", 1, true), err.message)
    end)

    it("refuses a certificate that does not name the host, even from a trusted CA", function()
      local res, err = http.request({ url = srv.https_localhost .. "/hello", ca_file = ca })
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.matches("^cannot verify the TLS certificate of 127%.0%.0%.1: ", err.message)
      assert.is_nil(err.message:find("ca_file", 1, true), err.message) -- a CA bundle would not help
      assert.are.same({}, handled())
      -- the same server by the name its certificate holds
      res = assert(http.request({ url = "https://localhost:" .. port(srv.https_localhost) .. "/hello", ca_file = ca }))
      assert.are.equal(200, res.status)
      assert.are.equal("hello from https_localhost over HTTP/2.0\n", res.body)
    end)

    it("with insecure = true skips verification and warns on stderr, once per transfer", function()
      local src = proc.write(dir .. "/insecure.bin", "not verified\n")
      local url = srv.https_localhost .. "/hello"
      local out, stderr = run({
        { fn = "request", req = { url = url, insecure = true } },
        { fn = "request", req = { url = url } },
        { fn = "put", url = srv.https_localhost .. "/obj/insecure", path = src, opts = { insecure = true } },
        { fn = "request", req = { url = url, ca_file = ca } },
      })
      assert.are.same({ status = 200, version = "2", body = "hello from https_localhost over HTTP/2.0\n" }, out[1])
      -- the unverified connection stays with the insecure request
      assert.are.equal("TLS", out[2].code)
      assert.are.equal(200, out[3].status)
      assert.are.equal("TLS", out[4].code)
      local warning = "skafos: warning: TLS certificate verification is disabled for this %s (insecure = true)\n"
      assert.are.equal(warning:format("request") .. "-- call 1 done\n-- call 2 done\n"
        .. warning:format("transfer") .. "-- call 3 done\n-- call 4 done\n", stderr)
      assert.are.equal(2, #handled("https_localhost"))
    end)

    it("round-trips bytes with s3.put and s3.get over https with ca_file", function()
      local chunks = {}
      for i = 0, 255 do chunks[#chunks + 1] = string.char(i):rep(4096 + i) end
      local data = table.concat(chunks):rep(3)
      local src = proc.write(dir .. "/object.bin", data)
      local md5 = proc.run({ "md5sum", src }).stdout:match("^(%x+)")
      local url = srv.https .. "/obj/model.zip"

      local put = assert(s3.put(url, src, { ca_file = ca }))
      assert.are.equal(200, put.status)
      assert.are.equal(#data, put.bytes)
      assert.are.equal(md5, put.etag)
      assert.is_true(put.etag_verified)
      local got = handled("https")
      assert.are.same({ "PUT", "/obj/model.zip", "2.0", #data },
        { got[1].method, got[1].path, got[1].version, got[1].bytes })

      local dest = dir .. "/object.out"
      local res = assert(s3.get(url, dest, { ca_file = ca }))
      assert.are.equal(200, res.status)
      assert.are.equal(#data, res.bytes)
      assert.are.equal(md5, res.etag)
      assert.are.equal(data, proc.read(dest))
      assert.are.equal("2.0", handled("https")[2].version)
    end)

    it("takes the CA of the API host from --ca-file, SKAFOS_CA_FILE or a config's ca_file", function()
      local base = { "versions", "--org", "o", "--app", "a", "--model", "m", "--api-url", srv.https,
        "--download-url", srv.https }
      local env = { SKAFOS_API_TOKEN = "t0ken" }
      local function versions(extra, e)
        local argv = {}
        for _, a in ipairs(base) do argv[#argv + 1] = a end
        for _, a in ipairs(extra) do argv[#argv + 1] = a end
        local merged = {}
        for k, v in pairs(env) do merged[k] = v end
        for k, v in pairs(e or {}) do merged[k] = v end
        return proc.skafos(argv, { cwd = dir, env = merged, unset = PROXY_VARS })
      end
      -- without the CA: refused before any request reaches the server, with the way out
      local r = versions({})
      assert.are_not.equal(0, r.code)
      assert.truthy(r.stderr:find("--ca-file or SKAFOS_CA_FILE", 1, true), r.stderr)
      assert.are.same({}, handled())
      -- with it, each way: the request reaches the server (which knows no such API)
      proc.write(dir .. "/proj/.skafos/config.lua", 'return { ca_file = "../../ca.pem" }')
      for _, how in ipairs({ { { "--ca-file", ca } }, { {}, { SKAFOS_CA_FILE = ca } } }) do
        r = versions(how[1], how[2])
        assert.is_nil(r.stderr:find("TLS certificate", 1, true), r.stderr)
      end
      r = proc.skafos({ "config", "--json" }, { cwd = dir .. "/proj", env = env, unset = PROXY_VARS })
      local shown = proc.json(r.stdout).settings.ca_file
      assert.are.equal(dir .. "/proj/.skafos/../../ca.pem", shown.value)
      assert.matches("^project config", shown.source)
      local argv = {}
      for _, a in ipairs(base) do argv[#argv + 1] = a end
      r = proc.skafos(argv, { cwd = dir .. "/proj", env = env, unset = PROXY_VARS })
      assert.is_nil(r.stderr:find("TLS certificate", 1, true), r.stderr)
      local got = handled("https")
      assert.are.equal(3, #got)
      for _, g in ipairs(got) do assert.matches("^/organizations/o/apps/a/models/m", g.path) end
    end)

    it("refuses an unverified server in s3.put and s3.get", function()
      local src = proc.write(dir .. "/small.bin", "abc")
      local res, err = s3.put(srv.https .. "/obj/small", src)
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("ca_file", 1, true), err.message)
      res, err = s3.get(srv.https .. "/obj/small", dir .. "/small.out")
      assert.is_nil(res)
      assert.are.equal("TLS", err.code)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("ca_file", 1, true), err.message)
      assert.is_nil(proc.read(dir .. "/small.out"))
      assert.are.same({}, handled())
    end)
  end)

  describe("proxies", function()
    it("sends http and https requests through the proxy option", function()
      local src = proc.write(dir .. "/proxied.bin", "through the tunnel\n")
      local out = run({
        { fn = "request", req = { url = srv.http .. "/hello", proxy = srv.proxy } },
        { fn = "request", req = { url = srv.https .. "/hello", proxy = srv.proxy, ca_file = ca } },
        -- another name for the same server, so no tunnel of the request above can serve it
        { fn = "put", url = "https://localhost:" .. port(srv.https) .. "/obj/proxied", path = src,
          opts = { proxy = srv.proxy, ca_file = ca } },
      })
      assert.are.same({ status = 200, version = "1.1", body = "hello from http over HTTP/1.1\n" }, out[1])
      assert.are.same({ status = 200, version = "2", body = "hello from https over HTTP/2.0\n" }, out[2])
      assert.are.equal(200, out[3].status)
      local via = {}
      for _, e in ipairs(handled("proxy")) do via[#via + 1] = e.method .. " " .. e.url end
      assert.are.same({ "GET " .. srv.http .. "/hello", "CONNECT 127.0.0.1:" .. port(srv.https),
        "CONNECT localhost:" .. port(srv.https) }, via)
      local got = handled("https")
      assert.are.equal(2, #got)
      assert.are.same({ "PUT", "/obj/proxied", #"through the tunnel\n" }, { got[2].method, got[2].path, got[2].bytes })
    end)

    it("honours http_proxy and HTTPS_PROXY from the environment", function()
      local out = run({
        { fn = "request", req = { url = srv.http .. "/hello?env" } },
        { fn = "request", req = { url = srv.https .. "/hello", ca_file = ca } },
      }, { http_proxy = srv.proxy, HTTPS_PROXY = srv.proxy })
      assert.are.equal(200, out[1].status)
      assert.are.same({ status = 200, version = "2", body = "hello from https over HTTP/2.0\n" }, out[2])
      local via = handled("proxy")
      assert.are.equal(2, #via)
      assert.are.same({ "GET", srv.http .. "/hello?env" }, { via[1].method, via[1].url })
      assert.are.same({ "CONNECT", "127.0.0.1:" .. port(srv.https) }, { via[2].method, via[2].url })
    end)

    it("leaves the hosts in NO_PROXY out of the proxy", function()
      local direct = "http://localhost:" .. port(srv.http) .. "/hello?direct"
      local out = run({
        { fn = "request", req = { url = direct } },
        { fn = "request", req = { url = srv.http .. "/hello?proxied" } },
        { fn = "request", req = { url = "https://localhost:" .. port(srv.https) .. "/hello", ca_file = ca } },
      }, { http_proxy = srv.proxy, HTTPS_PROXY = srv.proxy, NO_PROXY = "localhost" })
      for i = 1, 3 do assert.are.equal(200, out[i].status, out[i].message) end
      local via = handled("proxy")
      assert.are.equal(1, #via)
      assert.are.equal(srv.http .. "/hello?proxied", via[1].url)
      local paths = {}
      for _, e in ipairs(handled("http")) do paths[#paths + 1] = e.path end
      assert.are.same({ "/hello?direct", "/hello?proxied" }, paths)
      assert.are.equal(1, #handled("https"))
    end)

    it("reports a proxy that refuses connections as COULDNT_CONNECT, naming it", function()
      local dead = "http://127.0.0.1:1"
      local src = proc.write(dir .. "/dead.bin", "x")
      local out = run({
        { fn = "request", req = { url = srv.http .. "/hello", proxy = dead } },
        { fn = "request", req = { url = srv.https .. "/hello", proxy = dead, ca_file = ca } },
        { fn = "put", url = srv.https .. "/obj/dead", path = src, opts = { proxy = dead, ca_file = ca } },
      })
      for i = 1, 3 do
        assert.are.equal("COULDNT_CONNECT", out[i].code)
        assert.is_true(out[i].retryable)
        assert.truthy(out[i].message:find("127.0.0.1 port 1 ", 1, true), out[i].message)
      end
      local named = "^cannot connect to the proxy 127%.0%.0%.1 port 1 %(from the proxy option%): "
      assert.matches(named, out[1].message)
      assert.matches(named, out[2].message)
      assert.are.same({}, handled())
    end)

    it("names the variable that set a dead proxy, and not a proxy NO_PROXY skipped", function()
      local env = { HTTPS_PROXY = "http://127.0.0.1:1" }
      local out = run({ { fn = "request", req = { url = srv.https .. "/hello", ca_file = ca } } }, env)
      assert.are.equal("COULDNT_CONNECT", out[1].code)
      assert.matches("^cannot connect to the proxy 127%.0%.0%.1 port 1 %(from HTTPS_PROXY%): ", out[1].message)

      env.NO_PROXY = "127.0.0.1"
      out = run({
        { fn = "request", req = { url = srv.https .. "/hello", ca_file = ca } },
        { fn = "request", req = { url = srv.dead:gsub("^http:", "https:") .. "/hello" } },
      }, env)
      assert.are.equal(200, out[1].status)
      assert.are.equal("COULDNT_CONNECT", out[2].code)
      assert.is_nil(out[2].message:find("proxy", 1, true), out[2].message)
      assert.truthy(out[2].message:find("127.0.0.1 port " .. port(srv.dead), 1, true), out[2].message)
    end)

    it("reports a proxy that refuses the tunnel as PROXY, retryable as its status is", function()
      local out = run({
        { fn = "request", req = { url = "https://denied.invalid/hello", proxy = srv.proxy } },
        { fn = "request", req = { url = srv.dead:gsub("^http:", "https:") .. "/hello", proxy = srv.proxy } },
        { fn = "get", url = "https://denied.invalid/obj", path = dir .. "/denied.out", opts = { proxy = srv.proxy } },
      })
      local name = "the proxy 127.0.0.1 port " .. port(srv.proxy) .. " (from the proxy option) refused the tunnel: "
      assert.are.equal("PROXY", out[1].code)
      assert.is_false(out[1].retryable) -- 403: the proxy's policy
      assert.are.equal(1, out[1].message:find(name, 1, true), out[1].message)
      assert.truthy(out[1].message:find("403", 1, true), out[1].message)
      assert.are.equal("PROXY", out[2].code)
      assert.is_true(out[2].retryable) -- 502: the target did not answer the proxy
      assert.are.equal(1, out[2].message:find(name, 1, true), out[2].message)
      assert.truthy(out[2].message:find("502", 1, true), out[2].message)
      -- s3 transfers say the same
      assert.are.equal("PROXY", out[3].code)
      assert.is_false(out[3].retryable)
      assert.are.equal(1, out[3].message:find(name, 1, true), out[3].message)
      local via = {}
      for _, e in ipairs(handled("proxy")) do via[#via + 1] = e.method .. " " .. e.url end
      assert.are.same({ "CONNECT denied.invalid:443", "CONNECT 127.0.0.1:" .. port(srv.dead),
        "CONNECT denied.invalid:443" }, via)
    end)

    it("reports a proxy that does not speak the proxy's protocol as PROXY", function()
      -- a SOCKS5 greeting to the plain HTTP server: the answer is not SOCKS
      local socks = "socks5://127.0.0.1:" .. port(srv.http)
      local out = run({ { fn = "request", req = { url = srv.http .. "/hello", proxy = socks } } })
      assert.are.equal("PROXY", out[1].code)
      assert.is_true(out[1].retryable)
      assert.truthy(out[1].message:find("SOCKS5", 1, true), out[1].message)
      assert.are.same({}, handled()) -- and no request went around it
    end)
  end)
end)
