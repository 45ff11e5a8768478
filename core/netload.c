/*
 * The skafos executable's doorway to the network modules. Linking libcurl costs every
 * start-up about 6 ms (its dependency closure loads and initialises), so the executable
 * keeps skafos.http and skafos.s3 in libskafos-net and dlopens it on first require.
 * libskafos and skafos.so link those modules directly and do not use this file.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "common.h"

int luaopen_skafos_http(lua_State *L);
int luaopen_skafos_s3(lua_State *L);

#ifndef SKAFOS_NET_SONAME
#error "SKAFOS_NET_SONAME must name the network library"
#endif

/* Opens the library from beside the executable (the build tree), from
 * <exe>/../<libdir> (an install), or by soname through the system's search path, in
 * that order. Explicit paths rather than a RUNPATH: a sanitizer runtime intercepts
 * dlopen, which then no longer sees the executable's RUNPATH. */
static void *open_net(void) {
  char exe[PATH_MAX], path[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash;
  void *lib;
  if (n > 0) {
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) != NULL) {
      *slash = '\0';
      snprintf(path, sizeof path, "%s/%s", exe, SKAFOS_NET_SONAME);
      if ((lib = dlopen(path, RTLD_LAZY | RTLD_LOCAL)) != NULL)
        return lib;
      snprintf(path, sizeof path, "%s/../%s/%s", exe, SKAFOS_INSTALL_LIBDIR, SKAFOS_NET_SONAME);
      if ((lib = dlopen(path, RTLD_LAZY | RTLD_LOCAL)) != NULL)
        return lib;
    }
  }
  return dlopen(SKAFOS_NET_SONAME, RTLD_LAZY | RTLD_LOCAL);
}

/* Returns the named luaopen function of the library, loaded once for the process. */
static lua_CFunction net_function(lua_State *L, const char *name) {
  static void *lib = NULL;
  void *fn;
  if (lib == NULL && (lib = open_net()) == NULL)
    luaL_error(L, "cannot load the network library %s: %s", SKAFOS_NET_SONAME, dlerror());
  fn = dlsym(lib, name);
  if (fn == NULL)
    luaL_error(L, "%s lacks %s", SKAFOS_NET_SONAME, name);
  return (lua_CFunction)(void (*)(void))fn;
}

int luaopen_skafos_http(lua_State *L) {
  return net_function(L, "luaopen_skafos_http")(L);
}

int luaopen_skafos_s3(lua_State *L) {
  return net_function(L, "luaopen_skafos_s3")(L);
}
