/*
 * The process-wide state an embedding host shares with skafos: signal handlers (opt-in,
 * installed only during a run and put back after it), the interrupt flag (cleared when a
 * run starts), nothing left pointing at a closed state, and one-time initialisation from
 * two threads at once. Exit status 0 when every check holds; each failure is printed.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skafos.h>

static int failures = 0;

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                \
      failures++;                                                                         \
    }                                                                                     \
  } while (0)

static volatile sig_atomic_t host_got = 0;
static void host_handler(int sig) { host_got = sig; }

static char dir[] = "/tmp/skafos-embed.XXXXXX";

static const char *script(const char *name, const char *body) {
  static char path[4][256];
  static int next = 0;
  char *p = path[next++ % 4];
  FILE *f;
  snprintf(p, 256, "%s/%s", dir, name);
  f = fopen(p, "w");
  if (f == NULL || fputs(body, f) < 0 || fclose(f) != 0) {
    perror(p);
    exit(2);
  }
  return p;
}

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  skafos_openlibs(L);
  return L;
}

static int run(lua_State *L, const char *file) {
  const char *argv[] = {"run", file};
  return skafos_main(L, 2, argv);
}

/* Each thread: its own state running threads_script: a few refused connections
 * (libcurl's one-time set-up and the User-Agent raced before) and a small archive. */
static const char *threads_script;

static void *worker(void *arg) {
  lua_State *L = new_state();
  int *code = arg;
  *code = run(L, threads_script);
  lua_close(L);
  return NULL;
}

/* The opted-in run of case 5, in a thread of its own. */
static const char *interrupted_script;

static void *held_worker(void *arg) {
  lua_State *L = new_state();
  int *code = arg;
  skafos_handle_sigint(L);
  *code = run(L, interrupted_script);
  lua_close(L);
  return NULL;
}

int main(void) {
  struct sigaction sa, now;
  lua_State *L;
  int code, i, codes[2];
  pthread_t t[2];
  const char *msg, *what;
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = host_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);

  /* 1. Opted in: an interrupt during a run ends it with 130... */
  L = new_state();
  skafos_handle_sigint(L);
  code = run(L, script("interrupt.lua",
                       /* system() ignores SIGINT while it waits: the kill comes later */
                       "os.execute('(sleep 0.2; kill -INT ' .. require('skafos.fs').getpid() .. ') &')\n"
                       "local t = os.clock() while os.clock() - t < 10 do end\n"
                       "print('not interrupted')\n"));
  CHECK(code == SKAFOS_EXIT_INTERRUPTED, "an interrupted run exits %d, not 130", code);
  CHECK(skafos_last_error(L, &what, &msg) == SKAFOS_EXIT_INTERRUPTED && what != NULL &&
            strcmp(what, "INTERRUPTED") == 0,
        "the run's error is %s", what ? what : "(none)");
  CHECK(host_got == 0, "the host's handler saw the interrupt meant for skafos");
  /* ...the host's handler is back once the run is over... */
  sigaction(SIGINT, NULL, &now);
  CHECK(now.sa_handler == host_handler, "the host's SIGINT handler was not put back");
  /* ...and the next run on the same state starts with the interrupt cleared. */
  code = run(L, script("ok.lua", "local zip = require 'skafos.zip'\nreturn 0\n"));
  CHECK(code == 0, "a run after an interrupt exits %d", code);
  CHECK(skafos_last_error(L, &what, &msg) == 0 && what == NULL, "a good run reports an error");
  lua_close(L);

  /* 2. Not opted in: skafos leaves SIGINT to the host, even during a run. */
  L = new_state();
  host_got = 0;
  code = run(L, script("host.lua",
                       "os.execute('(sleep 0.2; kill -INT ' .. require('skafos.fs').getpid() .. ') &')\n"
                       "local t = os.clock() while os.clock() - t < 1 do end\n"
                       "return 0\n"));
  CHECK(code == 0, "a run that did not opt in exits %d", code);
  CHECK(host_got == SIGINT, "the host's handler did not see its interrupt");
  lua_close(L);

  /* 3. Nothing refers to a closed state: an interrupt now goes to the host alone. */
  host_got = 0;
  raise(SIGINT);
  CHECK(host_got == SIGINT, "after lua_close the host's handler did not run");

  /* 4. Two states in two threads at once. */
  threads_script = script("threads.lua",
         "local http, zip = require 'skafos.http', require 'skafos.zip'\n"
         "for _ = 1, 10 do\n"
         "  local r, e = http.request { url = 'http://127.0.0.1:1/', timeout = 5 }\n"
         "  assert(r == nil and e.code == 'COULDNT_CONNECT', tostring(e and e.code))\n"
         "end\n"
         "local f = os.tmpname()\n"
         "local out = io.open(f, 'w') out:write(('x'):rep(100000)) out:close()\n"
         "assert(zip.create(f .. '.zip', { f }))\n"
         "os.remove(f) os.remove(f .. '.zip')\n"
         "return 0\n");
  for (i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, worker, &codes[i]);
  for (i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    CHECK(codes[i] == 0, "thread %d exited %d", i, codes[i]);
  }
  /* 5. The interrupt of a run that holds the signals stops that run alone: a state in
   * another thread goes on compressing while the first one stays interrupted. */
  interrupted_script = script("held.lua",
         "local fs = require 'skafos.fs'\n"
         "local function spin(s) local t = fs.clock() while fs.clock() - t < s do end end\n"
         "os.execute('(sleep 0.3; kill -INT ' .. fs.getpid() .. ') &')\n"
         "local ok, e = pcall(spin, 20)\n"
         "assert(not ok and e.code == 'INTERRUPTED', 'not interrupted')\n"
         "spin(2) -- still interrupted: the flag lasts until this run ends\n"
         "error(e)\n");
  threads_script = script("others.lua",
         "local fs, zip = require 'skafos.fs', require 'skafos.zip'\n"
         "local f = os.tmpname()\n"
         "local out = io.open(f, 'w') out:write(('x'):rep(1000)) out:close()\n"
         "local t, n = fs.clock(), 0\n"
         "while fs.clock() - t < 3 do\n"
         "  local ok, e = zip.create(f .. '.zip', { f })\n"
         "  assert(ok, e and e.code)\n"
         "  n = n + 1\n"
         "end\n"
         "os.remove(f) os.remove(f .. '.zip')\n"
         "return n > 0 and 0 or 1\n");
  pthread_create(&t[1], NULL, worker, &codes[1]);
  pthread_create(&t[0], NULL, held_worker, &codes[0]);
  for (i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  CHECK(codes[0] == SKAFOS_EXIT_INTERRUPTED, "the run holding the signals exited %d", codes[0]);
  CHECK(codes[1] == 0, "the run in the other thread exited %d: the interrupt reached it",
        codes[1]);
  sigaction(SIGINT, NULL, &now);
  CHECK(now.sa_handler == host_handler, "the host's SIGINT handler was not put back");

  skafos_cleanup();
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  }
  if (failures == 0)
    printf("embed_signals: all checks passed\n");
  return failures ? 1 : 0;
}
