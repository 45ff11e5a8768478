/*
 * A C program that embeds skafos the way README's "From C" says, built against an
 * installed copy only (tests/install/check_consumers.sh). Runs workflows one after another
 * in one Lua state: consumer WORKFLOW [ARGS...] [-- WORKFLOW [ARGS...]]...
 */
#include <crypt.h> /* the system's: skafos's Cflags must not put minizip's crypt.h first */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <skafos.h>

#ifndef CRYPT_OUTPUT_SIZE
#error "<crypt.h> is not the system's: a dependency's include directory comes first"
#endif
#if SKAFOS_VERSION_NUM != \
    SKAFOS_VERSION_MAJOR * 10000 + SKAFOS_VERSION_MINOR * 100 + SKAFOS_VERSION_PATCH
#error "SKAFOS_VERSION_NUM does not match its parts"
#endif

#ifndef CONSUMER_STATIC
/* The host's own function under the name of one of the library's internals: libskafos.so
 * must go on using its own, or every archive it writes has wrong CRCs (which its own
 * checks, using the same function, would not see; unzip -t does). Linked statically, the
 * two would clash at link time instead. */
uint32_t zcrc32(uint32_t crc, const void *p, size_t n);
uint32_t zcrc32(uint32_t crc, const void *p, size_t n) {
  (void)p;
  (void)n;
  return crc ^ 0x5a5a5a5au;
}
#endif

int main(int argc, char **argv) {
  lua_State *L;
  int i = 1, code = SKAFOS_EXIT_OK;
  if (strcmp(skafos_version(), SKAFOS_VERSION) != 0) {
    fprintf(stderr, "consumer: skafos.h says %s, the library %s\n", SKAFOS_VERSION,
            skafos_version());
    return 100;
  }
  printf("consumer: skafos %s\n", skafos_version());
  fflush(stdout);
  L = luaL_newstate();
  luaL_openlibs(L);
  skafos_openlibs(L);
  while (code == SKAFOS_EXIT_OK && i < argc) {
    int end = i + 1;
    while (end < argc && strcmp(argv[end], "--") != 0)
      end++;
    code = skafos_run_workflow(L, argv[i], end - i - 1, (const char *const *)(argv + i + 1));
    fflush(stdout);
    i = end + 1;
  }
  lua_close(L);
  return code;
}
