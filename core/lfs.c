/*
 * skafos.fs: the few file-system calls the workflows need and stock Lua lacks (stat,
 * directory listing, mkdir -p, mkdtemp, realpath, recursive removal, terminals, clocks,
 * advisory locks).
 * Failures return `nil, err` with code NOT_FOUND, ACCESS, EXISTS or IO.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "common.h"

static int push_errno(lua_State *L, const char *what, const char *path, int err) {
  const char *code = err == ENOENT || err == ENOTDIR ? "NOT_FOUND"
                     : err == EACCES || err == EPERM ? "ACCESS"
                     : err == EEXIST || err == ENOTEMPTY ? "EXISTS"
                                                         : "IO";
  const char *msg = lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
  skafos_pusherror(L, code, msg, 0, 0);
  lua_remove(L, -3); /* the message copy */
  return 2;
}

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "device";
  return "other";
}

static int push_stat(lua_State *L, const char *path, int follow) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0)
    return push_errno(L, "cannot stat", path, errno);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, type_name(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st.st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  lua_setfield(L, -2, "ino");
  lua_pushinteger(L, (lua_Integer)st.st_nlink);
  lua_setfield(L, -2, "nlink");
  return 1;
}

/* fs.stat(path) / fs.lstat(path) -> {type, size, mode, mtime, uid, dev, ino, nlink} | nil, err */
static int fs_stat(lua_State *L) { return push_stat(L, luaL_checkstring(L, 1), 1); }
static int fs_lstat(lua_State *L) { return push_stat(L, luaL_checkstring(L, 1), 0); }

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* fs.dir(path) -> sorted list of entry names (no "." or "..") | nil, err */
static int fs_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct dirent *de;
  lua_Integer n = 0, i;
  DIR *d = opendir(path);
  if (d == NULL)
    return push_errno(L, "cannot open directory", path, errno);
  /* collect into a Lua table first (owned by Lua, so an error cannot leak the names),
   * closing the DIR before anything that could raise */
  lua_newtable(L);
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    lua_pushstring(L, de->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  /* sort with table.sort semantics (byte order) */
  {
    const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -2, i);
      names[i - 1] = lua_tostring(L, -1);
      lua_pop(L, 1); /* the string stays alive: the table at -2 holds it */
    }
    qsort(names, (size_t)n, sizeof(char *), cmp_names);
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
      lua_pushstring(L, names[i - 1]);
      lua_rawseti(L, -2, i);
    }
  }
  return 1;
}

/* fs.mkdir(path, {parents = bool, mode = 0755}) -> true | nil, err */
static int fs_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int parents = 0;
  mode_t mode = 0755;
  char buf[PATH_MAX];
  char *p;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "parents");
    parents = lua_toboolean(L, -1);
    lua_getfield(L, 2, "mode");
    if (lua_isinteger(L, -1))
      mode = (mode_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  if (!parents) {
    if (mkdir(path, mode) != 0)
      return push_errno(L, "cannot create directory", path, errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (strlen(path) >= sizeof buf)
    return push_errno(L, "cannot create directory", path, ENAMETOOLONG);
  strcpy(buf, path);
  for (p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      struct stat st;
      *p = '\0';
      if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return push_errno(L, "cannot create directory", buf, errno);
      if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return push_errno(L, "cannot create directory", buf, ENOTDIR);
      *p = c;
      if (c == '\0')
        break;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.mkdtemp(prefix) -> path of a new private directory "<prefix>XXXXXX" | nil, err */
static int fs_mkdtemp(lua_State *L) {
  const char *prefix = luaL_checkstring(L, 1);
  luaL_Buffer b;
  char *tmpl;
  size_t len;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, prefix);
  luaL_addstring(&b, "XXXXXX");
  luaL_pushresult(&b);
  tmpl = (char *)lua_tolstring(L, -1, &len);
  /* mkdtemp writes into the template: work on a private copy in a userdata */
  {
    char *copy = lua_newuserdatauv(L, len + 1, 0);
    memcpy(copy, tmpl, len + 1);
    if (mkdtemp(copy) == NULL)
      return push_errno(L, "cannot create temporary directory", tmpl, errno);
    lua_pushstring(L, copy);
  }
  return 1;
}

/* fs.realpath(path) -> absolute path with symlinks resolved | nil, err */
static int fs_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (realpath(path, buf) == NULL)
    return push_errno(L, "cannot resolve", path, errno);
  lua_pushstring(L, buf);
  return 1;
}

/* fs.access(path, "r"|"w"|"x"|"") -> boolean */
static int fs_access(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *how = luaL_optstring(L, 2, "");
  int mode = F_OK;
  if (strchr(how, 'r')) mode |= R_OK;
  if (strchr(how, 'w')) mode |= W_OK;
  if (strchr(how, 'x')) mode |= X_OK;
  lua_pushboolean(L, access(path, mode) == 0);
  return 1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 ? errno : 0;
}

/* fs.rmtree(path) -> true | nil, err. Never follows symlinks; a missing path is fine. */
static int fs_rmtree(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  int rc;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) {
      lua_pushboolean(L, 1);
      return 1;
    }
    return push_errno(L, "cannot remove", path, errno);
  }
  rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  if (rc != 0)
    return push_errno(L, "cannot remove", path, rc > 0 ? rc : errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.isatty(fd) -> boolean; 0 stdin, 1 stdout, 2 stderr */
static int fs_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* fs.chmod(path, mode) -> true | nil, err */
static int fs_chmod(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (chmod(path, (mode_t)luaL_checkinteger(L, 2)) != 0)
    return push_errno(L, "cannot chmod", path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int fs_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL)
    return push_errno(L, "cannot get", "current directory", errno);
  lua_pushstring(L, buf);
  return 1;
}

/* fs.clock() -> seconds from a monotonic clock, as a float */
static int fs_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* ---- advisory locks ------------------------------------------------------------------ */

#define LOCK_MT "skafos.fs.Lock"

static int lock_release(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LOCK_MT);
  if (*fd >= 0) {
    close(*fd); /* drops the lock */
    *fd = -1;
  }
  return 0;
}

/* fs.trylock(path) -> lock | nil, err: an exclusive flock on a file or directory of this
 * user's, held until lock:release(), __close or __gc. err.code BUSY when another process
 * holds it, NOT_OURS when another user owns it, else as stat. */
static int fs_trylock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  struct stat st;
  *fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (*fd < 0)
    return push_errno(L, "cannot open", path, errno);
  if (fstat(*fd, &st) != 0)
    return push_errno(L, "cannot stat", path, errno);
  if (st.st_uid != geteuid()) {
    lua_pushfstring(L, "%s belongs to another user", path);
    return skafos_pusherror(L, "NOT_OURS", lua_tostring(L, -1), 0, 0);
  }
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      lua_pushfstring(L, "%s is locked by another process", path);
      return skafos_pusherror(L, "BUSY", lua_tostring(L, -1), 0, 0);
    }
    return push_errno(L, "cannot lock", path, errno);
  }
  return 1;
}

/* ---- lock files ----------------------------------------------------------------------
 * A lock file lives only while its holder does: created (or a stale one taken over),
 * flocked, and removed by its holder before it lets go. A process that opened the file
 * just before the holder removed it gets the lock on an unlinked inode; it sees that the
 * path names another inode (or none) and starts over, so two holders never coexist. */

#define LOCKFILE_MT "skafos.fs.LockFile"

typedef struct lockfile {
  int fd;
  dev_t dev;
  ino_t ino;
  char path[]; /* NUL-terminated */
} lockfile;

static int lockfile_release(lua_State *L) {
  lockfile *lf = luaL_checkudata(L, 1, LOCKFILE_MT);
  struct stat st;
  if (lf->fd >= 0) {
    /* remove the file only if it is still ours: a takeover may have replaced it */
    if (lstat(lf->path, &st) == 0 && st.st_dev == lf->dev && st.st_ino == lf->ino)
      unlink(lf->path);
    close(lf->fd);
    lf->fd = -1;
  }
  return 0;
}

/* What is at path, for a message: "a symbolic link", "a directory", ... */
static const char *what_is(mode_t m) {
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  return "not a regular file";
}

static int unsafe_path(lua_State *L, const char *path, const char *why) {
  lua_pushfstring(L, "%s %s; skafos does not write through it: remove it or choose another "
                     "output", path, why);
  skafos_pusherror(L, "UNSAFE_PATH", lua_tostring(L, -1), 0, 0);
  lua_remove(L, -3);
  return 2;
}

/* fs.lockfile(path) -> lock | nil, err (see lua/meta/skafos_fs.lua) */
static int fs_lockfile(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  lockfile *lf = lua_newuserdatauv(L, sizeof *lf + len + 1, 0);
  int tries;
  lf->fd = -1;
  memcpy(lf->path, path, len + 1);
  luaL_setmetatable(L, LOCKFILE_MT);
  for (tries = 0; tries < 16; tries++) {
    struct stat st, now;
    lf->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (lf->fd < 0) {
      if ((errno == ELOOP || errno == ENXIO || errno == EISDIR || errno == ENODEV) &&
          lstat(path, &st) == 0)
        return unsafe_path(L, path, lua_pushfstring(L, "is %s", what_is(st.st_mode)));
      return push_errno(L, "cannot create lock file", path, errno);
    }
    if (fstat(lf->fd, &st) != 0) {
      int e = errno;
      close(lf->fd);
      lf->fd = -1;
      return push_errno(L, "cannot stat", path, e);
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
      close(lf->fd);
      lf->fd = -1;
      if (!S_ISREG(st.st_mode))
        return unsafe_path(L, path, lua_pushfstring(L, "is %s", what_is(st.st_mode)));
      if (st.st_uid != geteuid())
        return unsafe_path(L, path, lua_pushfstring(L, "belongs to another user (uid %d)",
                                                    (int)st.st_uid));
      return unsafe_path(L, path, "has other hard links");
    }
    if (flock(lf->fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      close(lf->fd);
      lf->fd = -1;
      if (e == EWOULDBLOCK) {
        lua_pushfstring(L, "%s is locked by another process", path);
        return skafos_pusherror(L, "BUSY", lua_tostring(L, -1), 0, 0);
      }
      return push_errno(L, "cannot lock", path, e);
    }
    if (lstat(path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      lf->dev = st.st_dev;
      lf->ino = st.st_ino;
      return 1;
    }
    close(lf->fd); /* its holder removed it meanwhile: start over */
    lf->fd = -1;
  }
  lua_pushfstring(L, "cannot hold %s: it keeps being replaced", path);
  return skafos_pusherror(L, "BUSY", lua_tostring(L, -1), 0, 0);
}

/* fs.read_secret(prompt) -> line | nil, err: writes prompt to the terminal (stderr) and
 * reads one line from standard input with echo off, restoring the terminal whatever
 * happens (an interrupted read gives INTERRUPTED). Standard input must be a terminal. */
static int fs_read_secret(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  struct termios old, quiet;
  luaL_Buffer b;
  int restored = 0, failed = 0;
  if (!isatty(0) || tcgetattr(0, &old) != 0)
    return skafos_pusherror(L, "USAGE", "standard input is not a terminal", 0, 0);
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
  quiet.c_lflag |= ICANON;
  /* echo goes off before the prompt appears, so nothing typed after it is echoed or lost */
  if (tcsetattr(0, TCSANOW, &quiet) != 0)
    return push_errno(L, "cannot turn echo off on", "the terminal", errno);
  fputs(prompt, stderr);
  fflush(stderr);
  luaL_buffinit(L, &b);
  for (;;) {
    char c;
    ssize_t n = read(0, &c, 1);
    if (n < 0 && errno == EINTR && !skafos_interrupted())
      continue;
    if (n < 0) {
      failed = errno == EINTR ? -1 : errno;
      break;
    }
    if (n == 0 || c == '\n')
      break;
    luaL_addchar(&b, c);
  }
  restored = tcsetattr(0, TCSANOW, &old) == 0;
  fputs("\n", stderr); /* the newline the user typed was not echoed */
  fflush(stderr);
  (void)restored;
  if (failed == -1 || skafos_interrupted()) {
    luaL_pushresult(&b);
    return skafos_pusherror(L, "INTERRUPTED", "interrupted", 0, 0);
  }
  if (failed != 0)
    return push_errno(L, "cannot read from", "the terminal", failed);
  luaL_pushresult(&b);
  return 1;
}

/* fs.write_file(path, data, mode) -> true | nil, err: replaces path atomically with a new
 * file of the given mode (default 0600) holding data: written to a fresh temporary file
 * beside it (O_EXCL, never through a link), synced, then renamed over path. */
static int fs_write_file(lua_State *L) {
  size_t len, off = 0;
  const char *path = luaL_checkstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  mode_t mode = (mode_t)luaL_optinteger(L, 3, 0600);
  const char *tmp = lua_pushfstring(L, "%s.tmp-XXXXXX", path);
  char *t = lua_newuserdatauv(L, strlen(tmp) + 1, 0);
  int fd, e;
  strcpy(t, tmp);
  fd = mkstemp(t); /* O_EXCL, 0600 */
  if (fd < 0)
    return push_errno(L, "cannot create a file beside", path, errno);
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      break;
    off += (size_t)w;
  }
  e = off < len ? errno : 0;
  if (e == 0 && (fchmod(fd, mode) != 0 || fsync(fd) != 0))
    e = errno;
  if (close(fd) != 0 && e == 0)
    e = errno;
  if (e == 0 && rename(t, path) != 0)
    e = errno;
  if (e != 0) {
    unlink(t);
    return push_errno(L, "cannot write", path, e);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.term_width(fd) -> columns of the terminal on fd, or nil when it is not one */
static int fs_term_width(lua_State *L) {
  struct winsize ws;
  int fd = (int)luaL_checkinteger(L, 1);
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
    return 0;
  lua_pushinteger(L, ws.ws_col);
  return 1;
}

/* fs.free_space(path) -> bytes an unprivileged user may still write there | nil, err */
static int fs_free_space(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct statvfs vfs;
  if (statvfs(path, &vfs) != 0)
    return push_errno(L, "cannot inspect", path, errno);
  lua_pushinteger(L, (lua_Integer)((uint64_t)vfs.f_bavail * vfs.f_frsize));
  return 1;
}

static int fs_geteuid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)geteuid());
  return 1;
}

static int fs_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static const luaL_Reg fs_funcs[] = {
    {"stat", fs_stat},       {"lstat", fs_lstat},     {"dir", fs_dir},
    {"mkdir", fs_mkdir},     {"mkdtemp", fs_mkdtemp}, {"realpath", fs_realpath},
    {"access", fs_access},   {"rmtree", fs_rmtree},   {"isatty", fs_isatty},
    {"chmod", fs_chmod},     {"getcwd", fs_getcwd},   {"clock", fs_clock},
    {"getpid", fs_getpid},   {"trylock", fs_trylock}, {"geteuid", fs_geteuid},
    {"lockfile", fs_lockfile}, {"read_secret", fs_read_secret},
    {"write_file", fs_write_file}, {"term_width", fs_term_width},
    {"free_space", fs_free_space},
    {NULL, NULL}};

int luaopen_skafos_fs(lua_State *L);
int luaopen_skafos_fs(lua_State *L) {
  if (luaL_newmetatable(L, LOCK_MT)) {
    static const luaL_Reg methods[] = {{"release", lock_release}, {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LOCKFILE_MT)) {
    static const luaL_Reg methods[] = {{"release", lockfile_release}, {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lockfile_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lockfile_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fs_funcs);
  return 1;
}
