/*
 * The skafos executable: creates a Lua state, registers the runtime and hands the
 * command line to lua/skafos/cli.lua under a protected call. Modeled on Lua's lua.c:
 * pmain runs protected, errors become "skafos: <message>" and an exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "common.h"
#include "skafos.h"

/* Whether the command line names a command that will make requests, so loading libcurl
 * (about 5 ms) can overlap the Lua start-up. Only help, --version and the local host
 * commands are known not to; a wrong guess costs a little CPU on another core. */
static int will_use_network(int argc, char **argv) {
  static const char *const local[] = {"help", "scripts", "config", "-h", "--help",
                                      "-V", "--version", NULL};
  int i = 1, j;
  while (i < argc && (strcmp(argv[i], "--verbose") == 0 || strncmp(argv[i], "-v", 2) == 0))
    i++; /* -v, -vv, --verbose */
  if (i >= argc)
    return 0;
  for (j = 0; local[j] != NULL; j++)
    if (strcmp(argv[i], local[j]) == 0)
      return 0;
  for (j = i + 1; j < argc && strcmp(argv[j], "--") != 0; j++)
    if (strcmp(argv[j], "-h") == 0 || strcmp(argv[j], "--help") == 0)
      return 0;
  return 1;
}

/* pmain(argc, argv) -> exit code; every Lua error inside is reported by skafos_main. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_checkversion(L);
  luaL_openlibs(L);
  lua_pushboolean(L, 1); /* the installed Lua files are found from this executable */
  lua_setfield(L, LUA_REGISTRYINDEX, SKAFOS_EXECUTABLE_KEY);
  skafos_openlibs(L);
  skafos_handle_sigint(L);
  lua_pushinteger(L, skafos_main(L, argc - 1, argv + 1));
  return 1;
}

int main(int argc, char **argv) {
  int status, code = SKAFOS_EXIT_FAILED;
  lua_State *L;
  if (will_use_network(argc, argv))
    skafos_net_prefetch();
  L = luaL_newstate();
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
