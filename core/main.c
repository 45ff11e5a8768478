/*
 * The skafos executable: creates a Lua state, registers the runtime and hands the
 * command line to lua/skafos/cli.lua under a protected call. Modeled on Lua's lua.c:
 * pmain runs protected, errors become "skafos: <message>" and an exit code.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "skafos.h"

/* pmain(argc, argv) -> exit code; every Lua error inside is reported by skafos_main. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_checkversion(L);
  luaL_openlibs(L);
  skafos_openlibs(L);
  skafos_handle_sigint(L);
  lua_pushinteger(L, skafos_main(L, argc - 1, argv + 1));
  return 1;
}

int main(int argc, char **argv) {
  int status, code = SKAFOS_EXIT_FAILED;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "skafos: cannot create state: not enough memory\n");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  if (status == LUA_OK)
    code = (int)lua_tointeger(L, -1);
  else
    fprintf(stderr, "skafos: %s\n", lua_tostring(L, -1));
  fflush(stdout);
  lua_close(L);
  return code;
}
