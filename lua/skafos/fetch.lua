-- Fetching a model version: E8 on the download host (token there only), the presigned
-- URL followed by hand with nothing but the URL, then either a resumable download into a
-- part file next to the target, every CRC checked, and the rename (with -o and --unzip
-- the archive is also extracted as it is written, safely, then both are put in place);
-- or, for --unzip without -o, the archive extracted while it downloads and never stored
-- (an interrupted one keeps what it extracted in .<dir>.skafos-partial and goes on from
-- there next time).
local errors = require "skafos.errors"
local fs = require "skafos.fs"
-- skafos.s3 (and with it libcurl) loads on first use: help and --help never need it
local function s3() return require "skafos.s3" end
local session = require "skafos.session"
local tmp_dirs = require "skafos.tmp"
local zip = require "skafos.zip"

local M = {}

local fail = errors.fail

local function exists(path)
  return fs.lstat(path) ~= nil
end

-- "latest" as a number, asked before the download so that the version reported is the
-- one fetched even when another is published meanwhile.
-- The same request gives the archive's size (when the API says it), so that free space
-- is checked before the download starts.
local function resolve(client, version)
  local versions, err = client:versions()
  if not versions then return nil, err end
  if #versions == 0 then
    return nil, errors.new("NO_VERSIONS", ("model '%s' has no versions"):format(client.model))
  end
  local chosen
  for _, v in ipairs(versions) do
    local n = math.tointeger(tonumber(v.version))
    if n and ((version == "latest" and (chosen == nil or n > chosen.n)) or n == version) then
      chosen = { n = n, size = math.tointeger(v.size) }
    end
  end
  if not chosen then
    return nil, errors.new("NOT_FOUND", ("model version %s not found (run 'skafos versions' to see them)")
      :format(tostring(version)))
  end
  return chosen.n, chosen.size
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- Refuses (exit 2) before the download when the archive (size bytes, when known) cannot
-- fit: the download needs its size beside the target (less what a part file already
-- holds), an extraction at least as much beside the directory.
local function check_space(size, tmp, keep_archive, unzip_dir)
  if not size then return true end
  local needs = {}
  local function need(dir, bytes)
    local st = fs.stat(dir)
    if not st then return end
    local key = st.dev
    needs[key] = needs[key] or { dir = dir, bytes = 0 }
    needs[key].bytes = needs[key].bytes + bytes
  end
  if keep_archive then
    local part = fs.lstat(tmp .. ".part")
    need(dirname(tmp), math.max(0, size - (part and part.size or 0)))
  end
  if unzip_dir then need(dirname(unzip_dir:gsub("/+$", "")), size) end
  local ui = require "skafos.ui"
  for _, n in pairs(needs) do
    local free = fs.free_space(n.dir)
    if free and free < n.bytes then
      return fail("USAGE", ("not enough space in %s: this version needs at least %s there, %s are free")
        :format(n.dir, ui.bytes(n.bytes), ui.bytes(free)))
    end
  end
  return true
end

-- Why --force must not replace dir, or nil: replacing removes the old tree, which must
-- never be the current directory or one holding it, the home directory, / or a mount
-- point, however the path is spelled.
local function force_problem(dir)
  local real = fs.realpath(dir)
  if not real then return nil end
  if real == "/" then return "it is the root directory" end
  local function covers(other)
    local o = other and fs.realpath(other)
    if not o then return nil end
    if o == real then return "is" end
    if o:sub(1, #real + 1) == real .. "/" then return "contains" end
  end
  local rel = covers(".")
  if rel then return ("it %s the current directory"):format(rel) end
  local home = os.getenv("HOME")
  rel = home and home ~= "" and covers(home)
  if rel then return ("it %s your home directory"):format(rel) end
  local st, up = fs.stat(real), fs.stat(real .. "/..")
  if st and up and (st.dev ~= up.dev or st.ino == up.ino) then return "it is a mount point" end
  return nil
end

-- Checks the paths fetch will replace, before any request.
local function check_targets(target, keep_archive, unzip_dir, force)
  if keep_archive then
    local st = fs.lstat(target)
    if st and st.type == "directory" then
      return fail("USAGE", ("%s is a directory; give -o a file name, e.g. -o %s/model.zip"):format(target, target))
    end
    if st and not force then
      return fail("EXISTS", ("%s already exists; pass --force to replace it or -o to choose another path")
        :format(target))
    end
  end
  if unzip_dir then
    local st = fs.lstat(unzip_dir)
    if st and not force then
      return fail("EXISTS", ("%s already exists; pass --force to replace it or --unzip DIR to choose another")
        :format(unzip_dir))
    end
    local problem = st and force_problem(unzip_dir)
    if problem then
      return fail("USAGE", ("refusing to replace %s with --force: %s; choose another --unzip directory")
        :format(unzip_dir, problem))
    end
  end
  return true
end

local function parse_version(v)
  if v == nil or v == "latest" then return "latest" end
  local n = math.tointeger(tonumber(v))
  if n and n >= 1 then return n end
  return nil
end

-- Downloads into the extractor under the retry policy and finishes it. Each attempt,
-- and the first one after an earlier run was interrupted, goes on from what the
-- extractor kept (Range + If-Range; a changed object starts over). Returns the result of
-- s3.get plus entries, or nil, err.
-- A storage answer that means the presigned URL is no longer good: it expired, or storage
-- refuses (403) what it served before.
local function stale_url(err)
  return err.code == "EXPIRED" or err.code == "ACCESS_DENIED" or err.status == 403
end

-- Runs get(url) under the retry policy; when storage says the URL expired, asks the
-- download host (fresh(), E8 again) for a new one and goes on from the bytes kept.
local function with_fresh_urls(sess, url, fresh, get)
  local refreshed, stale = 0, false
  return sess.retry.call(function()
    if stale then
      -- asked for just before it is used, so the wait between attempts cannot age it
      local where, werr = fresh()
      if not (where and where.url) then return nil, werr or errors.new("SERVER", "no fresh URL") end
      url, stale = where.url, false
    end
    local got, err = get(url)
    if not got and stale_url(err) and refreshed < 3 then
      refreshed, stale = refreshed + 1, true
      err.retryable, err.retry_after = true, 0
      err.message = tostring(err.message) .. " (a fresh URL is asked for)"
    end
    return got, err
  end, { what = "download" })
end

local function stream_unzip(sess, url, unzip_dir, opts, fresh)
  local ex, xerr = zip.extractor(unzip_dir, { force = opts.force, resumable = true })
  if not ex then return nil, xerr end
  local progress = opts.progress and opts.progress("download")
  local got, gerr = with_fresh_urls(sess, url, fresh, function(u)
    -- no SHA-256: it costs as much as the transfer on a small machine, and every
    -- entry's CRC-32 and the central directory are checked while extracting
    return s3().get(u, ex, {
      hash = false,
      resume = true,
      ca_file = sess.settings.ca_file,
      low_speed = { sess.settings.speed_limit, sess.settings.speed_time },
      progress = progress and function(done, total) progress:update(done, total) end,
    })
  end)
  if progress then progress:finish() end
  if not got then
    local kept = ex:partial_dir()
    ex:close()
    if kept and exists(kept) and gerr.code ~= "NOT_STREAMABLE" then
      gerr.message = ("%s (what arrived is kept in %s: run the same fetch again to go on)")
        :format(tostring(gerr.message), kept)
    end
    return nil, gerr
  end
  local done, ferr = ex:finish()
  if not done then
    ferr.message = ("the downloaded archive was refused: %s (nothing was kept)"):format(tostring(ferr.message))
    return nil, ferr
  end
  got.entries = done.entries
  return got
end

---Copies the file at path to an open file (standard output for -o -).
---@return true|nil ok, table|nil err
function M.copy_to(path, out)
  local f, oerr = io.open(path, "rb")
  if not f then return fail("IO", ("cannot read %s: %s"):format(path, oerr)) end
  while true do
    local chunk = f:read(1 << 20)
    if not chunk then break end
    local ok, werr = out:write(chunk)
    if not ok then
      f:close()
      return fail("IO", ("cannot write the archive: %s"):format(tostring(werr)))
    end
  end
  f:close()
  local ok, ferr = out:flush()
  if not ok then return fail("IO", ("cannot write the archive: %s"):format(tostring(ferr))) end
  return true
end

---Fetches. opts: version, output ("-": standard output, or the open file opts.stdout),
---unzip (true for ./<model>/ or a directory), force, flags/settings, progress
---(fun(phase) -> reporter), on_retry, on_warning. With unzip and no output
---the archive is extracted while it downloads and not kept (result.path and
---result.sha256 are nil).
---@return table|nil result {version, path, bytes, sha256, etag, unzipped, entries}
---@return table|nil err
local fetch

function M.fetch(opts)
  -- an interrupt raises from inside; it is caught here only to say what was kept
  local kept = {}
  local res = table.pack(pcall(fetch, opts, kept))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if errors.is(e) and (e.code == "INTERRUPTED" or e.code == "DEADLINE") then
    -- a complete download waiting for its check or rename is a temporary file: it goes
    if kept.tmp then os.remove(kept.tmp) end
    local part = kept.part and fs.lstat(kept.part)
    local dir = kept.partial and kept.partial() or nil
    local base = tostring(e.message)
    if part and part.size > 0 then
      e.message = ("%s; %s (%s) is kept: run the same command to resume"):format(base, kept.part,
        require("skafos.ui").bytes(part.size))
      e.kept = kept.part
    elseif dir and fs.lstat(dir) then
      e.message = ("%s; what was extracted is kept in %s: run the same command to go on"):format(base, dir)
      e.kept = dir
    else
      e.message = base .. " before anything was downloaded; nothing was kept"
    end
  end
  error(e, 0)
end

function fetch(opts, kept)
  local sess, serr = session.open { flags = opts.flags, settings = opts.settings, hooks = opts.hooks,
    on_retry = opts.on_retry, on_warning = opts.on_warning }
  if not sess then return nil, serr end
  local s, client = sess.settings, sess.client
  local version = parse_version(opts.version)
  if not version then
    return fail("USAGE", ("bad version '%s': use a version number (1, 2, ...) or latest")
      :format(tostring(opts.version)))
  end
  local safe_model = tostring(s.model):gsub("[/\\]", "_")
  local target = opts.output or ("./" .. safe_model .. ".zip")
  -- -o - (or opts.stdout, a file): the archive goes there once verified, by way of a
  -- private temporary directory removed whatever happens
  local to_stream = opts.output == "-" and (opts.stdout or io.stdout) or nil
  local scratch <close> = tmp_dirs.holder()
  if to_stream then
    if to_stream == io.stdout and fs.isatty(1) then
      return fail("USAGE", "refusing to write a zip archive to a terminal: redirect it (> model.zip) or pipe it")
    end
    local dir, derr = tmp_dirs.make("fetch", scratch)
    if not dir then return nil, derr end
    target = dir .. "/" .. safe_model .. ".zip"
  end
  local unzip_dir
  if opts.unzip == true or opts.unzip == "" then
    unzip_dir = "./" .. safe_model
  elseif opts.unzip then
    unzip_dir = opts.unzip
  end
  -- --unzip without -o keeps no archive, so only the directory can be in the way
  local keep_archive = opts.output ~= nil or not unzip_dir
  -- the download lands in <target>.download(.part); the part file survives an
  -- interruption and the next run resumes it. (Without an archive to keep, a download
  -- host that answers with the bytes themselves has them land beside the directory.)
  local tmp = (keep_archive and target or unzip_dir:gsub("/+$", "") .. ".zip") .. ".download"
  if keep_archive and not to_stream then kept.part = tmp .. ".part" end
  kept.tmp = tmp
  if not keep_archive then
    -- where the streaming extractor keeps what it extracted (see zip.extractor)
    local trimmed = unzip_dir:gsub("/+$", "")
    local parent, base = trimmed:match("^(.*)/([^/]+)$")
    kept.partial = function() return (parent or ".") .. "/." .. (base or trimmed) .. ".skafos-partial" end
  end
  -- one run at a time per output, for the whole run: taken before anything is checked,
  -- so a run never replaces what another one has just put in place
  local lock <close>, lerr = fs.lockfile(tmp .. ".lock")
  if not lock then
    if lerr.code == "BUSY" then
      lerr.message = ("another skafos is fetching to %s (it holds %s.lock); wait for it to finish "
        .. "or choose another output"):format(keep_archive and target or unzip_dir, tmp)
    elseif lerr.code ~= "UNSAFE_PATH" then
      -- the output's directory is missing, read-only or not ours to write: a bad argument,
      -- found before anything is asked or downloaded
      return fail("USAGE", ("cannot write %s: %s; choose another output"):format(keep_archive and target
        or unzip_dir, tostring(lerr.message):match(": ([^:]*)$") or tostring(lerr.message)))
    end
    return nil, lerr
  end
  local checked, cerr = check_targets(target, keep_archive, unzip_dir, opts.force)
  if not checked then return nil, cerr end
  -- with the lock held, a download of ours left complete but unchecked by a killed run is
  -- no one's: it goes (a part file stays, to be resumed)
  local stale = fs.lstat(tmp)
  if stale and stale.type == "file" and stale.uid == fs.geteuid() then os.remove(tmp) end

  local started = fs.clock()
  local size
  version, size = resolve(client, version)
  if not version then return nil, size end
  local fits, serr2 = check_space(size, tmp, keep_archive, unzip_dir)
  if not fits then return nil, serr2 end
  local where, derr = client:download(version, tmp)
  if not where then return nil, derr end
  local function fresh() return client:download(version, tmp) end
  local got
  if where.url and not keep_archive then
    local xerr
    got, xerr = stream_unzip(sess, where.url, unzip_dir, opts, fresh)
    if got then
      local result = {
        version = version, path = nil, bytes = got.bytes, sha256 = got.sha256, etag = got.etag,
        entries = got.entries, seconds = 0, org = s.org, app = s.app, model = s.model, unzipped = unzip_dir,
        resumed = got.resumed,
      }
      result.seconds = fs.clock() - started
      return result
    end
    if xerr.code ~= "NOT_STREAMABLE" then return nil, xerr end
    -- an archive that cannot be read front to back: download it whole first
  end
  local extracted -- {entries} when the archive was unzipped as it arrived
  if where.url then
    -- Each attempt writes the part file (a retry resumes it) and hands the same bytes,
    -- from the first, to the extractor; one that refuses them (say, an archive it cannot
    -- read front to back) lets go, and the archive is unzipped from the file afterwards
    -- (as it is at once for --unzip without -o, which only comes here when the streamed
    -- extraction could not).
    local ex, xerr
    if unzip_dir and keep_archive then
      ex, xerr = zip.extractor(unzip_dir, { force = opts.force })
      if not ex then return nil, xerr end
    end
    local progress = opts.progress and opts.progress("download")
    local gerr
    got, gerr = with_fresh_urls(sess, where.url, fresh, function(u)
      return s3().get(u, tmp, {
        resume = true,
        connections = not ex and s.connections or 1, -- the extractor needs the bytes in order
        sink = ex,
        ca_file = s.ca_file,
        low_speed = { s.speed_limit, s.speed_time },
        progress = progress and function(done, total) progress:update(done, total) end,
      })
    end)
    if progress then progress:finish() end
    if not got then
      if ex then ex:close() end
      -- a part file no byte ever reached is not kept
      local part = fs.lstat(tmp .. ".part")
      if part and part.type == "file" and part.size == 0 then
        os.remove(tmp .. ".part")
        os.remove(tmp .. ".part.etag")
      elseif part and part.size > 0 and gerr.code ~= "INTERRUPTED" then
        gerr.message = ("%s (%s, %s, is kept: run the same command to resume)"):format(tostring(gerr.message),
          tmp .. ".part", require("skafos.ui").bytes(part.size))
      end
      return nil, gerr
    end
    if ex and not got.sink_skipped then
      -- every entry checked against the central directory; the extractor is stricter than
      -- the file reader (no bytes after the end record), so what it refuses gets the
      -- file's verdict below
      local ferr
      extracted, ferr = ex:finish()
      if not extracted and ferr.code == "INTERRUPTED" then
        os.remove(tmp)
        return nil, ferr
      end
    elseif ex then
      ex:close()
    end
  else
    local st = fs.stat(tmp)
    got = { bytes = st and st.size or 0 }
  end

  -- an archive kept and not extracted needs only to be intact: names that extraction
  -- would refuse are reported, not refused (the archive is what was published)
  local verified, verr = extracted, nil
  if not verified then verified, verr = zip.verify(tmp, { names = unzip_dir and "refuse" or "report" }) end
  if not verified then
    os.remove(tmp)
    verr.message = ("the downloaded archive was refused: %s (nothing was kept; run fetch again)")
      :format(tostring(verr.message))
    return nil, verr
  end

  local result = {
    version = version, path = target, bytes = got.bytes, sha256 = got.sha256, etag = got.etag,
    entries = verified.entries, seconds = 0, org = s.org, app = s.app, model = s.model,
    resumed = got.resumed, unsafe = verified.unsafe,
  }
  if verified.unsafe and opts.on_warning then
    opts.on_warning(("the archive is intact and kept, but extracting it would be unsafe: %s"):format(verified.unsafe))
  end
  if unzip_dir then
    if not extracted then
      local xerr
      extracted, xerr = zip.extract(tmp, unzip_dir, { force = opts.force })
      if not extracted then
        -- the archive checked out: only the extraction failed (no space, say), so a kept
        -- archive stays, in its place
        if keep_archive and not to_stream and os.rename(tmp, target) then
          xerr.message = ("%s; the verified archive is kept as %s"):format(tostring(xerr.message), target)
        else
          os.remove(tmp)
        end
        return nil, xerr
      end
    end
    result.unzipped = unzip_dir
  end
  if to_stream then
    local ok, werr = M.copy_to(tmp, to_stream)
    if not ok then return nil, werr end
    result.path = "-"
  elseif keep_archive then
    local ok, rerr = os.rename(tmp, target)
    if not ok then
      os.remove(tmp)
      return fail("IO", ("cannot move the download into place: %s"):format(rerr))
    end
  else
    os.remove(tmp)
    result.path = nil
  end
  result.seconds = fs.clock() - started
  return result
end

return M
