/*
 * The small pieces every native module shares: `nil, err` tables with a stable code,
 * the process-wide interrupt flag set by the host's SIGINT handler, and the lookup of
 * C-level byte sources and sinks. See common.h for the contracts.
 */
#include <signal.h>
#include <stdio.h>
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
  lua_pushstring(L, message ? message : code);
  lua_setfield(L, -2, "message");
  if (status > 0) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
  }
  lua_pushboolean(L, retryable);
  lua_setfield(L, -2, "retryable");
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

static volatile sig_atomic_t interrupted = 0;

int skafos_interrupted(void) { return interrupted != 0; }

void skafos_set_interrupted(int on) { interrupted = on ? 1 : 0; }

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
