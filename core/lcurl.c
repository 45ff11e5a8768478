/*
 * The libcurl side of the shared pieces: one curl_global_init per process, the
 * per-state connection cache both transfer modules use, and the User-Agent. Part of the
 * network library, which the skafos executable loads only when a transfer module is
 * required (see netload.c), so commands that never touch the network never load libcurl.
 */
#include <stdio.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "common.h"
#include "transfer.h"

int skafos_curl_init(void) {
  static int state = 0; /* 0 not yet, 1 ready, -1 failed */
  if (state == 0)
    state = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
  return state == 1 ? 0 : -1;
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

const char *skafos_user_agent(void) {
  static char ua[128];
  if (ua[0] == '\0') {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    snprintf(ua, sizeof ua, "skafos/%s libcurl/%s", SKAFOS_VERSION, v->version);
  }
  return ua;
}

