/*
 * The libcurl side of the shared pieces: one curl_global_init per process, the
 * per-state connection cache both transfer modules use, and the User-Agent. Part of the
 * network library, which the skafos executable loads only when a transfer module is
 * required (see netload.c), so commands that never touch the network never load libcurl.
 */
#include <pthread.h>
#include <stdio.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "common.h"
#include "skafos.h"
#include "transfer.h"

/* Once per process, whichever thread comes first: two states opening the network
 * modules at once in two threads wait for the one initialisation. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_state = -1; /* 1 ready, -1 failed; written once, inside curl_once */
static char user_agent[128];

static void curl_setup(void) {
  const curl_version_info_data *v;
  curl_state = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
  v = curl_version_info(CURLVERSION_NOW);
  snprintf(user_agent, sizeof user_agent, "skafos/%s libcurl/%s", SKAFOS_VERSION, v->version);
}

int skafos_curl_init(void) {
  pthread_once(&curl_once, curl_setup);
  return curl_state == 1 ? 0 : -1;
}

#define SHARE_KEY "skafos.curl.share"
#define SHARE_MT "skafos.CurlShare"

typedef struct share_ud {
  CURLSH *sh;
} share_ud;

static int share_gc(lua_State *L) {
  share_ud *s = luaL_checkudata(L, 1, SHARE_MT);
  /* Fails only while an easy handle still uses it; then it is left to process exit. */
  if (s->sh && curl_share_cleanup(s->sh) == CURLSHE_OK)
    s->sh = NULL;
  return 0;
}

void *skafos_curl_share(lua_State *L) {
  share_ud *s;
  if (lua_getfield(L, LUA_REGISTRYINDEX, SHARE_KEY) == LUA_TUSERDATA) {
    s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s->sh;
  }
  lua_pop(L, 1);
  /* the userdata exists (closed) before the share does, so a raise leaks nothing */
  s = lua_newuserdatauv(L, sizeof *s, 0);
  s->sh = NULL;
  if (luaL_newmetatable(L, SHARE_MT)) {
    lua_pushcfunction(L, share_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  s->sh = transfer_share_new();
  lua_setfield(L, LUA_REGISTRYINDEX, SHARE_KEY);
  return s->sh;
}

void skafos_cleanup(void) {
  if (curl_state == 1)
    curl_global_cleanup();
  curl_state = -1;
}

const char *skafos_user_agent(void) {
  pthread_once(&curl_once, curl_setup);
  return user_agent;
}

