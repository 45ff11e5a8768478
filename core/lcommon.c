/*
 * The small pieces every native module shares: `nil, err` tables with a stable code,
 * the process-wide interrupt flag set by the host's SIGINT handler, and the lookup of
 * C-level byte sources and sinks. See common.h for the contracts.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "common.h"

#define ERROR_MT "skafos.Error"

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, 1, "code");
  }
  luaL_tolstring(L, -1, NULL);
  return 1;
}

int skafos_newerror(lua_State *L, const char *code, const char *message, int status,
                    int retryable) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  message = message ? message : code;
  /* the C modules stop with a plain "interrupted": name the signal, as the hook does */
  if (strcmp(code, "INTERRUPTED") == 0 && strcmp(message, "interrupted") == 0)
    message = skafos_interrupt_text();
  skafos_push_redacted(L, message, strlen(message));
  lua_setfield(L, -2, "message");
  if (status > 0) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
  }
  lua_pushboolean(L, retryable);
  lua_setfield(L, -2, "retryable");
  lua_pushinteger(L, skafos_exit_for_code(code));
  lua_setfield(L, -2, "exit");
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "skafos.Error");
    lua_setfield(L, -2, "__name");
  }
  lua_setmetatable(L, -2);
  return 1;
}

int skafos_pusherror(lua_State *L, const char *code, const char *message, int status,
                     int retryable) {
  lua_pushnil(L);
  skafos_newerror(L, code, message, status, retryable);
  return 2;
}

/* ---- secrets: a registry list of strings, usually one (the token) --------------------- */

#define SECRETS_KEY "skafos.secrets"

/* Pushes the state's secret list, creating it when create is set; returns 0 (and pushes
 * nothing) when there is none. */
static int push_secrets(lua_State *L, int create) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, SECRETS_KEY) == LUA_TTABLE)
    return 1;
  lua_pop(L, 1);
  if (!create)
    return 0;
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, SECRETS_KEY);
  return 1;
}

void skafos_add_secret(lua_State *L, const char *s, size_t len) {
  lua_Integer i, n;
  if (s == NULL || len < SKAFOS_SECRET_MIN)
    return;
  push_secrets(L, 1);
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    size_t l;
    const char *have;
    lua_rawgeti(L, -1, i);
    have = lua_tolstring(L, -1, &l);
    lua_pop(L, 1);
    if (l == len && memcmp(have, s, len) == 0) {
      lua_pop(L, 1);
      return;
    }
  }
  lua_pushlstring(L, s, len);
  lua_rawseti(L, -2, n + 1);
  lua_pop(L, 1);
}

/* Length of the secret (from list at idx, n of them) that starts text[at..], else 0. */
static size_t secret_at(lua_State *L, int idx, lua_Integer n, const char *text, size_t len,
                        size_t at) {
  lua_Integer i;
  for (i = 1; i <= n; i++) {
    size_t l;
    const char *sec;
    lua_rawgeti(L, idx, i);
    sec = lua_tolstring(L, -1, &l);
    lua_pop(L, 1); /* the list keeps the string alive */
    if (sec != NULL && l > 0 && l <= len - at && memcmp(text + at, sec, l) == 0)
      return l;
  }
  return 0;
}

const char *skafos_push_redacted(lua_State *L, const char *text, size_t len) {
  luaL_Buffer b;
  lua_Integer n = 0;
  size_t i = 0, run = 0;
  int list;
  if (push_secrets(L, 0)) {
    n = (lua_Integer)lua_rawlen(L, -1);
    lua_pop(L, 1); /* the registry keeps it */
  }
  if (n == 0)
    return lua_pushlstring(L, text, len);
  push_secrets(L, 0);
  list = lua_gettop(L);
  luaL_buffinit(L, &b);
  while (i < len) {
    size_t hit = secret_at(L, list, n, text, len, i);
    if (hit == 0) {
      i++;
      continue;
    }
    luaL_addlstring(&b, text + run, i - run);
    luaL_addstring(&b, SKAFOS_REDACTED);
    i += hit;
    run = i;
  }
  luaL_addlstring(&b, text + run, len - run);
  luaL_pushresult(&b);
  lua_remove(L, list);
  return lua_tostring(L, -1);
}

char **skafos_secrets_copy(lua_State *L) {
  lua_Integer i, n;
  size_t bytes = 0, off;
  char **v;
  if (!push_secrets(L, 0))
    return NULL;
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    bytes += lua_rawlen(L, -1) + 1;
    lua_pop(L, 1);
  }
  off = (size_t)(n + 1) * sizeof *v;
  v = n > 0 ? malloc(off + bytes) : NULL;
  if (v != NULL) {
    for (i = 1; i <= n; i++) {
      size_t l;
      const char *s;
      lua_rawgeti(L, -1, i);
      s = lua_tolstring(L, -1, &l);
      v[i - 1] = (char *)v + off;
      memcpy(v[i - 1], s, l + 1);
      off += l + 1;
      lua_pop(L, 1);
    }
    v[n] = NULL;
  }
  lua_pop(L, 1);
  return v;
}

size_t skafos_mask_secrets(char *const *secrets, const char *in, size_t n, char *out,
                           size_t outlen) {
  static const char mask[] = SKAFOS_REDACTED;
  size_t i = 0, o = 0;
  if (outlen == 0)
    return 0;
  while (i < n && o < outlen - 1) {
    size_t k, hit = 0;
    for (k = 0; secrets != NULL && secrets[k] != NULL && hit == 0; k++) {
      size_t l = strlen(secrets[k]);
      if (l > 0 && l <= n - i && memcmp(in + i, secrets[k], l) == 0)
        hit = l;
    }
    if (hit == 0) {
      out[o++] = in[i++];
      continue;
    }
    for (k = 0; k < sizeof mask - 1 && o < outlen - 1; k++)
      out[o++] = mask[k];
    i += hit;
  }
  out[o] = '\0';
  return o;
}

/* Set by a signal handler, read by transfers and compressors in any thread: a lock-free
 * atomic (safe in a handler, and no data race between threads). */
static atomic_int interrupted = 0;

/* The thread whose run holds the signals, by the address of a thread-local byte (unique
 * per live thread, and atomic to compare, where a pthread_t need not be); 0 for none. */
static _Thread_local char this_thread;
static _Atomic(uintptr_t) owner = 0;

int skafos_interrupted(void) {
  uintptr_t o;
  if (atomic_load(&interrupted) == 0)
    return 0;
  o = atomic_load(&owner);
  return o == 0 || o == (uintptr_t)&this_thread;
}

void skafos_set_interrupt_owner(int on) {
  atomic_store(&owner, on ? (uintptr_t)&this_thread : (uintptr_t)0);
}

void skafos_set_interrupted(int on) { atomic_store(&interrupted, on ? 1 : 0); }

static _Thread_local skafos_task_tls task_tls;

skafos_task_tls *skafos_task_state(void) { return &task_tls; }

skafos_source *skafos_tosource(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  skafos_source *src = NULL;
  if (p == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx))
    return NULL;
  /* stack: ... mt */
  if (lua_getfield(L, -1, SKAFOS_SOURCE_FIELD) == LUA_TBOOLEAN && lua_toboolean(L, -1))
    src = (skafos_source *)p;
  lua_pop(L, 2);
  return src;
}

skafos_sink *skafos_tosink(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  skafos_sink *snk = NULL;
  if (p == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx))
    return NULL;
  /* stack: ... mt */
  if (lua_getfield(L, -1, SKAFOS_SINK_FIELD) == LUA_TBOOLEAN && lua_toboolean(L, -1))
    snk = (skafos_sink *)p;
  lua_pop(L, 2);
  return snk;
}

int skafos_trace_level(lua_State *L) {
  int level;
  lua_getfield(L, LUA_REGISTRYINDEX, "skafos.trace");
  level = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return level;
}
