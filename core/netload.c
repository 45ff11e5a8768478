/*
 * The skafos executable's doorway to the network modules. Linking libcurl costs every
 * start-up about 6 ms (its dependency closure loads and initialises), so the executable
 * keeps skafos.http, skafos.s3 and skafos.tasks in libskafos-net and dlopens it on first require, or
 * earlier in a thread (skafos_net_prefetch) for a command that will make requests.
 * libskafos and skafos.so link those modules directly and do not use this file.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "common.h"

int luaopen_skafos_http(lua_State *L);
int luaopen_skafos_s3(lua_State *L);
int luaopen_skafos_tasks(lua_State *L);

#ifndef SKAFOS_NET_SONAME
#error "SKAFOS_NET_SONAME must name the network library"
#endif

/* Opens the library from beside the executable (the build tree), from
 * <exe>/../<libdir> (an install), or by soname through the system's search path, in
 * that order. Explicit paths rather than a RUNPATH: a sanitizer runtime intercepts
 * dlopen, which then no longer sees the executable's RUNPATH. */
static void *open_net(void) {
  char exe[PATH_MAX], path[PATH_MAX + 64];
  char *slash;
  void *lib;
  if (skafos_exe_path(exe, sizeof exe) == 0) {
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

/* The library once opened, and the thread opening it; touched by the main thread only
 * (the thread's result arrives through pthread_join). */
static void *net_lib = NULL;
static pthread_t prefetcher;
static int prefetching = 0;

/* Only dlopen runs here, not libcurl's initialisation: that registers OpenSSL's atexit
 * handler, which must not race with an exit on the main thread. An exit during the dlopen
 * is safe, since glibc's exit waits for the loader's lock. */
static void *prefetch_main(void *unused) {
  (void)unused;
  return open_net();
}

/* Starts opening the library in a thread that blocks every signal, so SIGINT still
 * reaches the main thread; called by main before the Lua start-up it overlaps. */
void skafos_net_prefetch(void) {
  sigset_t all, old;
  if (prefetching || net_lib != NULL)
    return;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  prefetching = pthread_create(&prefetcher, NULL, prefetch_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Returns the named luaopen function of the library, loaded once for the process. A
 * failed prefetch is simply retried here, where dlerror() can tell why. */
static lua_CFunction net_function(lua_State *L, const char *name) {
  void *fn;
  if (prefetching) {
    pthread_join(prefetcher, &net_lib);
    prefetching = 0;
  }
  if (net_lib == NULL && (net_lib = open_net()) == NULL)
    luaL_error(L, "cannot load the network library %s: %s", SKAFOS_NET_SONAME, dlerror());
  fn = dlsym(net_lib, name);
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

int luaopen_skafos_tasks(lua_State *L) {
  return net_function(L, "luaopen_skafos_tasks")(L);
}
