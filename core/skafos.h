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
 * "publish", "versions", "run"), printing messages to stderr as the skafos program does.
 * Returns the process exit code (see SKAFOS_EXIT_*). Never raises. */
SKAFOS_API int skafos_main(lua_State *L, int argc, char **argv);

/* Runs the workflow `name` (found through the script lookup) with the arguments
 * argv[0..argc-1]; same reporting and exit codes as skafos_main. Never raises. */
SKAFOS_API int skafos_run_workflow(lua_State *L, const char *name, int argc, char **argv);

/* Sets up SIGINT, SIGTERM and SIGHUP so that each becomes a Lua error in L (exit code
 * 128 + the signal: 130, 143, 129) after libcurl and the compressors have stopped
 * cleanly. For hosts that want the command line's behaviour; a second signal kills the
 * process. */
SKAFOS_API void skafos_handle_sigint(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
