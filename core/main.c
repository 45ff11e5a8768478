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

/* Drops the relative entries (./?.lua, ./?.so, ...) of package[field]: the skafos
 * program must not load a module planted in whatever directory it runs in. (A host
 * interpreter that loads skafos.so keeps its own paths.) */
static void drop_relative(lua_State *L, const char *field) {
  luaL_Buffer b;
  const char *p, *end;
  int first = 1;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, field);
  p = lua_tostring(L, -1);
  if (p == NULL) {
    lua_pop(L, 2);
    return;
  }
  luaL_buffinit(L, &b);
  for (; *p; p = *end ? end + 1 : end) {
    end = strchr(p, ';');
    if (end == NULL)
      end = p + strlen(p);
    if (end > p && strncmp(p, "./", 2) != 0) {
      if (!first)
        luaL_addchar(&b, ';');
      luaL_addlstring(&b, p, (size_t)(end - p));
      first = 0;
    }
  }
  luaL_pushresult(&b);
  /* stack: package, old path, new path */
  lua_setfield(L, -3, field);
  lua_pop(L, 2);
}

/* pmain(argc, argv) -> exit code; every Lua error inside is reported by skafos_main. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_checkversion(L);
  luaL_openlibs(L);
  drop_relative(L, "path");
  drop_relative(L, "cpath");
  lua_pushboolean(L, 1); /* the installed Lua files are found from this executable */
  lua_setfield(L, LUA_REGISTRYINDEX, SKAFOS_EXECUTABLE_KEY);
  skafos_openlibs(L);
  skafos_handle_sigint(L);
  lua_pushinteger(L, skafos_main(L, argc - 1, (const char *const *)(argv + 1)));
  return 1;
}

int main(int argc, char **argv) {
  int status, code = SKAFOS_EXIT_FAILED;
  lua_State *L;
  skafos_set_argv0(argc > 0 ? argv[0] : NULL);
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
