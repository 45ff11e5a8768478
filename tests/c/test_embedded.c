/*
 * The Lua files compiled into the binary: made by this very Lua release (so start-up takes
 * the bytecode path), and each file's bytecode is exactly what its source compiles to.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "embedded.h"

#include "check.h"

typedef struct {
  char *p;
  size_t n;
} dump;

static int on_dump(lua_State *L, const void *p, size_t n, void *ud) {
  dump *d = ud;
  char *grown = realloc(d->p, d->n + n);
  (void)L;
  if (grown == NULL)
    return 1;
  memcpy(grown + d->n, p, n);
  d->p = grown;
  d->n += n;
  return 0;
}

/* Loads buf in mode ("b" or "t") under "@path" and dumps it back with debug information. */
static int load_and_dump(lua_State *L, const char *path, const char *buf, size_t len,
                         const char *mode, dump *out) {
  int ok;
  lua_pushfstring(L, "@%s", path);
  ok = luaL_loadbufferx(L, buf, len, lua_tostring(L, -1), mode) == LUA_OK &&
       lua_dump(L, on_dump, out, 0) == 0;
  if (!ok)
    fprintf(stderr, "%s (%s): %s\n", path, mode, lua_tostring(L, -1));
  lua_settop(L, 0);
  return ok;
}

int main(void) {
  const skafos_embedded *e;
  lua_State *L = luaL_newstate();
  int files = 0, scripts = 0;
  CHECK(L != NULL);
  if (L == NULL)
    return 1;
  CHECK(strcmp(lua_ident, skafos_embedded_lua_ident) == 0);
  for (e = skafos_embedded_files; e->path != NULL; e++) {
    dump from_code = {NULL, 0}, from_source = {NULL, 0};
    files++;
    scripts += strncmp(e->path, "scripts/", 8) == 0;
    CHECK(e->code_len > 4 && memcmp(e->code, "\x1bLua", 4) == 0);
    CHECK(strlen(e->data) == e->len);
    CHECK(load_and_dump(L, e->path, e->code, e->code_len, "b", &from_code));
    CHECK(load_and_dump(L, e->path, e->data, e->len, "t", &from_source));
    CHECK(from_code.n == from_source.n && from_code.n > 0 &&
          memcmp(from_code.p, from_source.p, from_code.n) == 0);
    free(from_code.p);
    free(from_source.p);
  }
  /* every workflow and the library, not an empty table */
  CHECK(scripts >= 8);
  CHECK(files >= 20);
  lua_close(L);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
