---@meta skafos.fs
-- Editor stub for the native module skafos.fs (core/lfs.c). Failures return nil and an
-- error table {code = "NOT_FOUND"|"ACCESS"|"EXISTS"|"IO", message}.

---@class skafos.fs
local fs = {}

---@class skafos.Stat
---@field type "file"|"directory"|"link"|"fifo"|"socket"|"device"|"other"
---@field size integer
---@field mode integer permission bits
---@field mtime integer
---@field uid integer
---@field dev integer
---@field ino integer
---@field nlink integer

---@param path string
---@return skafos.Stat|nil, table|nil
function fs.stat(path) end

---Like stat, without following a final symlink.
---@param path string
---@return skafos.Stat|nil, table|nil
function fs.lstat(path) end

---Sorted entry names, without "." and "..".
---@param path string
---@return string[]|nil, table|nil
function fs.dir(path) end

---@param path string
---@param opts? {parents?: boolean, mode?: integer}
---@return true|nil, table|nil
function fs.mkdir(path, opts) end

---Creates "<prefix>XXXXXX" as a private directory.
---@param prefix string
---@return string|nil path, table|nil
function fs.mkdtemp(prefix) end

---@param path string
---@return string|nil, table|nil
function fs.realpath(path) end

---@param path string
---@param how? string any of "r", "w", "x"
---@return boolean
function fs.access(path, how) end

---Removes a tree without following symlinks; a missing path is not an error.
---@param path string
---@return true|nil, table|nil
function fs.rmtree(path) end

---@param fd integer 0, 1 or 2
---@return boolean
function fs.isatty(fd) end

---@param path string
---@param mode integer
---@return true|nil, table|nil
function fs.chmod(path, mode) end

---@return string|nil, table|nil
function fs.getcwd() end

---Seconds from a monotonic clock.
---@return number
function fs.clock() end

---@return integer
function fs.getpid() end

---Columns of the terminal on file descriptor fd, or nil when it is not a terminal.
---@param fd integer
---@return integer|nil
function fs.term_width(fd) end

---Bytes an unprivileged user may still write in the file system holding `path`.
---@param path string
---@return integer|nil bytes, table|nil err
function fs.free_space(path) end

---The effective user id.
---@return integer
function fs.geteuid() end

---@class skafos.fs.Lock
local Lock = {} -- luacheck: ignore 241

---Drops the lock (also what __close and __gc do); safe twice.
function Lock:release() end

---An exclusive advisory lock (flock) on a file or directory of this user's, held until
---released or collected. Errors: BUSY (another process holds it), NOT_OURS (another user
---owns it), NOT_FOUND, ACCESS, IO.
---@param path string
---@return skafos.fs.Lock|nil lock
---@return table|nil err
function fs.trylock(path) end

---@class skafos.fs.LockFile
local LockFile = {} -- luacheck: ignore 241

---Removes the lock file and drops the lock (also what __close and __gc do); safe twice.
function LockFile:release() end

---Creates (or takes over a stale) lock file at `path` and holds an exclusive flock on it
---until released, when the file is removed. Never follows a symbolic link or opens a FIFO:
---anything at `path` but a regular file of this user's with one link fails with
---UNSAFE_PATH, naming it. Errors: BUSY (another process holds it), UNSAFE_PATH, ACCESS, IO.
---@param path string
---@return skafos.fs.LockFile|nil lock
---@return table|nil err
function fs.lockfile(path) end

---Writes `prompt` to standard error and reads one line from standard input with echo off
---(for a token or password); the terminal is restored whatever happens. Errors: USAGE when
---standard input is not a terminal, INTERRUPTED, IO.
---@param prompt? string
---@return string|nil line, table|nil err
function fs.read_secret(prompt) end

---Replaces `path` atomically with a new file holding `data`, of mode `mode` (default
---0600): written to a fresh temporary file beside it (never through a link), synced,
---then renamed over `path`.
---@param path string
---@param data string
---@param mode? integer
---@return true|nil ok, table|nil err
function fs.write_file(path, data, mode) end

return fs
