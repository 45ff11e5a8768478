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

/*
 * Rules that hold for every function below (each function's comment adds its own):
 *
 * Ownership. skafos never takes ownership of what you pass: L stays yours (close it with
 * lua_close), argv and strings are only read during the call. Nothing skafos returns is
 * yours to free: strings are owned by L (its registry) or are static, and say how long
 * they stay valid. What skafos allocates for a state (modules, connection cache, result
 * and error) is freed by lua_close(L); what it holds for the process, by skafos_cleanup.
 *
 * Threads. A lua_State, with the coroutines in it, is used by one thread at a time (Lua's
 * own rule); skafos adds no lock to it, and one run at a time per state (do not call into
 * a state from a hook or callback of a run under way on it). Different states may be
 * used in different threads at the same time, all functions included, with no lock of
 * yours: they share nothing but one-time initialisations (libcurl and OpenSSL, done on
 * the first `require "skafos.http"` or `"skafos.s3"` in any state; the CRC tables),
 * safe when two threads get there at once, and, for states opted in with
 * skafos_handle_sigint, the signal handlers (see there). If your program uses libcurl itself from several
 * threads, call curl_global_init before starting them, as libcurl asks (curl 7.84 and
 * later make it safe anyway). skafos_cleanup is the exception: once, with no state left.
 *
 * Errors. Functions that run something (skafos_main, skafos_run_workflow) never raise and
 * report failures by their return value, an exit code (SKAFOS_EXIT_*), with the message
 * printed to stderr; skafos_last_error then gives the error's stable code and message.
 * skafos_openlibs raises a Lua error for what only a broken process gives (no memory, a
 * build missing its built-in files); the readers return NULL or nil for what is not
 * there. Misuse (a NULL L, a closed state) is undefined, as with Lua's own API.
 */

/* The library's version string, e.g. "0.1.0" (SKAFOS_VERSION is the header's).
 * Ownership: a static string, valid for the life of the process; do not free it.
 * Threads: any thread, any time, before or without a state.
 * Errors: none. */
SKAFOS_API const char *skafos_version(void);

/* Puts every native module into package.preload (never into globals) and installs the
 * script searcher (SKAFOS_PATH, ./.skafos, $XDG_CONFIG_HOME/skafos, the share directory,
 * then the copies compiled into the library). Call once per state, after luaL_openlibs.
 * Ownership: what it registers belongs to L and goes with lua_close(L).
 * Threads: the thread using L; other states may do the same at the same time.
 * Errors: returns 0; raises a Lua error (no memory, a broken build) through L, so from
 * outside protected code a failure is a Lua panic: call it under lua_pcall (through a
 * lua_CFunction) when the process must survive that. */
SKAFOS_API int skafos_openlibs(lua_State *L);

/* Runs the command line `skafos argv[0] argv[1] ...` (argv[0] is the command, e.g.
 * "publish", "versions", "run"), printing results to stdout and messages to stderr as the
 * skafos program does.
 * Ownership: argv and its strings are only read during the call (from C, pass a
 * `char **` with a cast: (const char *const *)argv); L's stack is as it was on return.
 * The run's result and error stay in L until its next run (see skafos_last_error).
 * Threads: the thread using L, one run at a time per state; different states may run in
 * different threads at once. With skafos_handle_sigint(L), see there.
 * Errors: returns the process exit code (SKAFOS_EXIT_OK, or one of SKAFOS_EXIT_*; a
 * script run with "run" may return its own); never raises. */
SKAFOS_API int skafos_main(lua_State *L, int argc, const char *const *argv);

/* Runs the workflow `name` (found through the script lookup) with the arguments
 * argv[0..argc-1], as skafos_main(L, {name, argv...}) would.
 * Ownership, threads and errors: as skafos_main (name is only read). */
SKAFOS_API int skafos_run_workflow(lua_State *L, const char *name, int argc, const char *const *argv);

/* The outcome of the last run on L, without parsing its output.
 * skafos_push_result pushes the result document the command printed (a table with the
 * fields of its --json output, see docs/json.md; nil when it printed none, or before any
 * run) and returns its Lua type (LUA_TTABLE or LUA_TNIL).
 * skafos_result_field returns one field of it as a string ("version", "sha256", "path",
 * ...; numbers converted), or NULL when there is no such field, it is neither a string
 * nor a number, or no run printed a result.
 * skafos_last_error returns the exit code of the error that ended the last run and sets
 * *code (a stable upper-case code such as "NOT_FOUND") and *message (as printed, secrets
 * masked); it returns 0 and sets both to NULL when that run ended without an error (it
 * succeeded, or its script returned an exit code of its own, as publish does with 8) or
 * before any run. code and message may each be NULL when not wanted.
 * Ownership: the table pushed is L's like any Lua value (pop it when done); the strings
 * are owned by L, not to be freed or written, and valid until the next run on L or
 * lua_close(L), whichever comes first. Each leaves L's stack as it was, but for the value skafos_push_result
 * pushes (it needs one free slot; the others a few, as any Lua API call).
 * Threads: the thread using L, between runs.
 * Errors: none beyond the NULL and 0 results above; they do not raise, except for a
 * memory error in skafos_result_field's conversion of a number. */
SKAFOS_API int skafos_push_result(lua_State *L);
SKAFOS_API const char *skafos_result_field(lua_State *L, const char *field);
SKAFOS_API int skafos_last_error(lua_State *L, const char **code, const char **message);

/* Releases what skafos holds for the whole process (libcurl's global state).
 * Ownership: after it, nothing of skafos's is held but what live states own.
 * Threads: once, at the end, from one thread, after every state that used skafos is
 * closed and while no other thread uses skafos or libcurl; skafos is not usable after.
 * Errors: none; calling it when no transfer module was ever loaded does nothing. */
SKAFOS_API void skafos_cleanup(void);

/* Opts L in to the command line's handling of SIGINT, SIGTERM and SIGHUP: during each
 * run on L (skafos_main, skafos_run_workflow) they become a Lua error (exit code 128 + the
 * signal: 130, 143, 129) after libcurl and the compressors have stopped cleanly, and a
 * second one kills the process. The host's own handlers are put back when the run ends,
 * and every run starts with the interrupt cleared. Without it skafos never touches
 * signal handlers.
 * Ownership: a flag in L's registry; it goes with lua_close(L). No handler refers to L
 * outside its runs.
 * Threads: the thread using L, between runs. Signal handlers are per process: one run at
 * a time holds them (an opted-in run that starts while another holds them runs without).
 * The interrupt reaches that run alone: runs of other states, in other threads, go on
 * while it stops; states that did not opt in never change it.
 * Errors: none. */
SKAFOS_API void skafos_handle_sigint(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
