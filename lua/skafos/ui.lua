-- What the user sees: messages and progress on stderr, results on stdout (a human table
-- or, with --json, one JSON document). Workflows create one with ui.new(args).
local core = require "skafos.core"
local fs = require "skafos.fs"
local json = require "skafos.json"

local M = {}

local function retry_defaults() return require("skafos.retry").defaults end

local UI = {}
UI.__index = UI

---Human-readable byte count: 1536 -> "1.5 KiB".
---@param n number
---@return string
function M.bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  if i == 1 then return ("%d B"):format(math.floor(n)) end
  return ("%.1f %s"):format(n, units[i])
end

---"m:ss" or "h:mm:ss".
function M.duration(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
  return ("%d:%02d"):format(s // 60, s % 60)
end

---@param args table parsed options (json, quiet, progress)
---@param opts? {out?: file*, err?: file*, tty?: boolean}
function M.new(args, opts)
  opts = opts or {}
  args = args or {}
  local tty = opts.tty
  if tty == nil then tty = fs.isatty(2) end
  local mode = args.progress or (tty and "bar" or "plain")
  -- Bars of several tasks (skafos.tasks) would redraw one line over each other: inside a
  -- task they are plain lines. The module is loaded once a task can run.
  local tasks = package.loaded["skafos.tasks"]
  if mode == "bar" and tasks and tasks.running() then mode = "plain" end
  if args.quiet then mode = "none" end
  return setmetatable({
    json = args.json or false,
    quiet = args.quiet or false,
    progress_mode = mode,
    out = opts.out or io.stdout,
    err = opts.err or io.stderr,
  }, UI)
end

-- What is printed may quote a server (a description, an error), which could echo the
-- token: every write goes through core.redact.
local Redacting = {}
Redacting.__index = Redacting

function Redacting:write(...)
  for i = 1, select("#", ...) do self.file:write(core.redact(tostring((select(i, ...))))) end
  return self
end

function Redacting:flush() self.file:flush() return self end

local function redacting(file)
  return setmetatable({ file = file }, Redacting)
end

---A message on stderr, unless --quiet (a progress bar is cleared first).
function UI:info(fmt, ...)
  if self.quiet then return end
  self:clear_bar()
  self.err:write(core.redact(fmt:format(...)), "\n")
end

---A warning on stderr, always.
function UI:warn(fmt, ...)
  self:clear_bar()
  self.err:write("skafos: warning: ", core.redact(fmt:format(...)), "\n")
end

---A warning printer for the library's `on_warning(message)`.
function UI:on_warning()
  return function(msg) self:warn("%s", msg) end
end

---A retry announcer for the library's `on_retry(err, attempt, delay)`.
function UI:on_retry()
  return function(e, attempt, delay)
    self:info("retrying %s in %.1fs (attempt %d of %d): %s", e.what or "request", delay, attempt + 1,
      e.max_attempts or retry_defaults().max_attempts, tostring(e.message))
  end
end

---Prints a result: `doc` as JSON with --json; with --quiet only `essential` (a string,
---or a function writing to out: the one thing a script wants, e.g. the version number);
---else what `human(out)` writes.
function UI:result(doc, human, essential)
  self:clear_bar()
  core.set_result(doc) -- what a C host reads back (skafos_push_result)
  if self.json then
    self.out:write(core.redact(json.encode(doc)), "\n")
  elseif self.quiet and essential ~= nil then
    if type(essential) == "function" then
      essential(redacting(self.out))
    else
      self.out:write(core.redact(tostring(essential)), "\n")
    end
  else
    human(redacting(self.out))
  end
  self.out:flush()
end

---Prints rows as an aligned table with a header.
---@param headers string[]
---@param rows string[][]
function M.table(out, headers, rows)
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #headers do widths[i] = math.max(widths[i], utf8.len(tostring(r[i] or "")) or #tostring(r[i])) end
  end
  local function line(cells)
    local parts = {}
    for i = 1, #headers do
      local c = tostring(cells[i] or "")
      parts[i] = c .. (i < #headers and (" "):rep(widths[i] - (utf8.len(c) or #c)) or "")
    end
    out:write(table.concat(parts, "  "), "\n")
  end
  line(headers)
  for _, r in ipairs(rows) do line(r) end
end

M.PLAIN_EVERY = 10  -- plain mode: a line per 10% of the total, or per this many seconds
M.BAR_EVERY = 0.1   -- bar mode: at most this often

-- Clears a bar drawn on stderr's current line (before a message, or at the end).
function UI:clear_bar()
  if self.bar_shown then
    self.err:write("\r\27[K")
    self.err:flush()
    self.bar_shown = false
    core.status_line(false)
  end
end

---A progress reporter for one phase ("upload", "download", "zip", "check"): a bar on a
---terminal, sized to its width and redrawn in place; plain lines otherwise, at most one per
---10% or per 10 s and none while nothing moves; nothing with --progress=none or --quiet.
---@return {update: fun(self, done: integer, total: integer), finish: fun(self)}
function UI:progress(label)
  local mode, err = self.progress_mode, self.err
  local start = fs.clock()
  local last_print, last_done, last_tenth = 0, 0, 0
  local p = {}
  local ui = self
  local function text(done, total, now)
    local elapsed = math.max(now - start, 1e-6)
    local rate = done / elapsed
    local pct = total and total > 0 and done / total or nil
    local eta = pct and rate > 0 and (total - done) / rate or nil
    return ("%s %s%s, %s/s%s"):format(label,
      pct and ("%3d%% "):format(math.floor(pct * 100)) or "",
      total and total > 0 and (M.bytes(done) .. " of " .. M.bytes(total)) or M.bytes(done),
      M.bytes(rate), eta and (" ETA " .. M.duration(eta)) or ""), pct
  end
  function p.update(_, done, total)
    if mode == "none" then return end
    local now = fs.clock()
    if mode == "bar" then
      if now - last_print < M.BAR_EVERY and done ~= total then return end
      last_print = now
      local line, pct = text(done, total, now)
      local width = fs.term_width(2) or tonumber(os.getenv("COLUMNS") or "") or 80
      -- "[####....] text", cut to the width so the line never wraps
      local bar = math.max(0, math.min(24, width - #line - 4))
      local shown = line
      if bar >= 8 then
        local fill = pct and math.floor(pct * bar) or 0
        shown = "[" .. ("#"):rep(fill) .. ("."):rep(bar - fill) .. "] " .. line
      end
      if #shown > width - 1 then shown = shown:sub(1, width - 1) end
      err:write("\r\27[K", shown)
      err:flush()
      ui.bar_shown = true
      core.status_line(true)
      return
    end
    -- plain: a new tenth of the total, or 10 s with something moving since the last line
    local tenth = total and total > 0 and math.floor(done * 10 / total) or nil
    local due = (tenth and tenth > last_tenth) or
      (now - (last_print > 0 and last_print or start) >= M.PLAIN_EVERY and done > last_done)
    if not due then return end
    last_print, last_done = now, done
    if tenth then last_tenth = tenth end
    err:write((text(done, total, now)), "\n")
    err:flush()
  end
  function p.finish()
    ui:clear_bar()
  end
  return p
end

return M
