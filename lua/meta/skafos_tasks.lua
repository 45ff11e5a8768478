---@meta skafos.tasks
-- Editor stub for skafos.tasks (core/ltasks.c, core/tasks.c): several functions at once,
-- each in its own coroutine, their transfers (skafos.fetch, skafos.publish, skafos.s3,
-- skafos.http) sharing one libcurl multi handle on the calling thread.

---@class skafos.tasks
local tasks = {}

---@class skafos.tasks.Result
---@field ok boolean                 false when the task raised, or returned nil (or false) and an error
---@field value? any                 its first result
---@field values? {n: integer}       all its results (as table.pack makes them)
---@field error? skafos.Error        what it raised or returned, as an error table {code, message, exit};
---                                  a raised string or other value becomes code "FAILED"

---@class skafos.tasks.Options
---@field concurrency? integer       at most this many run at once, 1 to 64; default 4
---@field on_done? fun(i: integer, result: skafos.tasks.Result)  called on the caller's side as each
---                                  task ends (print a line per task here); an error in it stops the
---                                  start of further tasks and is raised once the running ones end

---Runs every function of `fns`, at most `opts.concurrency` at once, and returns their results
---in the order given, and how many failed. A failing task never stops the others. A task
---waiting for the network (or in skafos.http.sleep, or at a coroutine.yield of its own) lets
---the others run; pure Lua code runs one task at a time. At an interrupt (Ctrl-C, SIGTERM)
---every running task's transfer stops with INTERRUPTED, no further task starts, and the
---interrupt is raised once they have all ended (exit 130 or 143 from `skafos run`). A task
---cannot call tasks.run itself. Where the system has no ucontext (musl), tasks run one after
---the other, with the same results.
---@param fns (fun(): ...)[]
---@param opts? skafos.tasks.Options
---@return skafos.tasks.Result[] results, integer failed
function tasks.run(fns, opts) end

---Whether tasks really run at once here (false without ucontext: one after the other).
---@return boolean
function tasks.concurrent() end

---Whether the caller runs inside a task (the command line's progress bars are then plain
---lines, since bars drawn in place by several tasks would overwrite each other).
---@return boolean
function tasks.running() end

return tasks
