-- skafos.tasks without a network: results and errors per task, in order, the limit on
-- how many run at once, cooperative waits (http.sleep, coroutine.yield) letting the
-- others run, and the misuses it refuses.
local tasks = require "skafos.tasks"
local http = require "skafos.http"

describe("skafos.tasks", function()
  it("returns each task's results or error in order, and how many failed", function()
    local results, failed = tasks.run {
      function() return "a", 2 end,
      function() error("boom") end,
      function() return nil, "soft failure" end,
      function() error({ code = "NOT_FOUND", message = "no such model" }) end,
      function() end,
    }
    assert.are.equal(3, failed)
    assert.are.equal(5, #results)
    assert.is_true(results[1].ok)
    assert.are.equal("a", results[1].value)
    assert.are.same({ "a", 2, n = 2 }, results[1].values)
    assert.is_false(results[2].ok)
    assert.are.equal("FAILED", results[2].error.code)
    assert.matches("tasks_spec.lua:%d+: boom", tostring(results[2].error))
    assert.are.equal(1, results[2].error.exit)
    assert.is_false(results[3].ok)
    assert.are.equal("soft failure", tostring(results[3].error))
    assert.are.equal("NOT_FOUND", results[4].error.code)
    assert.is_true(results[5].ok)
    assert.are.equal(0, results[5].values.n)
  end)

  it("lets the other tasks run while one sleeps or yields", function()
    if not tasks.concurrent() then return end -- one after the other here, by design
    local log = {}
    tasks.run {
      function() http.sleep(0.2) log[#log + 1] = "slept" end,
      function()
        for i = 1, 3 do log[#log + 1] = "step " .. i coroutine.yield() end
      end,
    }
    assert.are.same({ "step 1", "step 2", "step 3", "slept" }, log)
  end)

  it("runs at most `concurrency` tasks at once, starting them in order", function()
    local log, running, most = {}, 0, 0
    local function job(i)
      return function()
        running = running + 1
        most = math.max(most, running)
        log[#log + 1] = "start " .. i
        http.sleep(0.05)
        running = running - 1
      end
    end
    local list = {}
    for i = 1, 6 do list[i] = job(i) end
    local _, failed = tasks.run(list, { concurrency = 2 })
    assert.are.equal(0, failed)
    assert.are.equal(tasks.concurrent() and 2 or 1, most)
    assert.are.equal("start 1", log[1])
    assert.are.equal("start 6", log[6])
    most = 0
    tasks.run(list, { concurrency = 1 })
    assert.are.equal(1, most)
  end)

  it("calls on_done as each task ends, and raises its error once the others end", function()
    local seen = {}
    tasks.run({ function() return 1 end, function() error("x") end },
      { on_done = function(i, r) seen[i] = r.ok end })
    assert.are.same({ true, false }, seen)
    local ended = false
    local ok, err = pcall(tasks.run, {
      function() return 1 end,
      function() http.sleep(0.05) ended = true end,
    }, { on_done = function(i) if i == 1 then error("stop here", 0) end end })
    assert.is_false(ok)
    assert.are.equal("stop here", err)
    assert.is_true(ended)
  end)

  it("tells a task it is one, so progress bars become lines", function()
    assert.is_false(tasks.running())
    local results = tasks.run { function() return tasks.running() end,
      function() return require("skafos.ui").new({}, { tty = true }).progress_mode end }
    assert.is_true(results[1].value)
    assert.are.equal("plain", results[2].value)
    assert.are.equal("bar", require("skafos.ui").new({}, { tty = true }).progress_mode)
  end)

  it("refuses what it cannot run", function()
    assert.has_error(function() tasks.run { 1 } end, "tasks.run: task 1 is a number, not a function")
    assert.has_error(function() tasks.run({}, { concurrency = 0 }) end,
      "tasks.run: concurrency must be an integer from 1 to 64")
    local results = tasks.run { function() return tasks.run { function() end } end }
    assert.is_false(results[1].ok)
    assert.matches("a task cannot run tasks of its own", tostring(results[1].error))
    assert.are.same({}, (tasks.run {}))
  end)
end)
