/*
 * skafos.tasks: runs several Lua functions at once, each in a coroutine on its own fiber
 * (tasks.c), their transfers sharing one libcurl multi handle; each task's error stays its
 * own. tasks.run(fns, opts) -> results in order.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "common.h"
#include "tasks.h"
#include "transfer.h"

#define DEFAULT_CONCURRENCY 4
#define MAX_CONCURRENCY 64
#define HOOK_COUNT 1000 /* instructions between looks at the interrupt flag */

typedef struct task {
  lua_State *from; /* the caller's state, for lua_resume */
  lua_State *co;
  tasks_fiber *f;
  int status; /* lua_resume's last */
  int nres;
  int state; /* T_WAITING, T_RUNNING, T_ENDED */
  const char *failed; /* set instead of running it: an error code */
} task;

enum { T_WAITING, T_RUNNING, T_ENDED };

/* A task's Lua code polls the interrupt flag, as the host's hook does for the main state
 * (which it alone gets), so an endless loop in a task still stops at Ctrl-C. */
static void task_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (!skafos_interrupted())
    return;
  lua_sethook(L, NULL, 0, 0);
  skafos_newerror(L, "INTERRUPTED", skafos_interrupt_text(), 0, 0);
  lua_error(L);
}

/* The fiber's body. Every error stays in the coroutine: nothing jumps out of here. A
 * coroutine.yield at the task's own level lets the other tasks run a round. */
static void task_entry(void *ud) {
  task *t = ud;
  int nres = 0;
  int st = lua_resume(t->co, t->from, 0, &nres);
  while (st == LUA_YIELD) {
    lua_pop(t->co, nres);
    transfer_task_sleep(0);
    st = lua_resume(t->co, t->from, 0, &nres);
  }
  t->status = st;
  t->nres = nres;
}

/* Pushes v as an error table: a skafos error as it is, anything else as FAILED with its
 * text. */
static void push_as_error(lua_State *L, int v) {
  v = lua_absindex(L, v);
  if (lua_type(L, v) == LUA_TTABLE) {
    lua_pushvalue(L, v);
    return;
  }
  skafos_newerror(L, "FAILED", luaL_tolstring(L, v, NULL), 0, 0);
  lua_remove(L, -2);
}

/* collect(task) -> result table, under lua_pcall: {ok = true, value = first, values =
 * {n = ..., ...}} or {ok = false, error = err}. A task fails when it raised, or when it
 * returned nil (or false) and an error, as the library calls do. */
static int collect(lua_State *L) {
  task *t = lua_touserdata(L, 1);
  int base, n, i;
  lua_settop(L, 1);
  lua_createtable(L, 0, 3); /* 2: the result */
  if (t->failed) {
    lua_pushboolean(L, 0);
    lua_setfield(L, 2, "ok");
    skafos_newerror(L, t->failed,
                    strcmp(t->failed, "INTERRUPTED") == 0 ? skafos_interrupt_text()
                    : strcmp(t->failed, "NO_MEMORY") == 0
                        ? "no memory to start the task"
                        : "not started: the transfer engine failed for the tasks before it",
                    0, 0);
    lua_setfield(L, 2, "error");
    lua_settop(L, 2);
    return 1;
  }
  n = t->status == LUA_OK ? t->nres : 1;
  luaL_checkstack(L, n + 4, "too many results of a task");
  base = lua_gettop(L);
  lua_xmove(t->co, L, n); /* base+1 .. base+n: what the task returned, or its error */
  t->nres = 0;
  if (t->status != LUA_OK || (n >= 2 && !lua_toboolean(L, base + 1) && !lua_isnil(L, base + 2))) {
    lua_pushboolean(L, 0);
    lua_setfield(L, 2, "ok");
    push_as_error(L, t->status != LUA_OK ? base + 1 : base + 2);
    lua_setfield(L, 2, "error");
    lua_settop(L, 2);
    return 1;
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, 2, "ok");
  lua_pushvalue(L, base + 1);
  lua_setfield(L, 2, "value");
  lua_createtable(L, n, 1);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, base + i);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setfield(L, 2, "values");
  lua_settop(L, 2);
  return 1;
}

/* tasks.run(fns, opts) -> results, failed. fns: a sequence of functions; opts.concurrency
 * (1..64, default 4) runs at most that many at once; opts.on_done(i, result) is called as
 * each ends. An error of on_done, or an interrupt, stops the start of further tasks and
 * is raised once the running ones end. results[i] = {ok, value, values} or {ok = false,
 * error}; failed: how many failed. */
static int tasks_run(lua_State *L) {
  lua_Integer conc = DEFAULT_CONCURRENCY;
  int n, i, next = 1, active = 0, ended = 0, failed = 0, stopping = 0, pending = 0;
  int results, threads, on_done = 0, running;
  task *t;
  tasks_sched *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "concurrency") != LUA_TNIL) {
      int isnum;
      conc = lua_tointegerx(L, -1, &isnum);
      if (!isnum || conc < 1 || conc > MAX_CONCURRENCY)
        return luaL_error(L, "tasks.run: concurrency must be an integer from 1 to %d",
                          MAX_CONCURRENCY);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "on_done") != LUA_TNIL) {
      luaL_checktype(L, -1, LUA_TFUNCTION);
      on_done = lua_gettop(L);
    } else {
      lua_pop(L, 1);
    }
  }
  if (tasks_in_task())
    return luaL_error(L, "tasks.run: a task cannot run tasks of its own; "
                         "add them to the outer tasks.run instead");
  n = (int)luaL_len(L, 1);
  for (i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) != LUA_TFUNCTION)
      return luaL_error(L, "tasks.run: task %d is a %s, not a function", i,
                        luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  /* Everything that may raise happens before the first fiber starts: once one runs, only
   * protected calls follow until every fiber has ended. */
  t = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *t, 0);
  memset(t, 0, (size_t)(n > 0 ? n : 1) * sizeof *t);
  lua_createtable(L, n, 0);
  threads = lua_gettop(L);
  lua_createtable(L, n, 0);
  results = lua_gettop(L);
  for (i = 0; i < n; i++) {
    t[i].from = L;
    t[i].co = lua_newthread(L);
    lua_sethook(t[i].co, task_hook, LUA_MASKCOUNT, HOOK_COUNT);
    lua_geti(L, 1, i + 1);
    lua_xmove(L, t[i].co, 1);
    lua_rawseti(L, threads, i + 1);
  }
  luaL_checkstack(L, 8, NULL);
  if ((s = tasks_sched_new()) == NULL)
    return skafos_pusherror(L, "NO_MEMORY", "no memory to run tasks", 0, 0);
  while (ended < n) {
    if (!stopping && skafos_interrupted())
      stopping = 1;
    while (next <= n && active < conc) {
      task *k = &t[next - 1];
      next++;
      if (stopping) {
        k->failed = skafos_interrupted() ? "INTERRUPTED" : "ABORTED";
      } else if ((k->f = tasks_fiber_new(s, task_entry, k)) == NULL) {
        k->failed = "NO_MEMORY";
      } else {
        k->state = T_RUNNING;
        active++;
        continue;
      }
      k->state = T_ENDED; /* collected below */
      active++;
    }
    for (i = 0, running = 0; i < next - 1; i++)
      running += t[i].state == T_RUNNING;
    if (running && tasks_sched_step(s, 0.1) != 0 && !stopping) {
      /* the multi handle failed: the transfers see it and fail; start nothing more */
      stopping = 1;
    }
    for (i = 0; i < next - 1; i++) {
      task *k = &t[i];
      if (k->state == T_RUNNING && k->f && tasks_fiber_done(k->f)) {
        tasks_fiber_free(k->f);
        k->f = NULL;
        k->state = T_ENDED;
      }
      if (k->state != T_ENDED)
        continue;
      k->state = -1; /* collected */
      active--;
      ended++;
      lua_pushcfunction(L, collect);
      lua_pushlightuserdata(L, k);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        /* No memory for the result, or the host's interrupt hook raised at the call (it
         * fires on the caller's state only): the task counts as failed with it, and the
         * error goes on up once every task has ended, as it would without tasks. */
        if (!pending) {
          lua_pushvalue(L, -1);
          lua_insert(L, results); /* below everything this loop pushes and pops */
          pending = results++; /* only the results table was above it */
          stopping = 1;
        }
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "ok");
        lua_insert(L, -2);
        lua_setfield(L, -2, "error");
      }
      lua_getfield(L, -1, "ok");
      failed += !lua_toboolean(L, -1);
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawseti(L, results, i + 1);
      lua_pushnil(L);
      lua_rawseti(L, threads, i + 1); /* the coroutine may go */
      if (on_done && !pending) {
        lua_pushvalue(L, on_done);
        lua_pushinteger(L, i + 1);
        lua_rotate(L, -3, -1); /* on_done, i, result */
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
          pending = lua_gettop(L); /* kept there until the end */
          stopping = 1;
        }
      } else {
        lua_pop(L, 1);
      }
    }
  }
  tasks_sched_free(s);
  if (pending) {
    lua_pushvalue(L, pending);
    return lua_error(L);
  }
  lua_pushvalue(L, results);
  lua_pushinteger(L, failed);
  return 2;
}

/* tasks.concurrent() -> whether tasks really overlap on this system (false without
 * ucontext: they then run one after the other, with the same results). */
static int tasks_concurrent_fn(lua_State *L) {
  lua_pushboolean(L, tasks_concurrent());
  return 1;
}

/* tasks.running() -> whether the caller is inside a task (a progress bar, drawn in place,
 * would then overwrite another task's). */
static int tasks_running_fn(lua_State *L) {
  lua_pushboolean(L, tasks_in_task());
  return 1;
}

static const luaL_Reg tasks_funcs[] = {{"run", tasks_run},
                                       {"concurrent", tasks_concurrent_fn},
                                       {"running", tasks_running_fn},
                                       {NULL, NULL}};

int luaopen_skafos_tasks(lua_State *L) {
  if (skafos_curl_init() != 0)
    return luaL_error(L, "libcurl failed to initialise");
  luaL_newlib(L, tasks_funcs);
  return 1;
}
