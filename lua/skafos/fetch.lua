-- Fetching a model version, in the steps scripts/fetch.lua calls: resolve, download,
-- verify, extract, report. E8 on the download host (token there only), the presigned URL
-- followed by hand with nothing but the URL, then either a resumable download into a part
-- file next to the target, every CRC checked, and the rename (with -o and --unzip the
-- archive is also extracted as it is written, safely, then both are put in place); or, for
-- --unzip without -o, the archive extracted while it downloads and never stored (an
-- interrupted one keeps what it extracted in .<dir>.skafos-partial and goes on from there).
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

-- Downloads into a resumable extractor under the retry policy. Each attempt, and the
-- first one after an earlier run was interrupted, goes on from what the extractor kept
-- (Range + If-Range; a changed object starts over). Returns the result of s3.get and the
-- extractor, still to be finished, or nil, err.
local function stream_into_extractor(job, url, fresh)
  local sess, opts = job.sess, job.opts
  local ex, xerr = zip.extractor(job.unzip_dir, { force = opts.force, resumable = true,
    max_entries = job.settings.max_entries })
  if not ex then return nil, xerr end
  local progress = opts.progress and opts.progress("download")
  local got, gerr = with_fresh_urls(sess, url, fresh, function(u)
    -- no SHA-256: it costs as much as the transfer on a small machine, and every
    -- entry's CRC-32 and the central directory are checked while extracting
    return s3().get(u, ex, {
      hash = false,
      resume = true,
      -- ranges on several connections, handed to the extractor in order through a
      -- bounded window of memory
      connections = sess.settings.connections,
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
  return got, ex
end

-- Downloads into the part file beside the target (a retry resumes it); with a sink, each
-- attempt also hands the same bytes, from the first, to it. Returns s3.get's result (for a
-- download host that answered with the bytes themselves, their size), or nil, err.
local function download_file(job, where, fresh, sink)
  local s, opts, tmp = job.settings, job.opts, job.tmp
  if not where.url then
    local st = fs.stat(tmp)
    return { bytes = st and st.size or 0 }
  end
  local progress = opts.progress and opts.progress("download")
  local got, gerr = with_fresh_urls(job.sess, where.url, fresh, function(u)
    return s3().get(u, tmp, {
      resume = true,
      -- ranges at their offsets; the extractor reads the file's front in order as it fills
      connections = s.connections,
      sink = sink,
      ca_file = s.ca_file,
      low_speed = { s.speed_limit, s.speed_time },
      progress = progress and function(done, total) progress:update(done, total) end,
    })
  end)
  if progress then progress:finish() end
  if not got then
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

-- An interrupt or deadline told with what was kept for the next run; other errors as they are.
local function told(job, e)
  if not (errors.is(e) and (e.code == "INTERRUPTED" or e.code == "DEADLINE")) then return e end
  local kept = job.kept
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
  return e
end

-- The steps below are what scripts/fetch.lua calls, in order; a copy of it (skafos scripts
-- dump fetch) may add, drop or reorder them. Each takes the job M.resolve made and returns
-- its result, or nil and an error. The job is the state they share: the session and
-- settings, the version, the paths (target: where the archive goes; tmp: the download
-- beside it; unzip_dir), the lock on the output, and what each step leaves for the next:
--   job.got        the download (bytes, etag, resumed, ...), from M.download
--   job.sink       the zip extractor the bytes went through as they arrived, when
--                  extraction is streamed; finished by M.verify (or by M.extract if verify
--                  was dropped)
--   job.verified   {entries, unsafe} once the archive checked out, from M.verify
--   job.extracted  {entries, bytes} once the tree is in place, from M.verify or M.extract
-- Extraction is streamed (it overlaps the download) with --unzip without -o, where no
-- archive is kept (verify and extract have no file to read: verify finishes the extractor,
-- which checked every entry's CRC as it arrived and now checks the central directory and
-- puts the tree in place; extract only confirms it), and with -o FILE --unzip, where the
-- same bytes go to the part file and the extractor in one pass (verify's verdict is the
-- extractor's, or the file's when the extractor could not read the archive front to back;
-- extract then unzips the verified file).

-- Fills job (see M.resolve) with what the resolve step finds; may raise for an interrupt.
local function settle(job)
  local opts, kept = job.opts, job.kept
  local sess, serr = session.open { flags = opts.flags, settings = opts.settings, hooks = opts.hooks,
    on_retry = opts.on_retry, on_warning = opts.on_warning }
  if not sess then return nil, serr end
  job.sess, job.settings, job.client = sess, sess.settings, sess.client
  local s = sess.settings
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
  if to_stream then
    if to_stream == io.stdout and fs.isatty(1) then
      return fail("USAGE", "refusing to write a zip archive to a terminal: redirect it (> model.zip) or pipe it")
    end
    local dir, derr = tmp_dirs.make("fetch", job.scratch)
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
  job.target, job.to_stream, job.unzip_dir, job.keep_archive, job.tmp = target, to_stream, unzip_dir,
    keep_archive, tmp
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
  local lock, lerr = fs.lockfile(tmp .. ".lock")
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
  job.lock = lock
  local checked, cerr = check_targets(target, keep_archive, unzip_dir, opts.force)
  if not checked then return nil, cerr end
  -- with the lock held, a download of ours left complete but unchecked by a killed run is
  -- no one's: it goes (a part file stays, to be resumed)
  local stale = fs.lstat(tmp)
  if stale and stale.type == "file" and stale.uid == fs.geteuid() then os.remove(tmp) end

  job.started = fs.clock()
  local size
  version, size = resolve(job.client, version)
  if not version then return nil, size end
  job.version, job.size = version, size
  local fits, serr2 = check_space(size, tmp, keep_archive, unzip_dir)
  if not fits then return nil, serr2 end
  return job
end

---Step 1, resolve: settings, which version ("latest" asked for as a number, with its size
---when the API gives it), where it goes; the output locked for the whole run (one fetch at
---a time per output), the paths it would replace checked, a stale unchecked download of
---a killed run removed, free space checked. Makes the E7 request only.
---@param opts table {version, output ("-": standard output, or the open file opts.stdout),
---  unzip (true for ./<model>/, or a directory), force, flags/settings, hooks, progress
---  (fun(phase) -> reporter), on_retry, on_warning}
---@return table|nil job, table|nil err
function M.resolve(opts)
  local job = { opts = opts, kept = {}, scratch = tmp_dirs.holder() }
  local res = table.pack(pcall(settle, job))
  if res[1] and res[2] then return job end
  M.close(job)
  if res[1] then return nil, res[3] end
  error(told(job, res[2]), 0)
end

---Step 2, download: asks the download host for the version (E8) and follows it to storage
---with nothing but the URL, under the retry policy, with a fresh URL when one expires.
---The bytes go into <target>.download.part (resumed; renamed to <target>.download once
---complete), or, for --unzip without -o, straight into a resumable extractor (job.sink)
---and nowhere else; with -o FILE --unzip, into both in one pass. An archive the
---extractor cannot read front to back is downloaded whole and unzipped afterwards.
---@return table|nil got {bytes, etag, resumed, ...}, table|nil err
function M.download(job)
  local client, version, opts = job.client, job.version, job.opts
  local where, derr = client:download(version, job.tmp)
  if not where then return nil, derr end
  local function fresh() return client:download(version, job.tmp) end
  if where.url and not job.keep_archive then
    local got, ex_or_err = stream_into_extractor(job, where.url, fresh)
    if got then
      job.got, job.sink, job.streamed = got, ex_or_err, true
      return got
    end
    if ex_or_err.code ~= "NOT_STREAMABLE" then return nil, ex_or_err end
    -- an archive that cannot be read front to back: download it whole first
  end
  local sink
  if where.url and job.unzip_dir and job.keep_archive then
    local xerr
    sink, xerr = zip.extractor(job.unzip_dir, { force = opts.force, max_entries = job.settings.max_entries })
    if not sink then return nil, xerr end
  end
  local got, gerr = download_file(job, where, fresh, sink)
  if not got then
    if sink then sink:close() end
    return nil, gerr
  end
  job.got = got
  -- an extractor that let go of the bytes (say, an archive it cannot read front to back)
  -- is done with: the archive is unzipped from the file afterwards
  if sink and got.sink_skipped then
    sink:close()
  elseif sink then
    job.sink = sink
  end
  return got
end

-- Finishes job.sink: the end of the archive checked and the tree put in place. Returns
-- {entries, bytes}; nil, err when it refused; false, err when the archive file (kept
-- with -o) is to give the verdict instead.
local function finish_sink(job)
  local ex = job.sink
  job.sink = nil
  local done, ferr = ex:finish()
  if done then
    job.extracted = done
    return done
  end
  if job.streamed then
    ferr.message = ("the downloaded archive was refused: %s (nothing was kept)"):format(tostring(ferr.message))
    return nil, ferr
  end
  if ferr.code == "INTERRUPTED" then
    os.remove(job.tmp)
    return nil, ferr
  end
  -- the extractor is stricter than the file reader (no bytes after the end record), so
  -- what it refuses gets the file's verdict
  return false, ferr
end

---Step 3, verify: the archive checked before anything is put in place: every CRC and
---size, the central directory, and (with --unzip) every name. When the extraction was
---streamed this finishes it (job.sink): every entry was checked as it arrived, and the
---tree goes into place now. An archive kept and not extracted needs only to be intact:
---names that extraction would refuse are reported (result.unsafe, a warning), not refused.
---A refused archive is removed.
---@return table|nil verified {entries, unsafe}, table|nil err
function M.verify(job)
  if job.sink then
    local done, ferr = finish_sink(job)
    if done then
      job.verified = done
      return done
    end
    if done == nil then return nil, ferr end
  end
  if job.streamed then
    -- nothing on disk to check: the extractor gave its verdict
    return job.verified or fail("FAILED", "nothing was downloaded to verify: run the download step first")
  end
  local verified, verr = zip.verify(job.tmp, { names = job.unzip_dir and "refuse" or "report",
    max_entries = job.settings.max_entries })
  if not verified then
    os.remove(job.tmp)
    if verr.code == "INTERRUPTED" then return nil, verr end -- told by guard, not a refusal
    verr.message = ("the downloaded archive was refused: %s (nothing was kept; run fetch again)")
      :format(tostring(verr.message))
    return nil, verr
  end
  job.verified = verified
  if verified.unsafe and job.opts.on_warning then
    job.opts.on_warning(("the archive is intact and kept, but extracting it would be unsafe: %s")
      :format(verified.unsafe))
  end
  return verified
end

---Step 4, extract: with --unzip, the archive extracted safely into a temporary directory
---renamed into place. Only confirms an extraction already made while downloading
---(finishing it here when verify was dropped); without --unzip there is nothing to do.
---When only the extraction fails (no space, say) an archive kept with -o FILE stays, in
---its place.
---@return table|nil extracted {entries} or {} when nothing was asked, table|nil err
function M.extract(job)
  if not job.unzip_dir then return {} end
  if job.extracted then return job.extracted end
  if job.sink then
    local done, ferr = finish_sink(job)
    if done then return done end
    if done == nil then return nil, ferr end
  end
  local extracted, xerr = zip.extract(job.tmp, job.unzip_dir, { force = job.opts.force,
    max_entries = job.settings.max_entries })
  if not extracted then
    if job.keep_archive and not job.to_stream and os.rename(job.tmp, job.target) then
      xerr.message = ("%s; the verified archive is kept as %s"):format(tostring(xerr.message), job.target)
    else
      os.remove(job.tmp)
    end
    return nil, xerr
  end
  job.extracted = extracted
  return extracted
end

---Step 5, report: the archive put where it was asked (renamed into place, written to
---standard output for -o -, or removed when none is kept) and the result.
---@return table|nil result {version, path, bytes, sha256, etag, entries, seconds, org, app,
---  model, resumed, unsafe, unzipped}; path and sha256 are nil when no archive was kept
---@return table|nil err
function M.report(job)
  local s, got = job.settings, job.got
  if not got then return fail("FAILED", "nothing was downloaded: run the download step first") end
  local checked = job.verified or job.extracted or {}
  local result = {
    version = job.version, path = job.target, bytes = got.bytes, sha256 = got.sha256, etag = got.etag,
    entries = checked.entries, seconds = 0, org = s.org, app = s.app, model = s.model,
    resumed = got.resumed, unsafe = checked.unsafe,
  }
  if job.unzip_dir and job.extracted then result.unzipped = job.unzip_dir end
  if job.streamed then
    result.path = nil
  elseif job.to_stream then
    local ok, werr = M.copy_to(job.tmp, job.to_stream)
    if not ok then return nil, werr end
    result.path = "-"
  elseif job.keep_archive then
    local ok, rerr = os.rename(job.tmp, job.target)
    if not ok then
      os.remove(job.tmp)
      return fail("IO", ("cannot move the download into place: %s"):format(rerr))
    end
  else
    os.remove(job.tmp)
    result.path = nil
  end
  result.seconds = fs.clock() - job.started
  return result
end

---Lets go of what the job holds: an extractor not finished (a resumable one keeps its
---work for the next run), the lock on the output, the temporary directory of -o -. Safe
---twice.
function M.close(job)
  if not job then return end
  if job.sink then
    job.sink:close()
    job.sink = nil
  end
  if job.lock then
    job.lock:release()
    job.lock = nil
  end
  if job.scratch then getmetatable(job.scratch).__close(job.scratch) end
end

---Runs fn(...) (the steps after resolve), then closes the job whatever happens; an
---interrupt or deadline is told with what was kept for the next run, and raised again.
function M.guard(job, fn, ...)
  local res = table.pack(pcall(fn, ...))
  M.close(job)
  if res[1] then return table.unpack(res, 2, res.n) end
  error(told(job, res[2]), 0)
end

---Fetches: every step in order (what scripts/fetch.lua does, for the library). opts as
---M.resolve. With unzip and no output the archive is extracted while it downloads and not
---kept (result.path and result.sha256 are nil).
---@return table|nil result {version, path, bytes, sha256, etag, unzipped, entries}
---@return table|nil err
function M.fetch(opts)
  local job, err = M.resolve(opts)
  if not job then return nil, err end
  return M.guard(job, function()
    for _, step in ipairs { M.download, M.verify, M.extract } do
      local ok, serr = step(job)
      if not ok then return nil, serr end
    end
    return M.report(job)
  end)
end

return M
