-- skafos publish FILE...: zip the inputs and upload them as a new model version.
-- Customise by copying this file (skafos scripts dump publish > .skafos/scripts/publish.lua)
-- and editing its pipeline in W.run, or, simpler, by defining hooks in a config file or
-- as fields of the copy's table (hooks of every source run: user config, project config,
-- this file, the call):
--   select_files(files) -> files      compression(file) -> method, level (every file)
--   before_create(plan) (error() to veto)   after_publish(result)   retry(err, attempt) -> delay|nil
local config = require "skafos.config"
local errors = require "skafos.errors"
local publish = require "skafos.publish"
local ui_mod = require "skafos.ui"

local W = {
  description = "Publish files or directories as a new model version",
  epilog = "A single .zip is uploaded as it is, once it passes the checks fetch --unzip makes; anything\n"
    .. "else is zipped deterministically.\n"
    .. "Exit codes: 1 refused by a policy hook, 2 bad input, 3 token, 4 org/app/model not found, 6 upload\n"
    .. "failed (the message names the unfinished model_version_id), 7 a zip that fetch --unzip would\n"
    .. "refuse, 8 published but the after_publish hook failed, 130 interrupted.",
  options = config.with({
    { "files", "Files or directories to publish", args = "*", argname = "FILE" },
    { "-m --description", "Description stored with the version (at most 255 characters)", argname = "TEXT" },
    { "--level", "Compression: auto (store what does not compress), store, or 1-9", default = "auto",
      argname = "LEVEL" },
    { "--dry-run", "Check the inputs and print the plan; send nothing", flag = true },
    { "--allow-empty", "Publish a directory that holds no files", flag = true },
    { "--keep-os-files", "Keep the .DS_Store, ._*, __MACOSX, Thumbs.db and desktop.ini found in directories "
      .. "(left out by default)", flag = true },
  }, config.archive_options, config.options, config.output_options),
}

local function print_plan(ui, plan)
  local inputs = {}
  for i, e in ipairs(plan.entries) do
    inputs[i] = { src = e.src, name = e.name, type = e.type, bytes = e.bytes, files = e.files, method = e.method,
      level = e.level, left_out = e.left_out }
  end
  local left_names = plan.left_out > 0 and plan.left_out_names or nil
  ui:result({ dry_run = true, archive = plan.archive, org = plan.org, app = plan.app, model = plan.model,
    level = tostring(plan.level), description = plan.description, input_bytes = plan.input_bytes,
    files = plan.files, as_is = plan.as_is or false, inputs = inputs, left_out = plan.left_out,
    left_out_names = left_names }, function(out)
    out:write(("Would publish %s to %s/%s/%s (%s, %d file%s, level %s)%s\n"):format(plan.archive, plan.org,
      plan.app, plan.model, ui_mod.bytes(plan.input_bytes), plan.files, plan.files == 1 and "" or "s",
      tostring(plan.level), plan.as_is and ", sent as it is" or ""))
    for _, e in ipairs(plan.entries) do
      out:write(("  %-40s %-9s %-8s %s\n"):format(e.name .. (e.type == "directory" and "/" or ""), e.type,
        e.method .. (e.level and (" " .. e.level) or ""), ui_mod.bytes(e.bytes)))
    end
    if plan.left_out > 0 then
      local more = plan.left_out - #left_names
      out:write(("  left out %d operating-system file%s (--keep-os-files keeps them): %s%s\n"):format(plan.left_out,
        plan.left_out == 1 and "" or "s", table.concat(left_names, ", "),
        more > 0 and (", and %d more"):format(more) or ""))
    end
  end)
end

-- The pipeline: each step is one call of skafos.publish (see lua/skafos/publish.lua), so a
-- copy of this file can add, drop or reorder steps (say, a check between upload and
-- finalize). A step returns its result or nil and an error; `need` turns the error into
-- the command's message and exit code.
local function need(value, err)
  if value == nil then errors.throw(err) end
  return value
end

function W.run(ctx, args)
  local ui = ui_mod.new(args)
  local job = need(publish.resolve {
    flags = args, files = args.files, description = args.description, level = args.level,
    allow_empty = args.allow_empty, keep_os_files = args.keep_os_files,
    workflow_hooks = ctx.workflow,
    progress = function(phase) return ui:progress(phase) end,
    on_retry = ui:on_retry(), on_warning = ui:on_warning(),
  })
  local result = publish.guard(job, function()
    local plan = need(publish.plan_step(job))              -- inputs checked, files walked
    need(publish.policy(job, plan))                        -- before_create hooks may refuse
    if args.dry_run then return print_plan(ui, plan) end
    local archive = need(publish.archive(job, plan))       -- streamed, or a temporary zip
    local record = need(publish.create(job, plan))         -- the version record (E4)
    local put = need(publish.upload(job, record, archive)) -- the bytes to storage (E5)
    local version = need(publish.finalize(job, record))    -- the record finished (E6)
    return publish.report(job, plan, archive, record, put, version) -- after_publish hooks
  end)
  if not result then return end
  ui:result(result, function(out)
    out:write(("Published %s/%s/%s version %s\n"):format(result.org, result.app, result.model,
      tostring(result.version)))
    out:write(("  archive  %s, %s%s\n"):format(result.archive, ui_mod.bytes(result.bytes),
      result.streamed and " (streamed)" or ""))
    out:write(("  sha256   %s\n"):format(tostring(result.sha256)))
    out:write(("  time     %.1fs\n"):format(result.seconds))
  end, tostring(result.version))
  if result.hook_error then
    -- the version is published: say so, then the hook's failure, with an exit code of its own
    ui:warn("version %s is published, but %s", tostring(result.version), result.hook_error.message)
    return errors.EXIT.AFTER_HOOK
  end
end

return W
