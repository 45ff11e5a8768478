-- Fetching a model version: E8 on the download host (token there only), the presigned
-- URL followed by hand with nothing but the URL, a resumable download into a part file
-- next to the target, every CRC checked, then the rename (and the safe unzip).
local fs = require "skafos.fs"
local s3 = require "skafos.s3"
local session = require "skafos.session"
local zip = require "skafos.zip"

local M = {}

local function fail(code, message)
  return nil, setmetatable({ code = code, message = message },
    { __tostring = function(t) return t.message end })
end

local function exists(path)
  return fs.lstat(path) ~= nil
end

local function parse_version(v)
  if v == nil or v == "latest" then return "latest" end
  local n = math.tointeger(tonumber(v))
  if n and n >= 1 then return n end
  return nil
end

---Fetches. opts: version, output, unzip (true for ./<model>/ or a directory), force,
---flags/settings, progress (fun(phase) -> reporter), on_retry.
---@return table|nil result {version, path, bytes, sha256, etag, unzipped, entries}
---@return table|nil err
function M.fetch(opts)
  local sess, serr = session.open { flags = opts.flags, settings = opts.settings, hooks = opts.hooks,
    on_retry = opts.on_retry }
  if not sess then return nil, serr end
  local s, client = sess.settings, sess.client
  local version = parse_version(opts.version)
  if not version then
    return fail("USAGE", ("bad version '%s': use a version number (1, 2, ...) or latest")
      :format(tostring(opts.version)))
  end
  local safe_model = tostring(s.model):gsub("[/\\]", "_")
  local target = opts.output or ("./" .. safe_model .. ".zip")
  local unzip_dir
  if opts.unzip == true or opts.unzip == "" then
    unzip_dir = "./" .. safe_model
  elseif opts.unzip then
    unzip_dir = opts.unzip
  end
  if not opts.force then
    if exists(target) then
      return fail("EXISTS", ("%s already exists; pass --force to replace it or -o to choose another path")
        :format(target))
    end
    if unzip_dir and exists(unzip_dir) then
      return fail("EXISTS", ("%s already exists; pass --force to replace it or --unzip DIR to choose another")
        :format(unzip_dir))
    end
  end

  -- the download lands in <target>.download(.part); the part file survives an
  -- interruption and the next run resumes it
  local tmp = target .. ".download"
  local started = fs.clock()
  local where, derr = client:download(version, tmp)
  if not where then return nil, derr end
  local got
  if where.url then
    local progress = opts.progress and opts.progress("download")
    local gerr
    got, gerr = sess.retry.call(function()
      return s3.get(where.url, tmp, {
        resume = true,
        progress = progress and function(done, total) progress:update(done, total) end,
      })
    end, { what = "download" })
    if progress then progress:finish() end
    if not got then return nil, gerr end
  else
    local st = fs.stat(tmp)
    got = { bytes = st and st.size or 0 }
  end

  local verified, verr = zip.verify(tmp)
  if not verified then
    os.remove(tmp)
    verr.message = ("the downloaded archive is damaged: %s (it was removed; run fetch again)")
      :format(tostring(verr.message))
    return nil, verr
  end

  local result = {
    version = version, path = target, bytes = got.bytes, sha256 = got.sha256, etag = got.etag,
    entries = verified.entries, seconds = 0, org = s.org, app = s.app, model = s.model,
  }
  if unzip_dir then
    local extracted, xerr = zip.extract(tmp, unzip_dir, { force = opts.force })
    if not extracted then return nil, xerr end
    result.unzipped = unzip_dir
  end
  local ok, rerr = os.rename(tmp, target)
  if not ok then return fail("IO", ("cannot move the download into place: %s"):format(rerr)) end
  if version == "latest" then
    local versions = client:versions()
    if versions and #versions > 0 then result.version = versions[#versions].version end
  end
  result.seconds = fs.clock() - started
  return result
end

return M
