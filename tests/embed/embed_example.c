/*
 * Embedding skafos in a C program: open a Lua state, register the runtime, run a
 * workflow by name with arguments. Usage: embed_example WORKFLOW [ARGS...]
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <skafos.h>

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int code;
  if (argc < 2) {
    fprintf(stderr, "usage: %s WORKFLOW [ARGS...]\n", argv[0]);
    return SKAFOS_EXIT_USAGE;
  }
  luaL_openlibs(L);
  skafos_openlibs(L);
  code = skafos_run_workflow(L, argv[1], argc - 2, argv + 2);
  lua_close(L);
  return code;
}
