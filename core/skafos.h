/*
 * skafos: the embedding API. A C program that owns a lua_State gets every native module
 * (skafos.http, skafos.s3, skafos.zip, cjson) and the workflow scripts with one call,
 * then runs a workflow exactly as the `skafos` command line would.
 */
#ifndef SKAFOS_H
#define SKAFOS_H

#include "skafos_version.h" /* SKAFOS_VERSION, SKAFOS_VERSION_MAJOR/MINOR/PATCH/NUM */

/* Only what is marked SKAFOS_API is exported from libskafos.so (see SKAFOS_ABI in
 * CMakeLists.txt for when its soname changes). */
#ifndef SKAFOS_API
#if defined(__GNUC__) || defined(__clang__)
#define SKAFOS_API __attribute__((visibility("default")))
#else
#define SKAFOS_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* inside the extern "C" block, as lua.hpp does: Lua's own headers have none */
#include <lua.h>

#define SKAFOS_EXIT_OK 0
#define SKAFOS_EXIT_FAILED 1
#define SKAFOS_EXIT_USAGE 2
#define SKAFOS_EXIT_AUTH 3
#define SKAFOS_EXIT_NOT_FOUND 4
#define SKAFOS_EXIT_CONFLICT 5
#define SKAFOS_EXIT_NETWORK 6
#define SKAFOS_EXIT_INTEGRITY 7
#define SKAFOS_EXIT_AFTER_HOOK 8 /* done (and reported), but a hook run after it failed */
#define SKAFOS_EXIT_INTERRUPTED 130

/* The runtime's version string, e.g. "0.1.0". */
SKAFOS_API const char *skafos_version(void);

/* Puts every native module into package.preload (never into globals) and installs the
 * script searcher (SKAFOS_PATH, ./.skafos, $XDG_CONFIG_HOME/skafos, the share directory,
 * then the copies compiled into the library). Call after luaL_openlibs. Returns 0, or
 * raises a Lua error on failure (call it from protected code, or check lua_pcall). */
SKAFOS_API int skafos_openlibs(lua_State *L);

/* Runs the command line `skafos argv[0] argv[1] ...` (argv[0] is the command, e.g.
 * "publish", "versions", "run"), printing results to stdout and messages to stderr as the
 * skafos program does. Returns the process exit code (see SKAFOS_EXIT_*). Never raises.
 * argv is only read (from C, pass a `char **` with a cast: (const char *const *)argv).
 * One run at a time per state; different states may run in different threads. */
SKAFOS_API int skafos_main(lua_State *L, int argc, const char *const *argv);

/* Runs the workflow `name` (found through the script lookup) with the arguments
 * argv[0..argc-1]; same output, exit codes and rules as skafos_main. */
SKAFOS_API int skafos_run_workflow(lua_State *L, const char *name, int argc, const char *const *argv);

/* The outcome of the last run on L, without parsing its output; valid until the next run
 * on L (or lua_close), owned by L.
 * skafos_push_result pushes the result document the command printed (a table with the
 * fields of its --json output, see docs/json.md; nil when it printed none) and returns
 * its Lua type. skafos_result_field returns one field of it as a string ("version",
 * "sha256", "path", ...; numbers converted), or NULL. skafos_last_error returns the exit
 * code of the run's failure and sets *code (a stable upper-case code such as "NOT_FOUND")
 * and *message (as printed), or returns 0 and sets both to NULL when it succeeded. */
SKAFOS_API int skafos_push_result(lua_State *L);
SKAFOS_API const char *skafos_result_field(lua_State *L, const char *field);
SKAFOS_API int skafos_last_error(lua_State *L, const char **code, const char **message);

/* Releases what skafos holds for the whole process (libcurl's global state). Call once,
 * at the end, after every state that used skafos is closed; skafos is not usable after. */
SKAFOS_API void skafos_cleanup(void);

/* Opts L in to the command line's handling of SIGINT, SIGTERM and SIGHUP: during each
 * run on L (skafos_main, skafos_run_workflow) they become a Lua error (exit code 128 + the
 * signal: 130, 143, 129) after libcurl and the compressors have stopped cleanly, and a
 * second one kills the process. The host's own handlers are put back when the run ends,
 * and every run starts with the interrupt cleared. Without it skafos never touches
 * signal handlers. */
SKAFOS_API void skafos_handle_sigint(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
