/*
 * Embedding skafos in a C program: open a Lua state, register the runtime, run a
 * workflow by name with arguments, then read its result or its error without parsing
 * its output. Usage: embed_example WORKFLOW [ARGS...]
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
  code = skafos_run_workflow(L, argv[1], argc - 2, (const char *const *)(argv + 2));
  if (code == SKAFOS_EXIT_OK) {
    const char *version = skafos_result_field(L, "version");
    if (version != NULL)
      fprintf(stderr, "embed_example: version %s\n", version);
  } else {
    const char *what, *message;
    int exit_code = skafos_last_error(L, &what, &message);
    fprintf(stderr, "embed_example: %s (exit %d): %s\n", what ? what : "?", exit_code,
            message ? message : "");
  }
  lua_close(L);
  skafos_cleanup();
  return code;
}
