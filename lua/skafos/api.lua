-- The Skafos API (SPEC.md E1-E10) over skafos.http. Every path segment is
-- percent-encoded; X-API-TOKEN goes only to the API and download hosts; idempotent calls
-- are retried through the retry policy; the others (E3, E4) only after a failure that
-- shows they never reached the server. Returns `nil, err` with codes
-- AUTH, NOT_FOUND, CONFLICT, INVALID, SERVER, NO_VERSIONS or a transport code.
local cjson = require "cjson"
local config = require "skafos.config"
local core = require "skafos.core"
local errors = require "skafos.errors"

local M = {}

local Client = {}
Client.__index = Client

---Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
---@param s string
---@return string
function M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function err_obj(code, message, fields)
  return errors.new(code, message, fields)
end

---A client for one org/app/model.
---@param settings table resolved settings (api_url, download_url, token, org, app, model)
---@param opts? {retry?: table, timeout?: number, connect_timeout?: number, http?: table}
function M.new(settings, opts)
  opts = opts or {}
  if type(settings.token) == "string" then core.add_secret(settings.token) end
  return setmetatable({
    api_url = settings.api_url,
    download_url = settings.download_url,
    token = settings.token,
    org = settings.org,
    app = settings.app,
    model = settings.model,
    retry = opts.retry,
    timeout = opts.timeout or 120,
    low_speed = settings.speed_limit and settings.speed_time and { settings.speed_limit, settings.speed_time } or nil,
    connect_timeout = opts.connect_timeout or 15,
    ca_file = settings.ca_file,
    -- required here, not at the top: the executable loads libcurl in a thread meanwhile
    http = opts.http or require "skafos.http",
  }, Client)
end

function Client:model_path()
  return ("/organizations/%s/apps/%s/models/%s"):format(M.escape(self.org), M.escape(self.app),
    M.escape(self.model))
end

-- cjson decodes every number as a float; ids and versions are integers to us (so they
-- print as 7, not 7.0, and compare equal to integers).
local function integral(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integral(x) end
  end
  return v
end

local function decode_json(body)
  if body == nil or body == "" then return nil end
  local ok, v = pcall(cjson.decode, body)
  if ok then return integral(v) end
  return nil
end

-- The server's own words, when it sent a JSON {"error": ...}; HTML and empty bodies
-- give nil.
local function server_message(body)
  local doc = decode_json(body)
  if type(doc) == "table" then
    local m = doc.error or doc.message or doc.errors
    if type(m) == "string" then return m end
    if type(m) == "table" then return cjson.encode(m) end
  end
  return nil
end

local function status_error(resp, what)
  local status = resp.status
  local said = server_message(resp.body)
  if status == 401 or status == 403 then
    return err_obj("AUTH", ("%s: the API token was rejected (%s); check SKAFOS_API_TOKEN, --token-file "
      .. "or 'skafos login'"):format(what, said or ("HTTP " .. status)), { status = status })
  elseif status == 404 then
    return err_obj("NOT_FOUND", said or ("%s: not found (HTTP 404)"):format(what), { status = status,
      server_said = said ~= nil })
  elseif status == 409 then
    return err_obj("CONFLICT", ("%s: %s"):format(what, said or "conflict (HTTP 409)"), { status = status })
  elseif status == 400 or status == 422 then
    return err_obj("INVALID", ("%s: %s"):format(what, said or ("rejected (HTTP " .. status .. ")")),
      { status = status })
  elseif status == 429 or status >= 500 then
    return err_obj("SERVER", ("%s: server error HTTP %d%s"):format(what, status, said and (": " .. said) or ""),
      { status = status, retryable = true, retry_after = resp.headers and resp.headers["retry-after"] })
  end
  return err_obj("HTTP", ("%s: unexpected HTTP %d%s"):format(what, status, said and (": " .. said) or ""),
    { status = status })
end

-- One HTTP exchange with the API or download host. opts: body (table -> JSON), host
-- ("api"|"download"), expect (list of OK statuses), idempotent, what, query, output.
function Client:call(method, path, opts)
  local base = opts.host == "download" and self.download_url or self.api_url
  local problem = config.url_problem(base)
  if problem then
    return nil, err_obj("USAGE", ("refusing to send the token to %s: %s; use https"):format(base, problem))
  end
  local url = base .. path .. (opts.query or "")
  local headers = { ["X-API-TOKEN"] = self.token, ["Accept"] = "application/json" }
  local body
  if opts.body ~= nil then
    body = cjson.encode(opts.body)
    headers["Content-Type"] = "application/json"
  end
  local function attempt()
    local resp, err = self.http.request {
      method = method, url = url, headers = headers, body = body, follow = false,
      timeout = opts.timeout or self.timeout, connect_timeout = self.connect_timeout, low_speed = self.low_speed,
      output = opts.output, ca_file = self.ca_file,
    }
    if not resp then
      err.message = ("%s: %s"):format(opts.what, tostring(err.message))
      return nil, err
    end
    for _, ok in ipairs(opts.expect or { 200 }) do
      if resp.status == ok then return resp end
    end
    return nil, status_error(resp, opts.what)
  end
  local resp, err
  if self.retry then
    -- a request that is not idempotent is repeated only when it never reached the server
    resp, err = self.retry.call(attempt, { what = opts.what, unsent_only = not opts.idempotent })
  else
    resp, err = attempt()
  end
  if not resp then return nil, err end
  return resp
end

local function json_result(resp, what)
  local doc = decode_json(resp.body)
  if doc == nil then
    return nil, err_obj("SERVER", what .. ": the server's answer is not JSON", { status = resp.status })
  end
  return doc
end

function Client:get_json(path, what, opts)
  opts = opts or {}
  local resp, err = self:call("GET", path, { what = what, idempotent = true, query = opts.query })
  if not resp then return nil, err end
  return json_result(resp, what)
end

-- On a 404 whose body does not say what is missing, ask E1/E2 which of organization, app
-- or model does not exist.
function Client:explain_not_found(err)
  if err.code ~= "NOT_FOUND" or err.server_said then return err end
  local orgs = self:organizations()
  if orgs then
    local found = false
    for _, o in ipairs(orgs) do if o.display_name == self.org then found = true end end
    if not found then
      err.message = ("organization '%s' not found (or not visible to this token)"):format(self.org)
      return err
    end
  end
  local apps = self:apps(self.org)
  if apps then
    for _, a in ipairs(apps) do
      if a.name == self.app then
        for _, m in ipairs(a.models or {}) do
          if m.name == self.model then return err end
        end
        err.message = ("model '%s' not found in app '%s'"):format(self.model, self.app)
        return err
      end
    end
    err.message = ("app '%s' not found in organization '%s'"):format(self.app, self.org)
  end
  return err
end

-- A missing organization, app or model: say where to look.
local function with_hint(err)
  if err.code == "NOT_FOUND" and not tostring(err.message):find("version", 1, true)
      and not tostring(err.message):find("skafos summary", 1, true) then
    err.message = tostring(err.message) .. " (run 'skafos summary' to see what this token can see)"
  end
  return err
end

local function with_explanation(self, doc, err)
  if doc == nil and err then return nil, with_hint(self:explain_not_found(err)) end
  return doc
end

---E1: the organizations the token can see.
function Client:organizations()
  return self:get_json("/organizations", "list organizations")
end

---E2: the apps of an organization, with their models.
function Client:apps(org)
  return self:get_json(("/organizations/%s/apps"):format(M.escape(org)), "list apps",
    { query = "?with_models=true" })
end

---E3: creates a model in the app.
function Client:create_model(name, description)
  local path = ("/organizations/%s/apps/%s/models"):format(M.escape(self.org), M.escape(self.app))
  local resp, err = self:call("POST", path, { what = "create model", expect = { 200, 201 },
    body = { name = name, description = description or "" } })
  if not resp then return with_explanation(self, nil, err) end
  return json_result(resp, "create model")
end

---E4: starts an upload; never retried once sent.
---@return table|nil {model_version_id, filepath, presigned_url}
function Client:create_version(filename, description)
  local resp, err = self:call("POST", self:model_path() .. "/model_versions", {
    what = "create model version", expect = { 200, 201 },
    body = { filename = filename, description = description },
  })
  if not resp then return with_explanation(self, nil, err) end
  local doc, jerr = json_result(resp, "create model version")
  if not doc then return nil, jerr end
  if not (doc.model_version_id and doc.filepath and doc.presigned_url) then
    return nil, err_obj("SERVER", "create model version: the answer lacks model_version_id, filepath or presigned_url")
  end
  local url, uerr = M.storage_url(tostring(doc.presigned_url), self.api_url, "create model version: the upload URL")
  if not url then
    uerr.model_version_id = doc.model_version_id
    return nil, uerr
  end
  doc.presigned_url = url
  return doc
end

---E6: finalizes an upload.
function Client:finalize(model_version_id, filepath)
  local resp, err = self:call("PATCH", self:model_path() .. "/model_versions/" .. M.escape(model_version_id), {
    what = "finalize model version", idempotent = true, body = { filepath = filepath },
  })
  if not resp then return with_explanation(self, nil, err) end
  return json_result(resp, "finalize model version")
end

---E7: finalized versions, ascending; an ETag is given as publish and fetch give it (the
---MD5 in hex, without quotes).
function Client:versions()
  local list, err = with_explanation(self, self:get_json(self:model_path() .. "/model_versions", "list versions",
    { query = "?order_by=version" }))
  for _, v in ipairs(list or {}) do
    if type(v) == "table" and type(v.etag) == "string" then
      v.etag = v.etag:gsub("^W/", ""):gsub('^"(.*)"$', "%1")
    end
  end
  return list, err
end

---E8: where to download a version from. Returns {url = presigned URL} after a redirect,
---or {file = path} when the download host answered with the bytes themselves (written
---to `direct_output`).
---@param version integer|string|nil nil or "latest" for the latest
function Client:download(version, direct_output)
  local query = ""
  if version ~= nil and version ~= "latest" then query = "?version=" .. M.escape(version) end
  local resp, err = self:call("GET", self:model_path(), {
    what = "download", host = "download", idempotent = true, query = query,
    expect = { 200, 301, 302, 303, 307, 308 }, output = direct_output,
  })
  if not resp then
    if err.code == "NOT_FOUND" and not err.server_said then
      local versions = self:versions()
      if versions and #versions == 0 then
        err.code, err.message = "NO_VERSIONS", ("model '%s' has no versions"):format(self.model)
        return nil, err
      elseif versions then
        err.message = ("model version %s not found"):format(tostring(version))
        return nil, err
      end
      return nil, with_hint(self:explain_not_found(err))
    end
    return nil, err
  end
  if resp.status == 200 then return { file = direct_output } end
  local location = resp.headers and resp.headers["location"]
  if not location then
    return nil, err_obj("SERVER", "download: the redirect has no Location header")
  end
  local url, uerr = M.storage_url(location, self.download_url, "download: the redirect")
  if not url then return nil, uerr end
  return { url = url }
end

---An absolute storage URL from a Location header or an API answer, resolved against the
---URL it came from; refused (code REDIRECT, exit 6) when it is not http(s) or when it
---would go from https to plain http other than to loopback.
---@param location string
---@param base string the URL the answer came from
---@param what string for messages
---@return string|nil url, table|nil err
function M.storage_url(location, base, what)
  local url = location
  if not url:match("^%a[%w+.%-]*://") then
    local origin = base:match("^(%a[%w+.%-]*://[^/?#]*)")
    if url:sub(1, 2) == "//" then
      url = base:match("^(%a[%w+.%-]*:)") .. url
    elseif url:sub(1, 1) == "/" then
      url = origin .. url
    else
      local dir = base:match("^(%a[%w+.%-]*://[^?#]*/)") or (origin .. "/")
      url = dir .. url
    end
  end
  local scheme, host = config.url_parts(url)
  local redacted = require("skafos.http").redact(url)
  if scheme ~= "https" and scheme ~= "http" then
    return nil, err_obj("REDIRECT", ("%s points to %s, which is not an http(s) URL"):format(what, redacted))
  end
  if scheme == "http" and config.url_parts(base) == "https" and not config.is_loopback(host or "") then
    return nil, err_obj("REDIRECT", ("%s goes from https to plain http (%s); refused"):format(what, redacted))
  end
  return url
end

---E9: the model's environments with device counts.
function Client:environments()
  return with_explanation(self, self:get_json(self:model_path() .. "/environment_groups", "list environments",
    { query = "?with_device_count=true" }))
end

---E10: deploys a version to an environment; returns {version, message}.
function Client:deploy(version, environment)
  local v = version
  if v ~= "latest" then v = math.tointeger(tonumber(v)) or v end
  local resp, err = self:call("POST", self:model_path() .. "/deploy", {
    -- deploying the same version to the same environment twice leaves the same state
    what = "deploy", expect = { 200, 201, 202 }, body = { version = v, environment = environment },
    idempotent = true,
  })
  if not resp then
    -- the API answers an unknown version or environment with 400 "... not found": to the
    -- user that is something missing (exit 4), not a malformed request
    if err.code == "INVALID" and tostring(err.message):find("not found", 1, true) then
      err.code, err.exit = "NOT_FOUND", errors.exit_code("NOT_FOUND")
      err.server_said = true
    end
    return with_explanation(self, nil, err)
  end
  local doc, jerr = json_result(resp, "deploy")
  if not doc then return nil, jerr end
  local msg = type(doc.success) == "string" and doc.success or cjson.encode(doc)
  local words = {}
  for w in msg:gmatch("%S+") do words[#words + 1] = w end
  -- "Deployed model version N to Dev": the version is the word after "version"
  local deployed
  for i, w in ipairs(words) do
    if w == "version" and words[i + 1] then deployed = math.tointeger(tonumber(words[i + 1])) end
  end
  deployed = deployed or math.tointeger(tonumber(words[#words])) or words[#words]
  return { version = deployed, message = msg }
end

return M
