/*
 * The runtime shared by the skafos executable, libskafos and the skafos.so Lua module:
 * module preloading, the script searcher bootstrap, the skafos.core module, protected
 * calls with a traceback handler, exit-code mapping and SIGINT turned into a Lua error.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curlver.h>
#include <lauxlib.h>
#ifdef SKAFOS_HAVE_LINKED_CJSON
#include <lua-cjson.h>
#endif
#include <lualib.h>
#include <zlib.h>

#include "common.h"
#include "embedded.h"
#include "skafos.h"

int luaopen_skafos_core(lua_State *L);
int luaopen_skafos_fs(lua_State *L);
int luaopen_skafos_http(lua_State *L);
int luaopen_skafos_s3(lua_State *L);
int luaopen_skafos_tasks(lua_State *L);
int luaopen_skafos_zip(lua_State *L);
int luaopen_skafos(lua_State *L);

static const luaL_Reg preloaded[] = {
    {"skafos.core", luaopen_skafos_core},
    {"skafos.fs", luaopen_skafos_fs},
    {"skafos.http", luaopen_skafos_http},
    {"skafos.s3", luaopen_skafos_s3},
    {"skafos.tasks", luaopen_skafos_tasks},
    {"skafos.zip", luaopen_skafos_zip},
#ifdef SKAFOS_HAVE_LINKED_CJSON
    {"cjson", luaopen_cjson}, /* else LuaRocks' cjson.so, found on Lua's C path */
#endif
    {NULL, NULL}};

const char *skafos_version(void) { return SKAFOS_VERSION; }

/* ---- exit codes ---------------------------------------------------------------------
 * One table maps stable error codes (from the native modules and lua/skafos/errors.lua)
 * to the exit codes documented in README and `skafos help`. */
static const struct {
  const char *code;
  int exit;
} exit_codes[] = {
    {"USAGE", SKAFOS_EXIT_USAGE},
    {"INVALID", SKAFOS_EXIT_USAGE},
    {"INVALID_INPUT", SKAFOS_EXIT_USAGE},
    {"AUTH", SKAFOS_EXIT_AUTH},
    {"NOT_FOUND", SKAFOS_EXIT_NOT_FOUND},
    {"NO_VERSIONS", SKAFOS_EXIT_NOT_FOUND},
    {"CONFLICT", SKAFOS_EXIT_CONFLICT},
    {"EXISTS", SKAFOS_EXIT_USAGE},
    {"UNSAFE_PATH", SKAFOS_EXIT_USAGE},
    {"UNTRUSTED", SKAFOS_EXIT_USAGE},
    {"BUSY", SKAFOS_EXIT_CONFLICT},
    {"NETWORK", SKAFOS_EXIT_NETWORK},
    {"TIMEOUT", SKAFOS_EXIT_NETWORK},
    {"COULDNT_CONNECT", SKAFOS_EXIT_NETWORK},
    {"COULDNT_RESOLVE", SKAFOS_EXIT_NETWORK},
    {"TLS", SKAFOS_EXIT_NETWORK},
    {"SEND", SKAFOS_EXIT_NETWORK},
    {"RECV", SKAFOS_EXIT_NETWORK},
    {"TOO_MANY_REDIRECTS", SKAFOS_EXIT_NETWORK},
    {"REDIRECT", SKAFOS_EXIT_NETWORK},
    {"HTTP", SKAFOS_EXIT_NETWORK},
    {"SERVER", SKAFOS_EXIT_NETWORK},
    {"STORAGE", SKAFOS_EXIT_NETWORK},
    {"EXPIRED", SKAFOS_EXIT_NETWORK},
    {"SIGNATURE", SKAFOS_EXIT_NETWORK},
    {"ACCESS_DENIED", SKAFOS_EXIT_NETWORK},
    {"SLOW_DOWN", SKAFOS_EXIT_NETWORK},
    {"INTERNAL", SKAFOS_EXIT_NETWORK},
    {"TRUNCATED", SKAFOS_EXIT_NETWORK},
    {"EMPTY_REPLY", SKAFOS_EXIT_NETWORK},
    {"PROTOCOL", SKAFOS_EXIT_NETWORK},
    {"PROXY", SKAFOS_EXIT_NETWORK},
    {"RANGE", SKAFOS_EXIT_NETWORK},
    {"BAD_GATEWAY", SKAFOS_EXIT_NETWORK},
    {"GATEWAY_TIMEOUT", SKAFOS_EXIT_NETWORK},
    {"UNAVAILABLE", SKAFOS_EXIT_NETWORK},
    {"REQUEST_TIMEOUT", SKAFOS_EXIT_NETWORK},
    {"SERVER_ERROR", SKAFOS_EXIT_NETWORK},
    {"TOO_LARGE", SKAFOS_EXIT_USAGE},
    {"INTEGRITY", SKAFOS_EXIT_INTEGRITY},
    {"UNSAFE_ARCHIVE", SKAFOS_EXIT_INTEGRITY},
    {"INTERRUPTED", SKAFOS_EXIT_INTERRUPTED},
    {"DEADLINE", SKAFOS_EXIT_NETWORK},
    {NULL, 0}};

static int interrupt_exit(void);

int skafos_exit_for_code(const char *code) {
  int i;
  if (code != NULL && strcmp(code, "INTERRUPTED") == 0)
    return interrupt_exit();
  for (i = 0; code != NULL && exit_codes[i].code != NULL; i++)
    if (strcmp(exit_codes[i].code, code) == 0)
      return exit_codes[i].exit;
  return SKAFOS_EXIT_FAILED;
}

/* Exit code of an error value: a table's integer `exit`, else its `code` mapped. */
static int exit_for_error(lua_State *L, int idx) {
  int code = SKAFOS_EXIT_FAILED, top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx))
    return code;
  if (lua_getfield(L, idx, "exit") == LUA_TNUMBER && lua_isinteger(L, -1))
    code = (int)lua_tointeger(L, -1);
  else if (lua_getfield(L, idx, "code") == LUA_TSTRING)
    code = skafos_exit_for_code(lua_tostring(L, -1));
  lua_settop(L, top);
  return code;
}

/* ---- protected calls ----------------------------------------------------------------
 * The message handler runs where the error happened (stack not unwound) and turns any
 * error value into {message, exit, traceback}; report() prints it. */
static int msghandler(lua_State *L) {
  int exit_code = exit_for_error(L, 1);
  const char *msg;
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER)
    msg = lua_tostring(L, 1);
  else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    msg = lua_tostring(L, -1);
  else if (lua_istable(L, 1) && lua_getfield(L, 1, "message") == LUA_TSTRING)
    msg = lua_tostring(L, -1);
  else
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  /* stack: err ... msg */
  lua_createtable(L, 0, 4);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (lua_istable(L, 1) && lua_getfield(L, 1, "code") == LUA_TSTRING)
    lua_setfield(L, -2, "code"); /* stack: err ... msg result code -> result.code */
  else {
    if (lua_istable(L, 1))
      lua_pop(L, 1);
    lua_pushliteral(L, "FAILED");
    lua_setfield(L, -2, "code");
  }
  lua_pushinteger(L, exit_code);
  lua_setfield(L, -2, "exit");
  luaL_traceback(L, L, NULL, 1);
  lua_setfield(L, -2, "traceback");
  return 1;
}

static int debug_level(lua_State *L) {
  const char *env = getenv("SKAFOS_DEBUG");
  int level;
  if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
    return 1;
  lua_getfield(L, LUA_REGISTRYINDEX, "skafos.verbose");
  level = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return level;
}

static void clear_status_line(lua_State *L);

/* The last run's result document (what the command printed, as with --json) and error. */
#define RESULT_KEY "skafos.result"
#define ERROR_KEY "skafos.error"
#define STRINGS_KEY "skafos.result.strings"

/* Prints the error produced by msghandler (top of stack) and returns its exit code. */
static int report(lua_State *L) {
  int code = SKAFOS_EXIT_FAILED;
  clear_status_line(L);
  if (lua_istable(L, -1)) {
    int top = lua_gettop(L);
    lua_getfield(L, top, "message");
    lua_getfield(L, top, "exit");
    lua_getfield(L, top, "traceback");
    /* stack: result message exit traceback; the message may quote a server's words, and
     * the traceback a string argument: both are masked */
    code = (int)lua_tointeger(L, top + 2);
    if (lua_type(L, top + 1) == LUA_TSTRING)
      fprintf(stderr, "skafos: %s\n",
              skafos_push_redacted(L, lua_tostring(L, top + 1), lua_rawlen(L, top + 1)));
    if (debug_level(L) > 0 && lua_type(L, top + 3) == LUA_TSTRING)
      fprintf(stderr, "%s\n",
              skafos_push_redacted(L, lua_tostring(L, top + 3), lua_rawlen(L, top + 3)));
    /* kept for skafos_last_error, with the message as printed */
    if (lua_type(L, top + 1) == LUA_TSTRING) {
      skafos_push_redacted(L, lua_tostring(L, top + 1), lua_rawlen(L, top + 1));
      lua_setfield(L, top, "message");
    }
    lua_pushvalue(L, top);
    lua_setfield(L, LUA_REGISTRYINDEX, ERROR_KEY);
    lua_settop(L, top - 1);
  } else {
    /* only if the handler itself failed (memory): print what we have */
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "skafos: %s\n", msg ? msg : "unknown error");
    lua_pop(L, 1);
  }
  fflush(stderr);
  return code;
}

/* Calls the function below nargs arguments with one result; on error returns its exit
 * code after printing it, else leaves the result on the stack and returns -1. */
static int docall(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  int status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, 1, base);
  lua_remove(L, base);
  if (status == LUA_OK)
    return -1;
  return report(L);
}

/* ---- signals --------------------------------------------------------------------------
 * As in lua.c: a handler only records the signal, sets the interrupt flag and a hook; the
 * hook raises in Lua code. C code in the modules polls skafos_interrupted() and returns
 * `nil, INTERRUPTED`, after which the next Lua instruction raises this error, so <close>
 * and pcall cleanups run. SIGINT, SIGTERM and SIGHUP end with 128 + the signal's number;
 * SIGALRM is the deadline set by core.set_deadline (--timeout) and ends with exit 6.
 * Opt-in per state (skafos_handle_sigint), and only while a run (skafos_main,
 * skafos_run_workflow) is under way on it: the handlers are installed when it starts,
 * with the interrupt flag cleared, and the host's own handlers are put back when it
 * ends, so no handler ever refers to a state that is gone. One such run at a time holds
 * the handlers (signal_state); only it writes the flag (cleared again when it ends, so
 * no later run of any state inherits an interrupt), and a run of a state that did not
 * opt in never touches either: runs in other threads race on nothing, and the flag is
 * seen only on the holding run's thread, so they go on while it is interrupted. */
static _Atomic(lua_State *) signal_state = NULL; /* the run holding the handlers, if any */
static atomic_int caught_signal = 0;             /* the first signal that interrupted */
static double deadline_seconds = 0;

/* The exit code of an interrupt: 128 + the signal (SIGINT when none was caught). */
static int interrupt_exit(void) {
  int sig = atomic_load(&caught_signal);
  if (sig == 0)
    sig = SIGINT;
  return sig == SIGALRM ? SKAFOS_EXIT_NETWORK : 128 + sig;
}

const char *skafos_interrupt_text(void) {
  int sig = atomic_load(&caught_signal);
  return sig == SIGTERM ? "interrupted (SIGTERM)" : sig == SIGHUP ? "interrupted (SIGHUP)" : "interrupted";
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  int sig = atomic_load(&caught_signal);
  if (sig == 0)
    sig = SIGINT;
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (sig == SIGALRM)
    skafos_newerror(L, "DEADLINE",
                    lua_pushfstring(L, "gave up: the command ran past its --timeout of %f s",
                                    (lua_Number)deadline_seconds), 0, 0);
  else
    skafos_newerror(L, "INTERRUPTED", skafos_interrupt_text(), 0, 0);
  lua_pushinteger(L, interrupt_exit());
  lua_setfield(L, -2, "exit");
  lua_error(L);
}

static void on_signal(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  lua_State *L = atomic_load(&signal_state);
  int none = 0;
  signal(sig, SIG_DFL); /* a second one kills at once */
  atomic_compare_exchange_strong(&caught_signal, &none, sig);
  skafos_set_interrupted(1);
  if (L != NULL)
    lua_sethook(L, interrupt_hook, flag, 1);
}

#define SIGNALS_KEY "skafos.handle_signals"
static const int run_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_RUN_SIGNALS (sizeof run_signals / sizeof run_signals[0])
static struct sigaction saved_actions[N_RUN_SIGNALS], saved_alarm;
static int alarm_saved = 0;

void skafos_handle_sigint(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, SIGNALS_KEY);
}

/* A run starts: the flag cleared, and the handlers in place when L opted in. Returns
 * whether they were installed (signals_end must then follow). */
static int signals_begin(lua_State *L) {
  struct sigaction sa;
  size_t i;
  int opted;
  lua_State *none = NULL;
  opted = lua_getfield(L, LUA_REGISTRYINDEX, SIGNALS_KEY) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!opted || !atomic_compare_exchange_strong(&signal_state, &none, L))
    return 0; /* not asked for, or a run under way already has them */
  skafos_set_interrupt_owner(1); /* before any handler can set the flag */
  skafos_set_interrupted(0);
  atomic_store(&caught_signal, 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (i = 0; i < N_RUN_SIGNALS; i++)
    sigaction(run_signals[i], &sa, &saved_actions[i]);
  return 1;
}

/* The run is over: no deadline, the host's handlers back, no hook left behind. */
static void signals_end(lua_State *L) {
  struct itimerval off;
  size_t i;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, NULL);
  if (alarm_saved) {
    sigaction(SIGALRM, &saved_alarm, NULL);
    alarm_saved = 0;
  }
  for (i = 0; i < N_RUN_SIGNALS; i++)
    sigaction(run_signals[i], &saved_actions[i], NULL);
  skafos_set_interrupted(0);
  skafos_set_interrupt_owner(0);
  atomic_store(&signal_state, NULL);
  if (lua_gethook(L) == interrupt_hook)
    lua_sethook(L, NULL, 0, 0);
}

/* core.set_deadline(seconds): the whole command is interrupted (exit 6) once that much
 * time has passed; 0 or less clears it. Only where the host handles signals (the
 * executable); elsewhere it returns false. */
static int core_set_deadline(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct itimerval it;
  struct sigaction sa;
  if (atomic_load(&signal_state) == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  memset(&it, 0, sizeof it);
  if (s > 0) {
    it.it_value.tv_sec = (time_t)s;
    it.it_value.tv_usec = (suseconds_t)((s - (lua_Number)(time_t)s) * 1e6);
    if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
      it.it_value.tv_usec = 1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, alarm_saved ? NULL : &saved_alarm);
    alarm_saved = 1;
  }
  deadline_seconds = s > 0 ? s : 0;
  setitimer(ITIMER_REAL, &it, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- skafos.core ----------------------------------------------------------------------
 * What the Lua side of the runtime needs from C: versions, the embedded sources, the
 * executable's directory, exit codes, and per-state verbosity. */
/* The libcurl version is the one skafos was built against (curlver.h): asking the
 * library itself would load it, which --version must not pay for. */
static int core_versions(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, SKAFOS_VERSION);
  lua_setfield(L, -2, "skafos");
  lua_pushliteral(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_pushliteral(L, LIBCURL_VERSION);
  lua_setfield(L, -2, "curl");
  lua_pushstring(L, zlibVersion());
  lua_setfield(L, -2, "zlib");
  return 1;
}

static const skafos_embedded *find_embedded(const char *path) {
  const skafos_embedded *e;
  for (e = skafos_embedded_files; e->path != NULL; e++)
    if (strcmp(e->path, path) == 0)
      return e;
  return NULL;
}

/* core.embedded(path) -> source, or nil when no such file was compiled in. */
static int core_embedded(lua_State *L) {
  const skafos_embedded *e = find_embedded(luaL_checkstring(L, 1));
  if (e == NULL)
    return 0;
  lua_pushlstring(L, e->data, e->len);
  return 1;
}

/* core.embedded_list(prefix?) -> sorted list of embedded paths starting with prefix. */
static int core_embedded_list(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "");
  size_t plen = strlen(prefix);
  const skafos_embedded *e;
  lua_Integer n = 0;
  lua_newtable(L);
  for (e = skafos_embedded_files; e->path != NULL; e++)
    if (strncmp(e->path, prefix, plen) == 0) {
      lua_pushstring(L, e->path);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* Pushes the chunk of an embedded file, named after its repository path ("@lua/x.lua"):
 * from its bytecode, or from its source when the running Lua is another release than the
 * one that compiled it (a host interpreter loading skafos.so, an upgraded liblua) or
 * cannot read it. Returns 1 with the chunk on the stack, or 0 with the error there. */
static int push_embedded_chunk(lua_State *L, const skafos_embedded *e) {
  int same_lua = strcmp(lua_ident, skafos_embedded_lua_ident) == 0, ok;
  lua_pushfstring(L, "@%s", e->path);
  ok = same_lua && luaL_loadbufferx(L, e->code, e->code_len, lua_tostring(L, -1), "b") == LUA_OK;
  if (!ok) {
    if (same_lua)
      lua_pop(L, 1); /* the bytecode's error */
    ok = luaL_loadbufferx(L, e->data, e->len, lua_tostring(L, -1), "t") == LUA_OK;
  }
  lua_remove(L, -2); /* stack: chunk, or the error */
  return ok;
}

/* core.load_embedded(path) -> chunk, or nil (no such file) or nil, message. */
static int core_load_embedded(lua_State *L) {
  const skafos_embedded *e = find_embedded(luaL_checkstring(L, 1));
  if (e == NULL)
    return 0;
  if (push_embedded_chunk(L, e))
    return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int core_exe_dir(lua_State *L) {
  char buf[PATH_MAX];
  char *slash;
  if (skafos_exe_path(buf, sizeof buf) != 0)
    return 0;
  slash = strrchr(buf, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* ---- the share directory ----------------------------------------------------------------
 * Installed Lua files (share/skafos/{scripts,lua}) belong to one install, so they are found
 * from where this code was loaded, never from the program that loaded it: a host elsewhere
 * never picks up another install's files. CMake gives the install layout relative to the
 * prefix (SKAFOS_LIBDIR, SKAFOS_CMODDIR, SKAFOS_SHARE_IN_PREFIX) and to the executable's
 * directory (SKAFOS_BIN_TO_SHARE), so an installed tree can be moved. */
#if !defined(SKAFOS_BIN_TO_SHARE) || !defined(SKAFOS_LIBDIR) || !defined(SKAFOS_CMODDIR) || \
    !defined(SKAFOS_SHARE_IN_PREFIX) || !defined(SKAFOS_SHARE_DIR)
#error "CMake defines the install layout for core_share_dir"
#endif

/* Cuts the directory suffix ("lib", "lib/lua/5.4") off dir, leaving the prefix; 0 when dir
 * does not end with it. */
static int strip_dir(char *dir, const char *suffix) {
  size_t n = strlen(dir), k = strlen(suffix);
  if (k == 0 || n <= k || dir[n - k - 1] != '/' || strcmp(dir + n - k, suffix) != 0)
    return 0;
  dir[n - k - 1] = '\0';
  return 1;
}

/* core.share_dir() -> the installed share/skafos, or nothing. In a shared object
 * (libskafos.so, skafos.so): beside it when it sits in its installed directory, else none
 * (a build tree, a LuaRocks tree). In the skafos executable (main.c sets
 * SKAFOS_EXECUTABLE_KEY): relative to the executable. In a program that linked
 * libskafos.a: the configured path. */
static int core_share_dir(lua_State *L) {
  char path[PATH_MAX], *slash;
  int exe;
  /* when the system cannot tell where this code is, as if in the main program */
  if (skafos_code_path((const void *)core_share_dir, path, sizeof path) == 1) {
    if ((slash = strrchr(path, '/')) == NULL)
      return 0;
    *slash = '\0';
    if (!strip_dir(path, SKAFOS_CMODDIR) && !strip_dir(path, SKAFOS_LIBDIR))
      return 0;
    lua_pushfstring(L, "%s/%s", path, SKAFOS_SHARE_IN_PREFIX);
    return 1;
  }
  exe = lua_getfield(L, LUA_REGISTRYINDEX, SKAFOS_EXECUTABLE_KEY) == LUA_TBOOLEAN &&
        lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!exe) {
    lua_pushliteral(L, SKAFOS_SHARE_DIR);
    return 1;
  }
  if (!core_exe_dir(L))
    return 0;
  lua_pushfstring(L, "%s/%s", lua_tostring(L, -1), SKAFOS_BIN_TO_SHARE);
  return 1;
}

static int core_exit_code(lua_State *L) {
  lua_pushinteger(L, skafos_exit_for_code(luaL_checkstring(L, 1)));
  return 1;
}

static int core_set_verbose(lua_State *L) {
  lua_Integer level = luaL_checkinteger(L, 1);
  lua_pushinteger(L, level);
  lua_setfield(L, LUA_REGISTRYINDEX, "skafos.verbose");
  return 0;
}

static int core_set_trace(lua_State *L) {
  lua_Integer level = luaL_checkinteger(L, 1);
  lua_pushinteger(L, level);
  lua_setfield(L, LUA_REGISTRYINDEX, "skafos.trace");
  return 0;
}

/* core.set_result(doc): the result document of the run under way (see skafos_push_result). */
static int core_set_result(lua_State *L) {
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
  return 0;
}

/* core.status_line(shown): whether a progress bar is drawn on stderr's current line, so
 * that an error printed by the host (an interrupt, say) first clears it. */
static int core_status_line(lua_State *L) {
  lua_pushboolean(L, lua_toboolean(L, 1));
  lua_setfield(L, LUA_REGISTRYINDEX, "skafos.statusline");
  return 0;
}

/* Clears a progress bar left on stderr's line, if any. */
static void clear_status_line(lua_State *L) {
  int shown = lua_getfield(L, LUA_REGISTRYINDEX, "skafos.statusline") == LUA_TBOOLEAN &&
              lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (shown) {
    fputs("\r\033[K", stderr);
    lua_pushboolean(L, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, "skafos.statusline");
  }
}

/* core.add_secret(s): s is never printed or kept in an error from now on (see common.h). */
static int core_add_secret(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  skafos_add_secret(L, s, len);
  return 0;
}

/* core.redact(text) -> text with every registered secret masked. */
static int core_redact(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  skafos_push_redacted(L, s, len);
  return 1;
}

static const luaL_Reg core_funcs[] = {
    {"add_secret", core_add_secret},
    {"status_line", core_status_line},
    {"set_deadline", core_set_deadline},
    {"set_result", core_set_result},
    {"redact", core_redact},
    {"versions", core_versions},
    {"embedded", core_embedded},
    {"embedded_list", core_embedded_list},
    {"load_embedded", core_load_embedded},
    {"exe_dir", core_exe_dir},
    {"share_dir", core_share_dir},
    {"exit_code", core_exit_code},
    {"set_verbose", core_set_verbose},
    {"set_trace", core_set_trace},
    {NULL, NULL}};

int luaopen_skafos_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, SKAFOS_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}

/* ---- set-up ---------------------------------------------------------------------------- */
/* Loads an embedded file the host itself needs; a missing or broken one raises. */
static int load_embedded(lua_State *L, const char *path) {
  const skafos_embedded *e = find_embedded(path);
  if (e == NULL)
    return luaL_error(L, "skafos: %s is missing from this build", path);
  if (!push_embedded_chunk(L, e))
    return lua_error(L);
  return 1;
}

static int openlibs(lua_State *L) {
  const luaL_Reg *lib;
  const char *trace = getenv("SKAFOS_TRACE");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (lib = preloaded; lib->func != NULL; lib++) {
    lua_pushcfunction(L, lib->func);
    lua_setfield(L, -2, lib->name);
  }
  lua_pop(L, 1);
  if (trace != NULL && trace[0] != '\0' && strcmp(trace, "0") != 0) {
    lua_pushinteger(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "skafos.trace");
  }
  /* the loader installs the searcher and registers itself as package.loaded["skafos.loader"] */
  load_embedded(L, "lua/skafos/loader.lua");
  luaL_requiref(L, "skafos.core", luaopen_skafos_core, 0);
  lua_call(L, 1, 0);
  return 0;
}

/* libcurl (and with it OpenSSL) is initialised once, by the first transfer module loaded
 * (skafos_curl_init in lcurl.c), not here: `skafos --version` or `skafos help` never pay
 * for it. */
int skafos_openlibs(lua_State *L) {
  lua_pushcfunction(L, openlibs);
  lua_call(L, 0, 0);
  return 0;
}

/* Calls require("skafos.cli")[fn](first, {argv...}) under docall. */
static int call_cli_run(lua_State *L, const char *fn, const char *first, int argc,
                        const char *const *argv, int top) {
  int i, code;
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, ERROR_KEY);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, STRINGS_KEY);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "skafos.cli");
  code = docall(L, 1);
  if (code >= 0) {
    lua_settop(L, top);
    return code;
  }
  lua_getfield(L, -1, fn);
  if (first != NULL)
    lua_pushstring(L, first);
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  code = docall(L, first != NULL ? 2 : 1);
  if (code < 0)
    code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : SKAFOS_EXIT_OK;
  lua_settop(L, top);
  return code;
}

static int call_cli(lua_State *L, const char *fn, const char *first, int argc,
                    const char *const *argv) {
  int code, top = lua_gettop(L);
  int handled = signals_begin(L);
  code = call_cli_run(L, fn, first, argc, argv, top);
  if (handled)
    signals_end(L);
  return code;
}

int skafos_main(lua_State *L, int argc, const char *const *argv) {
  return call_cli(L, "main", NULL, argc, argv);
}

int skafos_run_workflow(lua_State *L, const char *name, int argc, const char *const *argv) {
  return call_cli(L, "run_workflow", name, argc, argv);
}

int skafos_push_result(lua_State *L) {
  return lua_getfield(L, LUA_REGISTRYINDEX, RESULT_KEY);
}

const char *skafos_result_field(lua_State *L, const char *field) {
  const char *s = NULL;
  int top = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, RESULT_KEY) == LUA_TTABLE) {
    int t = lua_getfield(L, -1, field);
    if (t == LUA_TSTRING) {
      s = lua_tostring(L, -1); /* lives in the result table */
    } else if (t == LUA_TNUMBER) {
      /* its string form lives in a cache the next run empties */
      luaL_getsubtable(L, LUA_REGISTRYINDEX, STRINGS_KEY);
      lua_pushvalue(L, -2);
      lua_tolstring(L, -1, NULL);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, field);
      s = lua_tostring(L, -1);
    }
  }
  lua_settop(L, top);
  return s;
}

int skafos_last_error(lua_State *L, const char **code, const char **message) {
  int exit_code = 0, top = lua_gettop(L);
  if (code)
    *code = NULL;
  if (message)
    *message = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, ERROR_KEY) == LUA_TTABLE) {
    /* the strings stay alive in the registry's error table until the next run */
    if (lua_getfield(L, -1, "code") == LUA_TSTRING && code)
      *code = lua_tostring(L, -1);
    if (lua_getfield(L, -2, "message") == LUA_TSTRING && message)
      *message = lua_tostring(L, -1);
    lua_getfield(L, -3, "exit");
    exit_code = (int)lua_tointeger(L, -1);
  }
  lua_settop(L, top);
  return exit_code;
}

/* `require "skafos"` from a stock Lua 5.4: the same modules and workflows, then the
 * library table of lua/skafos/init.lua. */
int luaopen_skafos(lua_State *L) {
  skafos_openlibs(L);
  load_embedded(L, "lua/skafos/init.lua");
  lua_pushliteral(L, "skafos");
  lua_call(L, 1, 1);
  return 1;
}
