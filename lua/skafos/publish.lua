-- Publishing a model version: validate everything locally, plan the archive, let the
-- policy hooks see and veto the plan, build the zip (streamed straight into the upload
-- when every entry is stored, else through a temporary file that never outlives the
-- call), then E4 -> PUT with retries -> E6 with retries.
local errors = require "skafos.errors"
local fs = require "skafos.fs"
local hooks_mod = require "skafos.hooks"
-- skafos.s3 (and with it libcurl) loads on first use: help and --help never need it
local function s3() return require "skafos.s3" end
local session = require "skafos.session"
local tmp = require "skafos.tmp"
local zip = require "skafos.zip"

local M = {}

M.MAX_ARCHIVE = 5 * 1024 * 1024 * 1024 -- one presigned PUT takes at most 5 GiB
M.MAX_DESCRIPTION = 255
-- A zip sent as it is must pass what `fetch --unzip` checks before it extracts: the
-- extractor's defaults (expansion ratio 1000, no symlinks, safe and distinct names, every
-- CRC and size), read front to back as the download is.
M.AS_IS_CHECKS = { max_ratio = 1000, symlinks = "refuse", names = "refuse", stream = true }

local fail = errors.fail

local function basename(path)
  local trimmed = path:gsub("/+$", "")
  if trimmed == "" then return "/" end
  return trimmed:match("([^/]+)$")
end

-- The name an input is stored under: its own name, or, for ".", ".." and the like, the
-- real name of the directory it names ("publish ." inside Foo.mlpackage stores
-- Foo.mlpackage/...).
local function stored_name(path)
  local name = basename(path)
  if name ~= "." and name ~= ".." then return name end
  local real = fs.realpath(path)
  return real and basename(real) or name
end

-- The same entries for the plan and for the archive, so what --dry-run shows (litter
-- left out included) is what is sent.
local function zip_entries(plan)
  local entries = {}
  for i, e in ipairs(plan.entries) do
    entries[i] = { src = e.src, name = e.name, method = e.method, level = e.level, litter = plan.litter }
  end
  return entries
end

---The archive name: always from the model name, `.zip` not doubled.
function M.archive_name(model)
  local name = tostring(model):gsub("[/\\]", "_")
  if name:lower():sub(-4) == ".zip" then return name end
  return name .. ".zip"
end

local function parse_level(level)
  if level == nil or level == "auto" then return "auto" end
  if level == "store" or level == 0 or level == "0" then return "store" end
  local n = math.tointeger(tonumber(level))
  if n and n >= 1 and n <= 9 then return n end
  return nil
end

-- Refuses a zip to be sent as it is when `fetch --unzip` would refuse it, with the
-- verifier's code (INTEGRITY or UNSAFE_ARCHIVE: exit 7) and its message, which names the
-- entry.
local function check_as_is(entry, progress, max_entries)
  local reporter = progress and progress("check")
  local checks = { max_entries = max_entries }
  for k, v in pairs(M.AS_IS_CHECKS) do checks[k] = v end
  checks.progress = reporter and function(done, total) reporter:update(done, total) end
  local ok, err = zip.verify(entry.src, checks)
  if reporter then reporter:finish() end
  if ok then return true end
  if err.code == "INTERRUPTED" then return nil, err end
  return fail(err.code or "INTEGRITY", ("%s cannot be published as it is: %s; nothing was sent (fix the "
    .. "archive, or publish the files it holds instead)"):format(entry.src, tostring(err.message)))
end

---Checks the inputs and builds the plan (a zip sent as it is is read through and checked
---as `fetch --unzip` would check it); makes no request. Operating-system litter found in
---directories (.DS_Store, ._*, __MACOSX/, Thumbs.db, desktop.ini) is left out unless
---keep_os_files; plan.left_out counts it, plan.left_out_names names the first ones.
---@param opts table {files, description, level, progress, keep_os_files}
---@param s table resolved settings
---@param hooks table
---@return table|nil plan, table|nil err
function M.plan(opts, s, hooks)
  local files = opts.files or {}
  if hooks.select_files and #hooks.select_files > 0 then
    local chosen, herr = hooks_mod.chain("select_files", hooks.select_files, files)
    if not chosen then return nil, herr end
    files = chosen
  end
  if #files == 0 then
    return fail("USAGE", "nothing to publish: give at least one file or directory, e.g. skafos publish Model.mlmodel")
  end
  local description = opts.description
  if description ~= nil then
    local len = utf8.len(description) or #description
    if len > M.MAX_DESCRIPTION then
      return fail("USAGE", ("the description is %d characters; the limit is %d"):format(len, M.MAX_DESCRIPTION))
    end
  end
  local level = parse_level(opts.level)
  if not level then
    return fail("USAGE", ("bad --level '%s': use auto, store or 1-9"):format(tostring(opts.level)))
  end
  local keep_os_files = opts.keep_os_files
  if keep_os_files == nil and type(opts.flags) == "table" then keep_os_files = opts.flags.keep_os_files end
  local plan = {
    archive = M.archive_name(s.model), description = description, level = level,
    org = s.org, app = s.app, model = s.model, entries = {}, input_bytes = 0, files = 0,
    litter = keep_os_files and "keep" or "skip",
  }
  local seen = {}
  for _, path in ipairs(files) do
    local st = fs.stat(path)
    if not st then
      if fs.lstat(path) then
        return fail("USAGE", ("%s is a symbolic link to nothing (a broken link)"):format(path))
      end
      return fail("USAGE", ("no such file or directory: %s"):format(path))
    end
    if not fs.access(path, "r") then return fail("USAGE", ("cannot read %s: permission denied"):format(path)) end
    if st.type ~= "directory" and st.type ~= "file" then
      return fail("USAGE", ("%s is a %s, not a file or directory"):format(path, st.type))
    end
    local entry = { src = path, name = stored_name(path), type = st.type }
    if entry.name == "/" then return fail("USAGE", "cannot publish the root directory") end
    if seen[entry.name] then
      return fail("USAGE", ("two inputs would both be stored as '%s' (%s and %s); rename one")
        :format(entry.name, seen[entry.name], path))
    end
    seen[entry.name] = path
    plan.entries[#plan.entries + 1] = entry
  end
  -- walked and checked exactly as the archive will be made: links inside an input are
  -- stored as what they point to when that lies inside it, refused when it lies outside,
  -- broken or looping; unreadable files and names that cannot be stored are refused.
  -- The compression hooks see every file (its name in the archive, size, type); what
  -- they decide is kept in plan.decisions for the archive step, so they run once.
  local default_method = level == "store" and "store" or (level == "auto" and "auto" or "deflate")
  for _, entry in ipairs(plan.entries) do
    entry.method, entry.level = default_method, type(level) == "number" and level or nil
  end
  local compression = hooks.compression or {}
  plan.decisions, plan.all_stored = {}, #compression > 0 or default_method == "store"
  local herr
  local each = #compression > 0 and function(file)
    if herr then return end
    local method, lvl = nil, nil
    for _, h in ipairs(compression) do
      local ok, m, l = hooks_mod.call("compression", h.fn, file)
      if not ok then herr = m return end
      if m ~= nil then
        if m ~= "store" and m ~= "deflate" and m ~= "auto" then
          herr = errors.new("USAGE", ("the compression hook (%s) returned '%s' for %s: use store, deflate or "
            .. "auto"):format(hooks_mod.where(h.fn), tostring(m), file.name))
          return
        end
        method, lvl = m, l
      end
    end
    if method then plan.decisions[file.name] = { method, lvl } end
    if (method or file.method) ~= "store" and file.bytes > 0 then plan.all_stored = false end
    return method, lvl
  end or nil
  local walked, werr = zip.plan(zip_entries(plan), { each = each })
  if herr then return nil, herr end
  if not walked then
    return fail(werr.code == "NOMEM" and "NOMEM" or "USAGE", ("cannot publish: %s"):format(tostring(werr.message)))
  end
  plan.left_out, plan.left_out_names = walked.left_out, walked.left_out_names
  for i, entry in ipairs(plan.entries) do
    entry.bytes, entry.files = walked.inputs[i].bytes, walked.inputs[i].files
    entry.left_out = walked.inputs[i].left_out
    if entry.files == 0 and not opts.allow_empty then
      if entry.left_out > 0 then
        return fail("USAGE", ("nothing to publish in %s: the directory holds no files besides %d operating-system "
          .. "file%s, left out (pass --keep-os-files to keep them, or --allow-empty to publish it anyway)")
          :format(entry.src, entry.left_out, entry.left_out == 1 and "" or "s"))
      end
      return fail("USAGE", ("nothing to publish in %s: the directory holds no files (pass --allow-empty to "
        .. "publish it anyway)"):format(entry.src))
    end
    plan.input_bytes = plan.input_bytes + entry.bytes
    plan.files = plan.files + entry.files
    local decided = entry.type == "file" and plan.decisions[entry.name]
    if decided then entry.method, entry.level = decided[1], decided[2] end
  end
  ---Calls fn({name, src, bytes, type}) for every file the archive will hold, in order.
  function plan.each_file(fn)
    local _, err = zip.plan(zip_entries(plan), { each = function(file)
      fn { name = file.name, src = file.src, bytes = file.bytes, type = file.type }
    end })
    return err == nil, err
  end
  -- a single input that already is a zip goes as it is (a file zip.list cannot read is
  -- not one, and is zipped like any other file)
  if #plan.entries == 1 and plan.entries[1].type == "file" and plan.entries[1].src:lower():match("%.zip$") then
    -- (one with more entries than the limit is a zip too, refused by the checks below)
    local listing, lerr = zip.list(plan.entries[1].src, { max_entries = s.max_entries })
    if listing or lerr.code == "UNSAFE_ARCHIVE" then plan.as_is = true end
  end
  if (plan.as_is or plan.all_stored) and plan.input_bytes > M.MAX_ARCHIVE then
    return fail("USAGE", ("the archive would be %s (%d bytes); one upload takes at most 5 GiB")
      :format(require("skafos.ui").bytes(plan.input_bytes), plan.input_bytes))
  end
  if plan.as_is then
    local ok, err = check_as_is(plan.entries[1], opts.progress, s.max_entries)
    if not ok then return nil, err end
  end
  return plan
end

-- What an unfinished record means and what to do about it.
local UNFINISHED = "model version record %s was left unfinished: it is never listed or served; publish " ..
  "again to make a complete version"

-- The steps below are what scripts/publish.lua calls, in order; a copy of it (skafos
-- scripts dump publish) may add, drop or reorder them. Each returns its result, or nil
-- and an error. A job carries what they share: the session, the settings, the composed
-- hooks, the options, and job.state (the record and version so far, for messages).

---Step 1, resolve: settings, the API client, the hooks of every source.
---@param opts table {flags/settings, files, description, level, dry_run, allow_empty, keep_os_files,
---  workflow_hooks, hooks, progress, on_retry, on_warning}
---@return table|nil job, table|nil err
function M.resolve(opts)
  local sess, serr = session.open { flags = opts.flags, settings = opts.settings, workflow_hooks = opts.workflow_hooks,
    hooks = opts.hooks, on_retry = opts.on_retry, on_warning = opts.on_warning }
  if not sess then return nil, serr end
  return {
    opts = opts, sess = sess, settings = sess.settings, hooks = sess.hooks, client = sess.client,
    state = {}, temp = tmp.holder(), started = fs.clock(),
  }
end

---Step 2, plan: the inputs checked and walked (see M.plan); no request.
function M.plan_step(job)
  return M.plan(job.opts, job.settings, job.hooks)
end

---Step 3, policy: every before_create hook, in order; the first refusal stops the publish.
function M.policy(job, plan)
  local ok, err = hooks_mod.run("before_create", job.hooks.before_create, plan)
  if ok then return true end
  if err.code == "VETO" then
    err.message = ("publish refused by policy (before_create, %s): %s"):format(err.where, err.message)
  end
  return nil, err
end

---Step 4, archive: confirms org, app, model and token with one request, then makes the
---archive: streamed when every entry is stored, else in a temporary directory the job
---owns (removed by M.close). Returns {source, size, streamed, summary}.
function M.archive(job, plan)
  local opts = job.opts
  -- one cheap request before minutes of compression
  local _, verr = job.client:versions()
  if verr then return nil, verr end
  local archive = {}
  if plan.as_is then
    archive.source, archive.size = plan.entries[1].src, plan.input_bytes
  else
    local entries = zip_entries(plan)
    local decided = plan.decisions
    local zopts = { level = plan.level, methods = false, each = next(decided) and function(file)
      local d = decided[file.name]
      if d then return d[1], d[2] end
    end or nil }
    local size, reader = zip.stream(entries, zopts)
    if size then
      archive.source, archive.size, archive.streamed = reader, size, true
    else
      local dir, terr = tmp.make("publish", job.temp)
      if not dir then return nil, terr end
      local path = dir .. "/" .. plan.archive
      local progress = opts.progress and opts.progress("zip")
      zopts.progress = progress and function(done, total) progress:update(done, total) end
      local summary, zerr = zip.create(path, entries, zopts)
      if progress then progress:finish() end
      if not summary then return nil, zerr end
      archive.source, archive.size, archive.summary = path, fs.stat(path).size, summary
    end
  end
  if archive.size > M.MAX_ARCHIVE then
    return fail("USAGE", ("the archive is %s (%d bytes); one upload takes at most 5 GiB")
      :format(require("skafos.ui").bytes(archive.size), archive.size))
  end
  return archive
end

---Step 5, create: the version record (E4; repeated only when it never reached the server).
---Returns {model_version_id, filepath, presigned_url}.
function M.create(job, plan)
  local created, cerr = job.client:create_version(plan.archive, plan.description)
  if not created then
    if cerr.model_version_id then
      cerr.message = ("%s; " .. UNFINISHED):format(tostring(cerr.message), tostring(cerr.model_version_id))
    end
    return nil, cerr
  end
  job.state.id = created.model_version_id
  return created
end

-- An error of a step after the record exists, naming the record left unfinished.
local function unfinished(err, step, id)
  local e = {}
  for k, v in pairs(err) do e[k] = v end
  e.model_version_id = id
  e.message = ("%s failed: %s; " .. UNFINISHED):format(step, tostring(err.message), tostring(id))
  -- a failure of the transfer itself is a network or storage failure (6); one of
  -- integrity (7), the token (3) or an interrupt keeps its own code
  local own = errors.exit_code(e.code)
  e.exit = own ~= errors.EXIT.FAILED and own or errors.EXIT.NETWORK
  return nil, setmetatable(e, { __tostring = function(t) return t.message end })
end

---Step 6, upload: the archive to storage (E5), retried; the ETag checked against its MD5.
function M.upload(job, record, archive)
  local s = job.settings
  local progress = job.opts.progress and job.opts.progress("upload")
  -- a path is reopened by each attempt, a stream is reset by s3.put
  local put, err = job.sess.retry.call(function()
    return s3().put(record.presigned_url, archive.source, {
      ca_file = s.ca_file,
      low_speed = { s.speed_limit, s.speed_time },
      progress = progress and function(done, total) progress:update(done, total) end,
    })
  end, { what = "upload" })
  if progress then progress:finish() end
  if not put then return unfinished(err, "upload", record.model_version_id) end
  return put
end

---Step 7, finalize: the record finished (E6), retried; returns the API's version record.
function M.finalize(job, record)
  local id = record.model_version_id
  local version, err = job.client:finalize(id, record.filepath)
  if not version then return unfinished(err, "finalize", id) end
  if math.type(version.version) ~= "integer" then
    -- never "version nil": an answer without the number cannot be told from a failure
    return fail("SERVER", ("finalizing model version record %s got an answer without a version number "
      .. "(it holds: %s); the record may not be finished: run 'skafos versions' to see whether it is "
      .. "listed, and publish again if it is not"):format(tostring(id),
      require("skafos.json").encode(version):sub(1, 200)), { model_version_id = id, exit = errors.EXIT.NETWORK })
  end
  job.state.version = version.version
  return version
end

---Step 8, report: the result, and every after_publish hook run on it. The version exists
---whatever they do: their failures are given beside the result (result.hook_error).
function M.report(job, plan, archive, record, put, version)
  local s = job.settings
  local result = {
    version = version.version, model_version_id = record.model_version_id, filepath = record.filepath,
    archive = plan.archive, bytes = put.bytes or archive.size, md5 = put.md5, sha256 = put.sha256,
    etag = put.etag, seconds = fs.clock() - job.started, streamed = archive.streamed or false,
    as_is = plan.as_is or false, description = plan.description, org = s.org, app = s.app, model = s.model,
  }
  local errs = hooks_mod.run_all("after_publish", job.hooks.after_publish, result)
  for _, herr in ipairs(errs) do
    if herr.code == "INTERRUPTED" then error(herr, 0) end
  end
  local herr = errs[1]
  if herr then
    if herr.code == "VETO" then
      herr.message = ("the after_publish hook (%s) failed: %s"):format(herr.where, herr.message)
    end
    result.hook_error = { code = herr.code, message = herr.message, hook = "after_publish" }
  end
  return result
end

---Removes what the job made (its temporary archive); safe twice.
function M.close(job)
  if job and job.temp then getmetatable(job.temp).__close(job.temp) end
end

---Runs fn(...) (the steps), removing the job's temporaries whatever happens; an interrupt
---or deadline is told with where things stand (nothing sent, a record left unfinished, or
---a version published all the same) and raised again.
function M.guard(job, fn, ...)
  local res = table.pack(pcall(fn, ...))
  M.close(job)
  if res[1] then return table.unpack(res, 2, res.n) end
  local e, state = res[2], job.state
  if errors.is(e) and (e.code == "INTERRUPTED" or e.code == "DEADLINE") and not e.version then
    local base = tostring(e.message)
    if state.version then
      e.version = state.version
      e.message = ("%s; version %s was published all the same"):format(base, tostring(state.version))
    elseif state.id then
      e.model_version_id = state.id
      e.message = base .. "; " .. UNFINISHED:format(tostring(state.id))
    else
      e.message = base .. " before anything was sent; nothing was published"
    end
  end
  error(e, 0)
end

---Publishes: every step in order (what scripts/publish.lua does, for the library). opts as
---M.resolve. Returns the result (with dry_run, the plan), or nil, err (err.model_version_id
---is set when a record was left unfinished).
function M.publish(opts)
  local job, err = M.resolve(opts)
  if not job then return nil, err end
  return M.guard(job, function()
    local plan, e = M.plan_step(job)
    if not plan then return nil, e end
    local ok, perr = M.policy(job, plan)
    if not ok then return nil, perr end
    if opts.dry_run then
      plan.dry_run = true
      return plan
    end
    local archive, aerr = M.archive(job, plan)
    if not archive then return nil, aerr end
    local record, cerr = M.create(job, plan)
    if not record then return nil, cerr end
    local put, uerr = M.upload(job, record, archive)
    if not put then return nil, uerr end
    local version, ferr = M.finalize(job, record)
    if not version then return nil, ferr end
    return M.report(job, plan, archive, record, put, version)
  end)
end

return M
