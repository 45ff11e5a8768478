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
local function check_as_is(entry, progress)
  local reporter = progress and progress("check")
  local checks = {}
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
  if hooks.select_files then
    local ok, chosen = hooks_mod.call("select_files", hooks.select_files, files)
    if not ok then return nil, chosen end
    files = chosen or files
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
  -- broken or looping; unreadable files and names that cannot be stored are refused
  local walked, werr = zip.plan(zip_entries(plan))
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
    entry.method = level == "store" and "store" or (level == "auto" and "auto" or "deflate")
    entry.level = type(level) == "number" and level or nil
    if hooks.compression then
      local ok, method, lvl = hooks_mod.call("compression", hooks.compression, entry)
      if not ok then return nil, method end
      if method ~= nil then
        if method ~= "store" and method ~= "deflate" and method ~= "auto" then
          return fail("USAGE", ("compression hook returned '%s' for %s: use store, deflate or auto")
            :format(tostring(method), entry.src))
        end
        entry.method, entry.level = method, lvl or entry.level
      end
    end
    plan.input_bytes = plan.input_bytes + entry.bytes
    plan.files = plan.files + entry.files
  end
  -- a single input that already is a zip goes as it is (a file zip.list cannot read is
  -- not one, and is zipped like any other file)
  if #plan.entries == 1 and plan.entries[1].type == "file" and plan.entries[1].src:lower():match("%.zip$") then
    local listing = zip.list(plan.entries[1].src)
    if listing then plan.as_is = true end
  end
  local all_stored = true
  for _, e in ipairs(plan.entries) do
    if e.method ~= "store" then all_stored = false end
  end
  if (plan.as_is or all_stored) and plan.input_bytes > M.MAX_ARCHIVE then
    return fail("USAGE", ("the archive would be %s (%d bytes); one upload takes at most 5 GiB")
      :format(require("skafos.ui").bytes(plan.input_bytes), plan.input_bytes))
  end
  if plan.as_is then
    local ok, err = check_as_is(plan.entries[1], opts.progress)
    if not ok then return nil, err end
  end
  return plan
end

local publish

-- What an unfinished record means and what to do about it.
local UNFINISHED = "model version record %s was left unfinished: it is never listed or served; publish " ..
  "again to make a complete version"

---Publishes. opts: files, description, level, dry_run, allow_empty, flags/settings, hooks, progress
---(fun(phase) -> reporter), on_retry, on_warning. Returns a result table, or nil, err
---(err.model_version_id is set when a record was left unfinished).
function M.publish(opts)
  -- an interrupt raises from inside; it is caught here only to say where things stand
  local state = {}
  local res = table.pack(pcall(publish, opts, state))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
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

function publish(opts, state)
  local sess, serr = session.open { flags = opts.flags, settings = opts.settings, hooks = opts.hooks,
    on_retry = opts.on_retry, on_warning = opts.on_warning }
  if not sess then return nil, serr end
  local s, hooks, client = sess.settings, sess.hooks, sess.client
  local plan, perr = M.plan(opts, s, hooks)
  if not plan then return nil, perr end
  if hooks.before_create then
    local ok, err = hooks_mod.call("before_create", hooks.before_create, plan)
    if not ok then
      if err.code == "VETO" then
        err.message = ("publish refused by policy (before_create, %s): %s"):format(err.where, err.message)
      end
      return nil, err
    end
  end
  if opts.dry_run then
    plan.dry_run = true
    return plan
  end
  -- one cheap request confirms the token and that org, app and model exist, before
  -- minutes of compression
  local _, verr = client:versions()
  if verr then return nil, verr end

  local started = fs.clock()
  local temp <close> = tmp.holder()
  local source, size, reader
  local zip_progress = opts.progress and opts.progress("zip")
  if plan.as_is then
    source, size = plan.entries[1].src, plan.input_bytes
  else
    local entries = zip_entries(plan)
    local zopts = { level = plan.level }
    size, reader = zip.stream(entries, zopts)
    if size then
      source = reader
      plan.streamed = true
    else
      local dir, terr = tmp.make("publish", temp)
      if not dir then return nil, terr end
      local path = dir .. "/" .. plan.archive
      zopts.progress = zip_progress and function(done, total) zip_progress:update(done, total) end
      local summary, zerr = zip.create(path, entries, zopts)
      if zip_progress then zip_progress:finish() end
      if not summary then return nil, zerr end
      local st = fs.stat(path)
      source, size = path, st.size
      plan.summary = summary
    end
  end
  if size > M.MAX_ARCHIVE then
    return fail("USAGE", ("the archive is %s (%d bytes); one upload takes at most 5 GiB")
      :format(require("skafos.ui").bytes(size), size))
  end
  plan.archive_bytes = size

  local created, cerr = client:create_version(plan.archive, plan.description)
  if not created then
    if cerr.model_version_id then
      cerr.message = ("%s; " .. UNFINISHED):format(tostring(cerr.message), tostring(cerr.model_version_id))
    end
    return nil, cerr
  end
  local id = created.model_version_id
  state.id = id

  local function unfinished(err, step)
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

  local put_progress = opts.progress and opts.progress("upload")
  -- a path is reopened by each attempt, a stream is reset by s3.put
  local put, puterr = sess.retry.call(function()
    return s3().put(created.presigned_url, source, {
      ca_file = sess.settings.ca_file,
      low_speed = { sess.settings.speed_limit, sess.settings.speed_time },
      progress = put_progress and function(done, total) put_progress:update(done, total) end,
    })
  end, { what = "upload" })
  if put_progress then put_progress:finish() end
  if not put then return unfinished(puterr, "upload") end

  local version, ferr = client:finalize(id, created.filepath)
  if not version then return unfinished(ferr, "finalize") end
  if math.type(version.version) ~= "integer" then
    -- never "version nil": an answer without the number cannot be told from a failure
    return fail("SERVER", ("finalizing model version record %s got an answer without a version number "
      .. "(it holds: %s); the record may not be finished: run 'skafos versions' to see whether it is "
      .. "listed, and publish again if it is not"):format(tostring(id),
      require("skafos.json").encode(version):sub(1, 200)), { model_version_id = id, exit = errors.EXIT.NETWORK })
  end
  state.version = version.version

  local result = {
    version = version.version, model_version_id = id, filepath = created.filepath,
    archive = plan.archive, bytes = put.bytes or size, md5 = put.md5, sha256 = put.sha256, etag = put.etag,
    seconds = fs.clock() - started, streamed = plan.streamed or false, as_is = plan.as_is or false,
    description = plan.description, org = s.org, app = s.app, model = s.model,
  }
  if hooks.after_publish then
    -- the version exists whatever the hook does: a failure is reported beside the result
    local ok, herr = hooks_mod.call("after_publish", hooks.after_publish, result)
    if not ok then
      if herr.code == "INTERRUPTED" then
        herr.message = ("interrupted in the after_publish hook; version %s was published")
          :format(tostring(result.version))
        herr.version = result.version
        return nil, herr
      end
      if herr.code == "VETO" then
        herr.message = ("the after_publish hook (%s) failed: %s"):format(herr.where, herr.message)
      end
      result.hook_error = { code = herr.code, message = herr.message, hook = "after_publish" }
    end
  end
  return result
end

return M
