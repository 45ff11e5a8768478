-- skafos fetch: download a model version (latest by default), verify it, optionally unzip
-- (with --unzip alone, extracting while downloading and keeping no archive).
-- Customise by copying this file (skafos scripts dump fetch > .skafos/scripts/fetch.lua)
-- and editing its pipeline in W.run: add a step (say, a check of the files between verify
-- and extract), drop one or reorder them.
local config = require "skafos.config"
local errors = require "skafos.errors"
local fetch = require "skafos.fetch"
local ui_mod = require "skafos.ui"

local W = {
  description = "Download a model version (latest by default), verify it and optionally unzip it",
  epilog = "With --unzip and no -o the archive is extracted while it downloads and not kept on disk; "
    .. "give -o as well to keep it. An interrupted fetch keeps what it has (<output>.download.part, "
    .. "or .<dir>.skafos-partial beside the --unzip directory); the next run goes on from there.",
  options = config.with({
    { "--version", "Version number or latest", default = "latest", argname = "N" },
    { "-o --output", "Where to write the archive (default ./<model>.zip; - for standard output; with "
      .. "--unzip, none is kept unless -o is given)", argname = "PATH" },
    { "--unzip", "Extract into DIR (default ./<model>/), while downloading when -o is not given",
      args = "?", argname = "DIR" },
    { "-f --force", "Replace an existing archive or directory", flag = true },
    { "--connections", "Download the archive over up to N connections at once, each asking for a range "
      .. "of it (default 8; 1 = a single connection; --unzip extracts them in order); config connections",
      type = "integer", argname = "N" },
  }, config.archive_options, config.options, config.output_options),
}

-- The pipeline: each step is one call of skafos.fetch (see lua/skafos/fetch.lua) on the
-- job resolve returns, the state they share. A step returns its result or nil and an
-- error; `need` turns the error into the command's message and exit code. With --unzip
-- and no -o the archive is extracted while it downloads: download feeds the extractor,
-- verify finishes it (the tree goes into place) and extract only confirms it.
local function need(value, err)
  if value == nil then errors.throw(err) end
  return value
end

function W.run(_, args)
  local to_stdout = args.output == "-"
  if to_stdout and args.json then
    errors.raise("USAGE", "-o - writes the archive to standard output, where --json would go too: drop one")
  end
  -- with the archive on standard output, what skafos says goes to standard error
  local ui = ui_mod.new(args, to_stdout and { out = io.stderr } or nil)
  local job = need(fetch.resolve {                         -- the version, the paths, the lock
    flags = args, version = args.version, output = args.output,
    unzip = args.unzip and (args.unzip[1] or true) or nil, force = args.force,
    progress = function(phase) return ui:progress(phase) end,
    on_retry = ui:on_retry(), on_warning = ui:on_warning(),
  })
  local result = fetch.guard(job, function()
    need(fetch.download(job))       -- E8, then the bytes: a part file, an extractor, or both
    need(fetch.verify(job))         -- every CRC and the central directory (a streamed tree goes in place)
    need(fetch.extract(job))        -- --unzip: the tree put in place, unless it was streamed
    return need(fetch.report(job))  -- the archive put in place; the result
  end)
  ui:result(result, function(out)
    out:write(("Fetched %s/%s/%s version %s %s (%s)\n"):format(result.org, result.app, result.model,
      tostring(result.version), result.path and ("to " .. result.path) or "without keeping the archive",
      ui_mod.bytes(result.bytes or 0)))
    if result.unzipped then out:write(("  unzipped into %s\n"):format(result.unzipped)) end
    if result.sha256 then out:write(("  sha256   %s\n"):format(result.sha256)) end
  end, not to_stdout and (result.path or result.unzipped) or nil)
end

return W
