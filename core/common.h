/*
 * Internal contracts shared by the runtime and the native modules: the error-table
 * convention, the interrupt flag, and the C-level byte-source and byte-sink protocols that
 * let one module (skafos.zip's stream and extractor) feed or drain another (skafos.s3)
 * without Lua in between.
 */
#ifndef SKAFOS_COMMON_H
#define SKAFOS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "skafos_version.h"

/* Everything is compiled with hidden visibility; what this header declares stays visible
 * so the executable can export it to libskafos-net.so, which resolves its references to
 * the runtime (errors, secrets, the interrupt flag) against the executable. The libraries'
 * version scripts keep all of it out of their own exports (CMakeLists.txt). */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

/* The Lua modules: entry points for package.preload, for dlsym (netload.c) and for Lua's
 * all-in-one loader (`require "skafos.zip"` finds luaopen_skafos_zip in skafos.so). */
int luaopen_skafos(lua_State *L);
int luaopen_skafos_core(lua_State *L);
int luaopen_skafos_fs(lua_State *L);
int luaopen_skafos_http(lua_State *L);
int luaopen_skafos_s3(lua_State *L);
int luaopen_skafos_tasks(lua_State *L);
int luaopen_skafos_zip(lua_State *L);

/* ---- errors ------------------------------------------------------------------------
 * Operational failures return `nil, err`; err is a table {code, message, status?,
 * retryable} whose metatable ("skafos.Error") gives __tostring = message.
 * skafos_pusherror pushes nil and that table and returns 2, so a C function can
 * `return skafos_pusherror(L, "TIMEOUT", msg, 0, 1);`. status <= 0 leaves it out.
 * It may raise only on memory errors. */
int skafos_pusherror(lua_State *L, const char *code, const char *message, int status,
                     int retryable);
/* Same, but only pushes the table (no nil) and returns 1. */
int skafos_newerror(lua_State *L, const char *code, const char *message, int status,
                    int retryable);
/* The exit code an error code maps to (the table in runtime.c): every error table gets
 * its `exit` from here. */
int skafos_exit_for_code(const char *code);
/* "interrupted", naming the signal that interrupted the run when it was SIGTERM or SIGHUP. */
const char *skafos_interrupt_text(void);

/* ---- secrets -----------------------------------------------------------------------
 * Values that must never be printed or kept in an error: the API token. Whoever reads one
 * registers it with its state (core.add_secret from Lua); text that may carry it (a
 * server's error body, a response header in a trace, a module's message) is masked before
 * it is printed or stored: every occurrence becomes SKAFOS_REDACTED. skafos_newerror masks
 * its message itself. Values shorter than SKAFOS_SECRET_MIN bytes are not registered:
 * masking them would mangle ordinary words. */
#define SKAFOS_REDACTED "REDACTED"
#define SKAFOS_SECRET_MIN 4
/* Registers s (len bytes); registering one twice keeps one. May raise on memory errors. */
void skafos_add_secret(lua_State *L, const char *s, size_t len);
/* Pushes text (len bytes) with every secret of the state masked and returns it. */
const char *skafos_push_redacted(lua_State *L, const char *text, size_t len);
/* A copy of the state's secrets for code that runs without it (libcurl callbacks): one
 * malloc'd block holding a NULL-terminated array and the strings; NULL when there are
 * none (or no memory). The caller free()s it. */
char **skafos_secrets_copy(lua_State *L);
/* Copies in (n bytes) into out (outlen bytes, always NUL-terminated, truncated when short)
 * with every occurrence of each of the NULL-terminated secrets replaced by
 * SKAFOS_REDACTED. secrets may be NULL. Returns the length written. Touches no state. */
size_t skafos_mask_secrets(char *const *secrets, const char *in, size_t n, char *out,
                           size_t outlen);

/* ---- interrupts --------------------------------------------------------------------
 * The signal handler of the run that holds the signals sets a flag. Long-running C code
 * (libcurl progress callbacks, extraction loops) polls skafos_interrupted() and stops with
 * err.code = "INTERRUPTED"; the Lua hook then raises an error whose exit code is 130.
 * The flag is seen only on the thread of that run (skafos_set_interrupt_owner): runs of
 * other states, in other threads, go on. In a plain lua5.4 that loaded skafos.so no
 * handler is installed and it stays 0. */
int skafos_interrupted(void);
void skafos_set_interrupted(int on);
/* The calling thread's run holds the signals (on), or no run does (off). */
void skafos_set_interrupt_owner(int on);

/* ---- tasks --------------------------------------------------------------------------
 * What skafos.tasks' scheduler (tasks.c) knows per thread: the scheduler whose fiber runs
 * now, and how deep tasks run without fibers. Kept here in the runtime, not in the network
 * library: a thread-local of a dlopen'd library is dynamic TLS, which LeakSanitizer's scan
 * of the threads misreads (and crashes on). */
typedef struct skafos_task_tls {
  void *running;
  int depth;
} skafos_task_tls;
skafos_task_tls *skafos_task_state(void);

/* ---- byte sources ------------------------------------------------------------------
 * A full userdata that starts with this struct, and whose metatable has the field
 * `__skafos_source = true`, can be handed to skafos.s3.put as a body of known length.
 * read() fills up to n bytes and returns how many (0 only at the end); on failure it
 * returns (size_t)-1 and writes a message into errbuf (size errlen). reset() goes back
 * to byte 0 (for a retried upload); returns 0 on success, -1 with errbuf set.
 * These callbacks never touch a lua_State: they may run inside libcurl callbacks. */
typedef struct skafos_source {
  int64_t size;
  size_t (*read)(struct skafos_source *src, char *buf, size_t n, char *errbuf,
                 size_t errlen);
  int (*reset)(struct skafos_source *src, char *errbuf, size_t errlen);
} skafos_source;

#define SKAFOS_SOURCE_FIELD "__skafos_source"

/* Returns the source at stack index idx, or NULL if the value is not one. */
skafos_source *skafos_tosource(lua_State *L, int idx);

/* ---- byte sinks --------------------------------------------------------------------
 * A full userdata that starts with this struct, and whose metatable has the field
 * `__skafos_sink = true`, can be handed to skafos.s3.get as its destination: the body
 * of a 2xx answer goes to write() as it arrives. write() takes all n bytes and returns
 * 0, or -1 with a message in errbuf (size errlen) and `code` pointing at a stable error
 * code ("INTEGRITY", "NOT_STREAMABLE", ...; NULL means "SINK"). reset() forgets every
 * byte written so far (a retried download starts again at byte 0); 0 or -1 as write.
 * These callbacks never touch a lua_State: they run inside libcurl callbacks. */
typedef struct skafos_sink {
  int (*write)(struct skafos_sink *snk, const char *buf, size_t n, char *errbuf,
               size_t errlen);
  int (*reset)(struct skafos_sink *snk, char *errbuf, size_t errlen);
  const char *code; /* of the latest failure; static storage */
  /* Optional (NULL unless the sink can go on after an interrupted download). resume():
   * the byte offset it can continue from (0: the start) and the ETag of the object those
   * bytes came from (into etag, etaglen bytes), or -1 with errbuf set. start(): called
   * before the first body byte, with offset 0 for a whole body (forget everything and
   * remember etag) or the resume offset for a range that continues there. */
  int64_t (*resume)(struct skafos_sink *snk, char *etag, size_t etaglen, char *errbuf,
                    size_t errlen);
  int (*start)(struct skafos_sink *snk, int64_t offset, const char *etag, char *errbuf,
               size_t errlen);
} skafos_sink;

#define SKAFOS_SINK_FIELD "__skafos_sink"

/* Returns the sink at stack index idx, or NULL if the value is not one. */
skafos_sink *skafos_tosink(lua_State *L, int idx);

/* ---- misc --------------------------------------------------------------------------- */
/* curl_global_init, once per process (call from luaopen_*, on the main thread). Returns
 * 0, or -1 when libcurl cannot start. */
int skafos_curl_init(void);
/* The executable only (netload.c): start loading the network library in a thread. */
void skafos_net_prefetch(void);

/* The per-state connection cache (a CURLSH sharing connections, DNS and TLS sessions),
 * created on first use and owned by a registry userdata, so skafos.http and skafos.s3
 * reuse each other's connections. Returned as void * to keep curl.h out of this header;
 * NULL when libcurl could not make one (transfers then work without sharing). */
void *skafos_curl_share(lua_State *L);

/* A registry field the skafos executable sets to true before skafos_openlibs: its share
 * directory is then found relative to the executable (core.share_dir in runtime.c). */
#define SKAFOS_EXECUTABLE_KEY "skafos.executable"

/* "skafos/<version> libcurl/<version>", built once. */
const char *skafos_user_agent(void);

/* Trace level: 0 off; >= 1 when SKAFOS_TRACE=1 or the CLI saw -vv. Stored in the
 * registry by the CLI (skafos.core.set_trace) so it is per state. */
int skafos_trace_level(lua_State *L);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

/* ---- the system (sysdep.c), hidden ---------------------------------------------------
 * Where the running executable and the code of a function live, by whatever the platform
 * offers (CMake's SKAFOS_HAVE_* checks), with portable fallbacks. */
/* The skafos executable's argv[0], for platforms that cannot name the running executable;
 * main calls it before any thread starts. */
void skafos_set_argv0(const char *argv0);
/* The absolute, resolved path of the running executable into buf (size bytes): 0, or -1
 * when the system cannot tell (or buf is too small). */
int skafos_exe_path(char *buf, size_t size);
/* Whether fn's code sits in the main program (0) or in a shared object (1, its resolved
 * path into buf, size bytes); -1 when the system cannot tell. */
int skafos_code_path(const void *fn, char *buf, size_t size);

#endif
