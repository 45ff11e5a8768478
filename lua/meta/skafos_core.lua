---@meta skafos.core
-- Editor stub for skafos.core (core/runtime.c): what the Lua side of the runtime needs
-- from the host.

---@class skafos.core
---@field version string
local core = {}

---@return {skafos: string, lua: string, curl: string, zlib: string} curl: the version built against
function core.versions() end

---The source of a file compiled into the binary ("scripts/publish.lua"), or nil.
---@param path string
---@return string|nil
function core.embedded(path) end

---Embedded paths starting with prefix, sorted.
---@param prefix? string
---@return string[]
function core.embedded_list(prefix) end

---The chunk of a file compiled into the binary, loaded from the bytecode made at build
---time (from the source under another Lua release); nil if there is no such file.
---@param path string
---@return function|nil chunk
---@return string|nil err
function core.load_embedded(path) end

---The directory of the running executable.
---@return string|nil
function core.exe_dir() end

---The installed share/skafos directory of this copy of the runtime: beside the library or
---Lua module it was loaded from, or relative to the skafos executable; nil when there is none
---(a build tree, a LuaRocks tree).
---@return string|nil
function core.share_dir() end

---The exit code for an error code ("NOT_FOUND" -> 4; unknown -> 1).
---@param code string
---@return integer
function core.exit_code(code) end

---@param level integer
function core.set_verbose(level) end

---@param level integer
function core.set_trace(level) end

return core
