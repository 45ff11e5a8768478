-- Every command's --json output checked against the schema documented in docs/json.md
-- (read from that file, so the documentation and the program cannot drift apart).
local e2e = require "e2e"
local emulator = require "emulator"
local proc = require "proc"

local TOKEN = e2e.TOKEN

-- docs/json.md: "## name" sections, each with a "| field | type | meaning |" table; a
-- section whose text says "An array" documents the elements of a top-level array.
local function schemas()
  local out, current = {}, nil
  for line in assert(io.lines(proc.source_dir .. "/docs/json.md")) do
    local name = line:match("^## (.+)$")
    if name then
      current = { fields = {}, array = false }
      out[name] = current
    elseif current then
      if line:match("^An array") then current.array = true end
      local field, ty = line:match("^| ([%w_.]+) | ([%w?]+) |")
      if field and field ~= "field" then
        current.fields[#current.fields + 1] = { path = field, type = ty:gsub("%?$", ""), optional = ty:sub(-1) == "?" }
      end
    end
  end
  return out
end

-- Records the API sends keep whatever fields it sends; skafos's own documents have exactly
-- the fields documented.
local OPEN = { versions = true, environments = true, ["models create"] = true }

local function type_ok(v, ty)
  if ty == "any" then return true end
  if ty == "integer" then return math.type(v) == "integer" end
  if ty == "number" then return type(v) == "number" end
  if ty == "string" or ty == "boolean" then return type(v) == ty end
  if ty == "object" or ty == "array" then return type(v) == "table" end
  error("unknown type in docs/json.md: " .. ty)
end

local function check_object(name, s, obj, raw)
  assert.is_table(obj, name .. ": not an object")
  local known = {}
  for _, f in ipairs(s.fields) do
    local v, key = obj, nil
    for part in f.path:gmatch("[^.]+") do
      key = part
      if type(v) == "table" then v = v[part] else v = nil end
    end
    known[f.path:match("^[^.]+")] = true
    if v == nil then
      assert.is_true(f.optional, ("%s: field %s is missing"):format(name, f.path))
    else
      assert.is_true(type_ok(v, f.type), ("%s: field %s is not a %s"):format(name, f.path, f.type))
      if f.type == "array" then
        assert.is_truthy(raw:find('"' .. key .. '":[', 1, true), ("%s: %s is not an array"):format(name, f.path))
      end
    end
  end
  if not OPEN[name] then
    for k in pairs(obj) do
      assert.is_true(known[k] ~= nil, ("%s: field %s is not documented in docs/json.md"):format(name, k))
    end
  end
end

describe("json", function()
  local emu, dir, cleanup, S

  setup(function()
    emu = emulator.start { seed = proc.source_dir .. "/tests/e2e/seed.json" }
    S = schemas()
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    dir, cleanup = proc.tmpdir()
  end)

  after_each(function() cleanup() end)

  local function skafos(args, extra_env, stdin)
    return e2e.skafos(emu, dir, args, extra_env, nil, stdin)
  end

  -- runs argv, expects exit `code`, checks stdout against section `name`
  local function check(name, argv, code, extra_env, stdin)
    local r = skafos(argv, extra_env, stdin)
    assert.are.equal(code or 0, r.code, table.concat(argv, " ") .. ": " .. r.stderr)
    assert.are.equal(1, select(2, r.stdout:gsub("\n", "")), name .. ": not one line")
    assert.is_nil(r.stdout:find("\\/", 1, true))
    local s = assert(S[name], "no section '" .. name .. "' in docs/json.md")
    local doc = proc.json(r.stdout)
    if s.array then
      assert.are.equal("[", r.stdout:sub(1, 1), name .. ": not an array")
      assert.is_true(#doc > 0, name .. ": checked on an empty list")
      for _, item in ipairs(doc) do check_object(name, s, item, r.stdout) end
    else
      check_object(name, s, doc, r.stdout)
    end
    return doc
  end

  it("documents every command", function()
    for _, name in ipairs { "error", "publish", "publish --dry-run", "fetch", "versions", "deploy", "environments",
        "summary", "summary --compact", "models create", "config", "login", "logout", "auth status" } do
      assert.is_table(S[name], "docs/json.md has no section " .. name)
    end
  end)

  it("prints what docs/json.md says, for every command", function()
    proc.write(dir .. "/m.bin", ("weights"):rep(100))
    check("publish --dry-run", { "publish", "--json", "--dry-run", "-m", "d", "m.bin" })
    local pub = check("publish", { "publish", "--json", "-m", "first", "m.bin" })
    check("fetch", { "fetch", "--json", "-o", "back.zip" })
    check("fetch", { "fetch", "--json", "--unzip", "out" })
    check("versions", { "versions", "--json" })
    check("deploy", { "deploy", "--json", "--version", tostring(pub.version) })
    check("environments", { "environments", "--json" })
    check("summary", { "summary", "--json" })
    check("models create", { "models", "create", "json-model", "--json" })
    check("config", { "config", "--json" })
    check("auth status", { "auth", "status", "--json" })
    check("login", { "login", "--json" }, 0, nil, TOKEN .. "\n")
    check("logout", { "logout", "--json" })
    check("logout", { "logout", "--json" })
    -- a failure, and a publish whose after_publish hook fails
    check("error", { "versions", "--json" }, 4, { SKAFOS_MODEL_NAME = "nope" })
    check("error", { "fetch", "--json", "--nope" }, 2)
    proc.write(dir .. "/.skafos/config.lua", 'return { after_publish = function() error("down") end }')
    local doc = check("publish", { "publish", "--json", "m.bin" }, 8)
    assert.is_table(doc.hook_error)
  end)
end)
