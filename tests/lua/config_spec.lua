-- Settings resolution (flag > environment > project config > user config > defaults),
-- token sources and warnings, and path-segment escaping for the API.
local config = require "skafos.config"
local proc = require "proc"

describe("skafos.config", function()
  local dir, cleanup, env, saved_cwd

  before_each(function()
    dir, cleanup = proc.tmpdir()
    env = { XDG_CONFIG_HOME = dir .. "/xdg" }
    saved_cwd = require("skafos.fs").getcwd()
  end)

  after_each(function() cleanup() end)

  local function resolve(flags)
    return config.resolve(flags, { env = function(k) return env[k] end, cwd = dir .. "/project/sub" })
  end

  it("takes flag over environment over project config over user config over defaults", function()
    proc.write(dir .. "/xdg/skafos/config.lua", [[return { org = "user-org", app = "user-app", model = "user-model" }]])
    proc.write(dir .. "/project/.skafos/config.lua", [[return { app = "project-app", model = "project-model" }]])
    os.execute("mkdir -p " .. proc.quote(dir .. "/project/sub"))
    env.SKAFOS_MODEL_NAME = "env-model"
    local s = assert(resolve {})
    assert.are.equal("env-model", s.model)
    assert.are.equal("environment SKAFOS_MODEL_NAME", s.sources.model)
    assert.are.equal("project-app", s.app)
    assert.matches("^project config .*/project/%.skafos/config%.lua$", s.sources.app)
    s = assert(resolve { model = "flag-model" })
    assert.are.equal("flag-model", s.model)
    assert.are.equal("flag --model", s.sources.model)
    assert.are.equal("https://api.skafos.ai/v2", s.api_url)
    assert.are.equal("default (production)", s.sources.api_url)
  end)

  it("selects the staging hosts with --hosts staging and strips trailing slashes", function()
    local s = assert(resolve { hosts = "staging" })
    assert.are.equal("https://api.skafos.wtf/v2", s.api_url)
    assert.are.equal("https://download.skafos.wtf/v2", s.download_url)
    env.SKAFOS_API_URL = "http://127.0.0.1:9/v2/"
    s = assert(resolve {})
    assert.are.equal("http://127.0.0.1:9/v2", s.api_url)
  end)

  it("reads the token from --token-file, warns when others can read it, and rejects an empty one", function()
    local tf = proc.write(dir .. "/token", "  abc123\n")
    os.execute("chmod 644 " .. proc.quote(tf))
    env.SKAFOS_API_TOKEN = "from-env"
    local s = assert(resolve { token_file = tf })
    assert.are.equal("abc123", s.token)
    assert.matches("can be read by everyone %(mode 0644%); run: chmod 600", s.warnings[1])
    os.execute("chmod 640 " .. proc.quote(tf))
    s = assert(resolve { token_file = tf })
    assert.matches("can be read by its group %(mode 0640%)", s.warnings[1])
    os.execute("chmod 600 " .. proc.quote(tf))
    s = assert(resolve { token_file = tf })
    assert.are.same({}, s.warnings)
    proc.write(dir .. "/empty", "\n")
    local none, err = resolve { token_file = dir .. "/empty" }
    assert.is_nil(none)
    assert.matches("is empty", err.message)
    s = assert(resolve {})
    assert.are.equal("from-env", s.token)
  end)

  it("resolves token_file in a config relative to that file", function()
    proc.write(dir .. "/project/.skafos/config.lua", [[return { token_file = "tok" }]])
    proc.write(dir .. "/project/.skafos/tok", "t0k")
    os.execute("mkdir -p " .. proc.quote(dir .. "/project/sub") .. " && chmod 600 " ..
      proc.quote(dir .. "/project/.skafos/tok"))
    local s = assert(resolve {})
    assert.are.equal("t0k", s.token)
    assert.matches("project config", s.sources.token)
    -- "~/" is the home directory
    proc.write(dir .. "/home/.tok", "home-token")
    proc.write(dir .. "/project/.skafos/config.lua", [[return { token_file = "~/.tok" }]])
    env.HOME = dir .. "/home"
    s = assert(resolve {})
    assert.are.equal("home-token", s.token)
  end)

  it("collects hooks, the project's over the user's, and rejects a hook that is not a function", function()
    proc.write(dir .. "/xdg/skafos/config.lua", [[return { before_create = function() return "user" end,
      after_publish = function() return "user" end }]])
    proc.write(dir .. "/project/.skafos/config.lua", [[return { before_create = function() return "project" end }]])
    os.execute("mkdir -p " .. proc.quote(dir .. "/project/sub"))
    local s = assert(resolve {})
    assert.are.equal("project", s.hooks.before_create())
    assert.are.equal("user", s.hooks.after_publish())
    proc.write(dir .. "/project/.skafos/config.lua", [[return { retry = 3 }]])
    local none, err = resolve {}
    assert.is_nil(none)
    assert.matches("'retry' must be a function", err.message)
  end)

  it("reports a broken config file by name", function()
    proc.write(dir .. "/project/.skafos/config.lua", [[return {]])
    os.execute("mkdir -p " .. proc.quote(dir .. "/project/sub"))
    local none, err = resolve {}
    assert.is_nil(none)
    assert.matches("bad config file: .*project/%.skafos/config%.lua", err.message)
  end)

  it("says which setting is missing and how to give it", function()
    local s = assert(resolve {})
    local ok, err = config.require(s, { "token" })
    assert.is_nil(ok)
    assert.are.equal("AUTH", err.code)
    s.token = "x"
    ok, err = config.require(s, { "token", "org" })
    assert.is_nil(ok)
    assert.matches("no org given: pass %-%-org or set SKAFOS_ORG_NAME", err.message)
    assert.are.equal(saved_cwd, require("skafos.fs").getcwd())
  end)
end)

describe("skafos.api", function()
  it("percent-encodes every path segment", function()
    local api = require "skafos.api"
    assert.are.equal("my%20app", api.escape("my app"))
    assert.are.equal("%C3%89quipe", api.escape("Équipe"))
    assert.are.equal("a%2Fb%3F%23%25", api.escape("a/b?#%"))
    assert.are.equal("safe-._~AZ09", api.escape("safe-._~AZ09"))
  end)
end)
