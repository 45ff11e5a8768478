/*
 * skafos.http: HTTP requests over libcurl with a per-state connection cache, stable error
 * codes, redacted traces, and redirects followed by hand so caller headers never reach
 * another origin and https never falls back to http. Also http.sleep and http.now.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "common.h"
#include "transfer.h"

#define REQUEST_MT "skafos.http.Request"

/* Bodies kept in memory: the whole body when no `output` is given (max_body), or just
 * the start of an error body when one is. */
#define DEFAULT_MAX_BODY (64u * 1024u * 1024u)
#define ERROR_BODY_LIMIT (1024u * 1024u)
#define DEFAULT_MAX_REDIRECTS 10
#define PROGRESS_INTERVAL 0.1

/* ---- the request handle --------------------------------------------------------------
 * Full userdata owning every C resource of one request, so a Lua error at any point
 * (argument checks, out of memory while building results) frees them through __gc. */

typedef struct request {
  CURL *easy;
  struct curl_slist *hdrs;
  char *url;           /* current URL (changes on redirects) */
  FILE *in;            /* body_file */
  FILE *out;           /* output, opened when a 2xx response starts */
  FILE *trace;         /* trace file opened from opts.trace, owned */
  char **secrets;      /* the state's, for the trace (skafos_secrets_copy), owned */
  const char *out_path; /* anchored on the Lua stack */
  tbuf head;           /* header lines of the latest response */
  tbuf body;           /* body kept in memory */
  long status;
  int to_file;
  int64_t written;
  int uploading;
  transfer_stash stash; /* error found inside a libcurl callback */
  char errbuf[CURL_ERROR_SIZE];
  transfer_opts topts;
  lua_State *L;
  int progress; /* stack index of the progress function, 0 if none */
} request;

static void request_release(request *r) {
  if (r->easy) {
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  curl_slist_free_all(r->hdrs);
  r->hdrs = NULL;
  free(r->url);
  r->url = NULL;
  transfer_fclose(&r->in);
  transfer_fclose(&r->out);
  transfer_fclose(&r->trace);
  free(r->secrets);
  r->secrets = NULL;
  r->topts.secrets = NULL;
  tbuf_free(&r->head);
  tbuf_free(&r->body);
}

static int request_gc(lua_State *L) {
  request_release(luaL_checkudata(L, 1, REQUEST_MT));
  return 0;
}

/* ---- libcurl callbacks: C buffers only, errors stashed, never Lua ------------------- */

static size_t header_cb(char *data, size_t size, size_t nitems, void *ud) {
  request *r = ud;
  size_t n = size * nitems;
  int st = transfer_status_line(data, n);
  if (st > 0) { /* a new response: 1xx, a redirect, or the final one */
    r->status = st;
    r->to_file = 0;
    tbuf_reset(&r->head);
    tbuf_reset(&r->body);
    return n;
  }
  if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) {
    if (r->status >= 200 && r->status < 300 && r->out_path) {
      if (r->out == NULL) {
        char msg[sizeof r->stash.msg];
        int unsafe;
        r->out = transfer_fopen(r->out_path, O_WRONLY | O_CREAT, 0666, "wb", &unsafe, msg,
                                sizeof msg);
        if (r->out == NULL) {
          if (unsafe)
            transfer_stash_set(&r->stash, "UNSAFE_PATH", "%s", msg);
          else
            transfer_stash_set(&r->stash, "WRITE", "cannot open output: %s", strerror(errno));
          return 0;
        }
        if (ftruncate(fileno(r->out), 0) != 0) { /* only once it is known to be ours */
          transfer_stash_set(&r->stash, "WRITE", "cannot open output: %s", strerror(errno));
          return 0;
        }
        setvbuf(r->out, NULL, _IOFBF, 1 << 20);
      }
      r->to_file = 1;
    }
    return n;
  }
  if (tbuf_add(&r->head, data, n) != 0) {
    transfer_stash_set(&r->stash, "NO_MEMORY", "%s", "out of memory for response headers");
    return 0;
  }
  return n;
}

static size_t write_cb(char *data, size_t size, size_t nitems, void *ud) {
  request *r = ud;
  size_t n = size * nitems;
  if (r->to_file) {
    if (fwrite(data, 1, n, r->out) != n) {
      transfer_stash_set(&r->stash, "WRITE", "cannot write output: %s", strerror(errno));
      return 0;
    }
    r->written += (int64_t)n;
    return n;
  }
  if (tbuf_add(&r->body, data, n) != 0) {
    transfer_stash_set(&r->stash, "NO_MEMORY", "%s", "out of memory for the response body");
    return 0;
  }
  if (r->body.overflow && r->out_path == NULL) {
    transfer_stash_set(&r->stash, "TOO_LARGE", "%s", "response body larger than max_body");
    return 0;
  }
  return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud) {
  request *r = ud;
  size_t got = fread(buf, 1, size * nitems, r->in);
  if (got == 0 && ferror(r->in)) {
    transfer_stash_set(&r->stash, "READ", "cannot read body_file: %s", strerror(errno));
    return CURL_READFUNC_ABORT;
  }
  return got;
}

static int seek_cb(void *ud, curl_off_t offset, int origin) {
  request *r = ud;
  return fseeko(r->in, (off_t)offset, origin) == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

/* ---- progress: runs between libcurl calls (transfer_run), under lua_pcall ---------- */

static int tick(void *ud, int final) {
  request *r = ud;
  lua_State *L = r->L;
  curl_off_t now = 0, total = -1;
  (void)final;
  if (r->uploading) {
    curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &now);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &total);
  } else {
    curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &now);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
  }
  lua_pushvalue(L, r->progress);
  lua_pushinteger(L, (lua_Integer)now);
  if (total >= 0)
    lua_pushinteger(L, (lua_Integer)total);
  else
    lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    /* a signal while the callback ran makes the interrupt hook raise inside it: that is
     * the interrupt, not a failing callback */
    if (skafos_interrupted())
      transfer_stash_set(&r->stash, "INTERRUPTED", "%s", "interrupted");
    else
      transfer_stash_set(&r->stash, "CALLBACK", "progress callback failed: %s",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
    transfer_stash_set(&r->stash, "ABORTED", "%s", "progress callback returned false");
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

/* ---- options ---------------------------------------------------------------------------- */

/* Pushes opts[name] and leaves it on the stack (anchoring any string it returns);
 * returns its type. */
static int field(lua_State *L, const char *name) { return lua_getfield(L, 1, name); }

static double optnumber(lua_State *L, const char *name, double def) {
  double v = def;
  int t = field(L, name);
  if (t != LUA_TNIL) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "http.request: '%s' must be a number", name);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *optstring(lua_State *L, const char *name) {
  int t = field(L, name); /* left on the stack */
  if (t == LUA_TNIL)
    return NULL;
  if (t != LUA_TSTRING)
    luaL_error(L, "http.request: '%s' must be a string", name);
  return lua_tostring(L, -1);
}

static void readlowspeed(lua_State *L, transfer_opts *o) {
  int t = field(L, "low_speed");
  o->low_speed_bytes = 1;
  o->low_speed_time = 60;
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    o->low_speed_time = 0;
  } else if (t == LUA_TTABLE) {
    lua_Integer bytes, secs;
    if (lua_getfield(L, -1, "bytes") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 1);
    }
    if (lua_getfield(L, -2, "seconds") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, -2, 2);
    }
    bytes = lua_tointeger(L, -2);
    secs = lua_tointeger(L, -1);
    if (bytes <= 0 || secs <= 0)
      luaL_error(L, "http.request: low_speed needs positive {bytes, seconds}");
    o->low_speed_bytes = (long)bytes;
    o->low_speed_time = (long)secs;
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "http.request: 'low_speed' must be a table or false");
  }
  lua_pop(L, 1);
}

static void checkheaderpart(lua_State *L, const char *s) {
  if (strpbrk(s, "\r\n") != NULL)
    luaL_error(L, "http.request: header contains a line break");
}

/* Registers the value of a credential header (line "Name: value", n bytes) as a secret
 * of the state, so a library caller that never called core.add_secret has it masked in
 * traces and messages as well. */
static void addsecretheader(lua_State *L, const char *line, size_t n) {
  char name[32];
  const char *v;
  size_t vlen;
  if (transfer_header_split(line, n, name, sizeof name, &v, &vlen) == 0 &&
      (strcmp(name, "x-api-token") == 0 || strcmp(name, "authorization") == 0 ||
       strcmp(name, "proxy-authorization") == 0))
    skafos_add_secret(L, v, vlen);
}

/* Builds the caller's header list from opts.headers: {name = value} (value false sends
 * "Name:" which removes a header libcurl would add) or {"Name: value", ...}. */
static void buildheaders(lua_State *L, request *r, int *has_ctype) {
  *has_ctype = 0;
  if (field(L, "headers") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) { /* stack: headers key value */
    struct curl_slist *n;
    const char *line;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *name = lua_tostring(L, -2);
      checkheaderpart(L, name);
      if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
        lua_pushfstring(L, "%s:", name);
      } else {
        const char *v = luaL_tolstring(L, -1, NULL);
        lua_pushfstring(L, "%s: %s", name, v);
        lua_remove(L, -2); /* stack: headers key value line */
      }
      if (strcasecmp(name, "content-type") == 0)
        *has_ctype = 1;
    } else {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "http.request: header list entries must be strings");
      lua_pushvalue(L, -1);
      if (strncasecmp(lua_tostring(L, -1), "content-type:", 13) == 0)
        *has_ctype = 1;
    }
    line = lua_tostring(L, -1);
    checkheaderpart(L, line);
    addsecretheader(L, line, lua_rawlen(L, -1));
    n = curl_slist_append(r->hdrs, line);
    if (n == NULL)
      luaL_error(L, "http.request: out of memory");
    r->hdrs = n;
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* ---- results ---------------------------------------------------------------------------- */

static void pushheaders(lua_State *L, const tbuf *head) {
  const char *p = head->p, *e = head->p + head->n;
  lua_newtable(L);
  while (p && p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(e - p);
    char name[256];
    const char *v;
    size_t vlen;
    if (transfer_header_split(p, len, name, sizeof name, &v, &vlen) == 0) {
      if (lua_getfield(L, -1, name) == LUA_TSTRING) { /* repeated: join with ", " */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vlen);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vlen);
      }
      lua_setfield(L, -2, name);
    }
    p += len;
  }
}

static void seturlfield(lua_State *L, const char *url) {
  char red[2048];
  transfer_redact(url, strlen(url), red, sizeof red);
  lua_pushstring(L, red);
  lua_setfield(L, -2, "url");
}

static int pushfailure(lua_State *L, request *r, CURLcode rc) {
  const char *code;
  const char *msg;
  char buf[CURL_ERROR_SIZE + 768];
  int retryable = 0;
  if (r->stash.code) {
    code = r->stash.code;
    msg = r->stash.msg;
  } else if (rc == CURLE_ABORTED_BY_CALLBACK && skafos_interrupted()) {
    code = "INTERRUPTED";
    msg = "interrupted";
  } else {
    code = transfer_curl_failure(r->easy, rc, r->errbuf, &r->topts, &retryable, buf, sizeof buf);
    msg = buf;
  }
  skafos_pusherror(L, code, msg, 0, retryable);
  seturlfield(L, r->url);
  if (rc != CURLE_OK) {
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
  }
  return 2;
}

/* ---- http.request ----------------------------------------------------------------------- */

typedef struct reqspec {
  const char *method;
  const char *body;
  size_t body_len;
  int has_body_file;
  int64_t in_size;
  int send_headers; /* 0 once a redirect left the caller's origin */
  int has_ctype;
} reqspec;

static CURLcode setup(request *r, const reqspec *q, CURLSH *share) {
  CURL *e = r->easy;
  CURLcode rc;
  curl_easy_reset(e);
  rc = transfer_setup(e, &r->topts, skafos_user_agent(), r->errbuf);
#define SET(opt, val)                                                                    \
  do {                                                                                   \
    if (rc == CURLE_OK)                                                                  \
      rc = curl_easy_setopt(e, opt, val);                                                \
  } while (0)
  if (share)
    SET(CURLOPT_SHARE, share);
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, r);
  if (q->send_headers && r->hdrs)
    SET(CURLOPT_HTTPHEADER, r->hdrs);
  r->uploading = 0;
  if (strcmp(q->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (q->has_body_file) {
    r->uploading = 1;
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, read_cb);
    SET(CURLOPT_READDATA, r);
    SET(CURLOPT_SEEKFUNCTION, seek_cb);
    SET(CURLOPT_SEEKDATA, r);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->in_size);
    if (strcmp(q->method, "PUT") != 0)
      SET(CURLOPT_CUSTOMREQUEST, q->method);
  } else if (q->body || strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0 ||
             strcmp(q->method, "PATCH") == 0) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
    SET(CURLOPT_POSTFIELDS, q->body ? q->body : "");
    if (strcmp(q->method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, q->method);
  } else if (strcmp(q->method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, q->method);
  }
#undef SET
  r->status = 0;
  r->to_file = 0;
  tbuf_reset(&r->head);
  tbuf_reset(&r->body);
  return rc;
}

/* The HTTP version the final response came in: "1.0", "1.1", "2" or "3". */
static const char *http_version(CURL *easy) {
  long v = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &v);
  switch (v) {
  case CURL_HTTP_VERSION_1_0:
    return "1.0";
  case CURL_HTTP_VERSION_2_0:
    return "2";
  case CURL_HTTP_VERSION_3:
    return "3";
  default:
    return "1.1";
  }
}

static int isredirect(long s) {
  return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* Sets r->topts.trace from opts.trace. Returns 0, or -1 with msg set when the trace file
 * asked for is at a path skafos will not write through (UNSAFE_PATH). */
static int opentrace(lua_State *L, request *r, char *msg, size_t msglen) {
  int t = field(L, "trace"), unsafe = 0;
  if (t == LUA_TSTRING) {
    r->trace = transfer_fopen(lua_tostring(L, -1), O_WRONLY | O_CREAT | O_APPEND, 0666, "a",
                              &unsafe, msg, msglen);
    if (r->trace == NULL && !unsafe)
      luaL_error(L, "http.request: cannot open trace file %s", lua_tostring(L, -1));
    r->topts.trace = r->trace;
  } else if ((t == LUA_TNIL && skafos_trace_level(L) > 0) ||
             (t == LUA_TBOOLEAN && lua_toboolean(L, -1))) {
    r->topts.trace = stderr;
  }
  lua_pop(L, 1);
  return unsafe ? -1 : 0;
}

static int http_request(lua_State *L) {
  request *r;
  reqspec q;
  CURLSH *share;
  CURLcode rc = CURLE_OK;
  const char *url, *body_file, *method;
  int follow, max_redirects, redirects = 0, unsafe_trace;
  double t0 = transfer_now();
  char msg[600];

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, 40, "http.request");
  memset(&q, 0, sizeof q);
  q.send_headers = 1;

  /* Request handle first (closed), so everything acquired below has an owner. */
  r = lua_newuserdatauv(L, sizeof *r, 0); /* stack: opts r */
  memset(r, 0, sizeof *r);
  tbuf_init(&r->head, 256u * 1024u);
  tbuf_init(&r->body, DEFAULT_MAX_BODY);
  luaL_setmetatable(L, REQUEST_MT);
  r->L = L;

  url = optstring(L, "url");
  if (url == NULL)
    return luaL_error(L, "http.request: 'url' is required");
  if ((r->url = strdup(url)) == NULL)
    return luaL_error(L, "http.request: out of memory");
  method = optstring(L, "method");
  q.body = optstring(L, "body");
  if (q.body)
    q.body_len = lua_rawlen(L, -1);
  body_file = optstring(L, "body_file");
  r->out_path = optstring(L, "output");
  if (q.body && body_file)
    return luaL_error(L, "http.request: give 'body' or 'body_file', not both");
  q.method = method ? method : ((q.body || body_file) ? "POST" : "GET");
  if (strpbrk(q.method, " \r\n") != NULL || q.method[0] == '\0')
    return luaL_error(L, "http.request: bad method");
  follow = field(L, "follow") != LUA_TNIL && lua_toboolean(L, -1);
  lua_pop(L, 1);
  max_redirects = (int)optnumber(L, "max_redirects", DEFAULT_MAX_REDIRECTS);
  {
    double mb = optnumber(L, "max_body", (double)DEFAULT_MAX_BODY);
    r->body.limit = mb > 0 ? (size_t)mb : 0;
  }
  if (r->out_path)
    r->body.limit = ERROR_BODY_LIMIT;
  r->topts.timeout = optnumber(L, "timeout", 0);
  r->topts.connect_timeout = optnumber(L, "connect_timeout", 30);
  readlowspeed(L, &r->topts);
  r->topts.ca_file = optstring(L, "ca_file");
  r->topts.proxy = optstring(L, "proxy");
  r->topts.insecure = field(L, "insecure") != LUA_TNIL && lua_toboolean(L, -1);
  lua_pop(L, 1);
  r->topts.interrupted = skafos_interrupted;
  unsafe_trace = opentrace(L, r, msg, sizeof msg);
  if (field(L, "progress") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TFUNCTION);
    r->progress = lua_gettop(L);
  }
  buildheaders(L, r, &q.has_ctype);
  if ((q.body || body_file) && !q.has_ctype) {
    struct curl_slist *n = curl_slist_append(r->hdrs, "Content-Type: application/octet-stream");
    if (n == NULL)
      return luaL_error(L, "http.request: out of memory");
    r->hdrs = n;
  }
  if (unsafe_trace != 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  /* The token buildheaders registered is in the copy: a server may echo it anywhere. */
  if (r->topts.trace)
    r->topts.secrets = r->secrets = skafos_secrets_copy(L);
  /* Refuse a planted output before anything is sent; opening it decides again. */
  if (r->out_path && transfer_path_check(r->out_path, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  if (r->topts.insecure)
    fprintf(stderr, "skafos: warning: TLS certificate verification is disabled for this "
                    "request (insecure = true)\n");

  if (body_file) {
    if ((r->in = fopen(body_file, "rb")) == NULL) {
      snprintf(msg, sizeof msg, "cannot open body_file %s: %s", body_file, strerror(errno));
      return skafos_pusherror(L, "READ", msg, 0, 0);
    }
    if (fseeko(r->in, 0, SEEK_END) != 0 || (q.in_size = ftello(r->in)) < 0 ||
        fseeko(r->in, 0, SEEK_SET) != 0)
      return skafos_pusherror(L, "READ", "cannot size body_file", 0, 0);
    q.has_body_file = 1;
  }

  share = skafos_curl_share(L);
  if ((r->easy = curl_easy_init()) == NULL)
    return skafos_pusherror(L, "NO_MEMORY", "cannot create a libcurl handle", 0, 0);

  for (;;) {
    char *loc = NULL;
    if ((rc = setup(r, &q, share)) != CURLE_OK)
      break;
    if (r->topts.trace) {
      lua_pushfstring(L, "%s %s", q.method, r->url);
      transfer_trace(r->topts.trace, r->topts.secrets, "skafos: http ", lua_tostring(L, -1),
                     lua_rawlen(L, -1));
      lua_pop(L, 1);
    }
    rc = transfer_run(r->easy, &r->topts, r->progress ? tick : NULL, r, PROGRESS_INTERVAL);
    if (rc != CURLE_OK || !follow || !isredirect(r->status))
      break;
    curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc);
    if (loc == NULL) /* libcurl gives even a Location it cannot parse: none is the answer */
      break;
    /* Never to another scheme than http(s), never from https down to http off loopback. */
    if (transfer_redirect_allowed(r->url, loc, msg, sizeof msg) != 0) {
      transfer_stash_set(&r->stash, "REDIRECT", "%s", msg);
      break;
    }
    if (redirects >= max_redirects) {
      snprintf(r->errbuf, sizeof r->errbuf, "more than %d redirects", max_redirects);
      rc = CURLE_TOO_MANY_REDIRECTS;
      break;
    }
    redirects++;
    /* libcurl would resend custom headers to the new host; the API token must not go. */
    if (!transfer_same_origin(r->url, loc))
      q.send_headers = 0;
    {
      char *next = strdup(loc);
      if (next == NULL) {
        rc = CURLE_OUT_OF_MEMORY;
        break;
      }
      free(r->url);
      r->url = next;
    }
    if ((r->status == 303 && strcmp(q.method, "HEAD") != 0) ||
        ((r->status == 301 || r->status == 302) && strcmp(q.method, "POST") == 0)) {
      q.method = "GET";
      q.body = NULL;
      q.has_body_file = 0;
    } else if (q.has_body_file && fseeko(r->in, 0, SEEK_SET) != 0) {
      transfer_stash_set(&r->stash, "READ", "cannot rewind body_file: %s", strerror(errno));
      rc = CURLE_READ_ERROR;
      break;
    }
  }

  if (r->out && fclose(r->out) != 0 && rc == CURLE_OK)
    transfer_stash_set(&r->stash, "WRITE", "cannot write output: %s", strerror(errno));
  r->out = NULL;
  if (r->topts.trace)
    fprintf(r->topts.trace, "skafos: http done: status %ld, curl %d, %.3f s\n", r->status,
            (int)rc, transfer_now() - t0);
  if (rc != CURLE_OK || r->stash.code)
    return pushfailure(L, r, rc);

  lua_createtable(L, 0, 7);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  pushheaders(L, &r->head);
  lua_setfield(L, -2, "headers");
  if (r->to_file) {
    lua_pushinteger(L, (lua_Integer)r->written);
    lua_setfield(L, -2, "bytes");
  } else {
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.n);
    lua_setfield(L, -2, "body");
  }
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, redirects);
  lua_setfield(L, -2, "redirects");
  lua_pushstring(L, http_version(r->easy));
  lua_setfield(L, -2, "version");
  if (isredirect(r->status)) {
    char *loc = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc);
    if (loc) {
      lua_pushstring(L, loc);
      lua_setfield(L, -2, "redirect_url");
    }
  }
  request_release(r);
  return 1;
}

/* ---- sleep and clock for the retry policy --------------------------------------------- */

/* http.sleep(seconds) -> true, or nil, err(INTERRUPTED) when SIGINT arrived. Sleeps in
 * slices so an interrupt ends it within 50 ms; inside a task of skafos.tasks the other
 * tasks run meanwhile. */
static int http_sleep(lua_State *L) {
  double secs = luaL_checknumber(L, 1);
  double end = transfer_now() + (secs > 0 ? secs : 0);
  for (;;) {
    double left = end - transfer_now();
    struct timespec ts;
    if (skafos_interrupted())
      return skafos_pusherror(L, "INTERRUPTED", "interrupted", 0, 0);
    if (left <= 0)
      break;
    if (left > 0.05)
      left = 0.05;
    if (transfer_task_sleep(left) == 0)
      continue; /* in a task: the others run meanwhile */
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int http_now(lua_State *L) {
  lua_pushnumber(L, transfer_now());
  return 1;
}

/* http.redact(text) -> text with signatures, credentials, tokens and every secret of the
 * state masked. */
static int http_redact(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 3 * n + 1); /* room for transfer_redact's growth */
  luaL_pushresultsize(&b, transfer_redact(s, n, out, 3 * n + 1));
  skafos_push_redacted(L, lua_tostring(L, -1), lua_rawlen(L, -1));
  return 1;
}

/* http.redirect_allowed(from, to) -> true, or nil, err (REDIRECT): the rule follow = true
 * applies, for callers that follow a Location themselves. */
static int http_redirect_allowed(lua_State *L) {
  const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
  char why[1200];
  if (transfer_redirect_allowed(from, to, why, sizeof why) != 0)
    return skafos_pusherror(L, "REDIRECT", why, 0, 0);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg http_funcs[] = {{"request", http_request},
                                      {"sleep", http_sleep},
                                      {"now", http_now},
                                      {"redact", http_redact},
                                      {"redirect_allowed", http_redirect_allowed},
                                      {NULL, NULL}};

int luaopen_skafos_http(lua_State *L);

int luaopen_skafos_http(lua_State *L) {
  if (skafos_curl_init() != 0)
    return luaL_error(L, "libcurl failed to initialise");
  if (luaL_newmetatable(L, REQUEST_MT)) {
    lua_pushcfunction(L, request_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, request_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, http_funcs);
  lua_pushstring(L, skafos_user_agent());
  lua_setfield(L, -2, "user_agent");
  return 1;
}
