/*
 * skafos.s3: streamed, verified transfers to and from presigned storage URLs. put sends
 * a file or byte source with Content-Length and checks the ETag against the MD5 computed
 * while sending; get writes dest..".part", resumes with Range/If-Range, renames when whole,
 * or hands the body to a byte sink (skafos.zip's extractor) as it arrives, or both.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>

#include "common.h"
#include "pget.h"
#include "s3err.h"
#include "transfer.h"

#define XFER_MT "skafos.s3.Transfer"

#define MAX_PUT_SIZE (INT64_C(5) * 1024 * 1024 * 1024) /* one presigned PUT */
#define ERROR_BODY_LIMIT (64u * 1024u)
#define PROGRESS_INTERVAL 0.1
#define HASH_CHUNK (1u << 20)

/* ---- the transfer handle --------------------------------------------------------------
 * Full userdata owning every C resource of one put or get; __gc releases them, so a Lua
 * error anywhere leaks nothing. */

typedef struct xfer {
  CURL *easy;
  struct curl_slist *hdrs;
  thasher *hash; /* MD5 (put) and SHA-256 on worker threads */
  FILE *trace; /* opened from opts.trace, owned */
  char **secrets; /* the state's, for the trace (skafos_secrets_copy), owned */
  transfer_opts topts;
  char errbuf[CURL_ERROR_SIZE];
  transfer_stash stash; /* error found inside a libcurl callback */
  lua_State *L;
  int progress; /* stack index of the progress function, 0 if none */
  long status;  /* of the latest response */
  char etag_raw[256];
  tbuf errbody;
  /* put */
  int in_fd;
  skafos_source *src;
  int64_t size, sent;
  /* get */
  FILE *out;
  const char *url;         /* anchored on the Lua stack (argument 1) */
  const char *part, *meta; /* anchored on the Lua stack */
  int64_t offset;          /* bytes of the part file kept from before */
  int64_t received;        /* body bytes of this response written to the part */
  int64_t cr_first, cr_last, cr_total;
  int to_file, restarted; /* to_file: this response's body goes to the part or sink */
  char *hashbuf;
  skafos_sink *snk; /* get into a sink: anchored at stack index 2 */
  int resumable_sink; /* the sink goes on from x->offset and keeps what it got */
  int handoff;        /* a ranged get handed over its first range: not a resume */
  void *front_sha;    /* and the SHA-256 state of its front_len bytes (EVP_MD_CTX), or NULL */
  int64_t front_len;
  /* get into the part file and also, byte for byte from the object's first, into a sink
   * (opts.sink, anchored by the options table); NULL once it refused the bytes */
  skafos_sink *tee;
  char tee_skipped[320]; /* why it gave up: its code and message */
} xfer;

static void xfer_release(xfer *x) {
  if (x->easy) {
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
  }
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  thasher_free(x->hash);
  x->hash = NULL;
  if (x->in_fd >= 0) {
    close(x->in_fd);
    x->in_fd = -1;
  }
  transfer_fclose(&x->out);
  transfer_fclose(&x->trace);
  free(x->secrets);
  x->secrets = NULL;
  x->topts.secrets = NULL;
  free(x->hashbuf);
  x->hashbuf = NULL;
  tbuf_free(&x->errbody);
  EVP_MD_CTX_free(x->front_sha);
  x->front_sha = NULL;
}

static int xfer_gc(lua_State *L) {
  xfer_release(luaL_checkudata(L, 1, XFER_MT));
  return 0;
}

/* Starts the digests from zero (creating the workers the first time). */
static int hash_init(xfer *x, int want_md5) {
  if (x->hash == NULL)
    return (x->hash = thasher_new(want_md5, 1)) != NULL ? 0 : -1;
  thasher_reset(x->hash);
  return 0;
}

/* The code of a sink's latest failure. */
static const char *sink_code(const skafos_sink *snk) { return snk->code ? snk->code : "SINK"; }

/* Starts snk over from byte 0 when it can be; 0 also for a sink without a reset. */
static int sink_reset(skafos_sink *snk, char *err, size_t errlen) {
  return snk->reset ? snk->reset(snk, err, errlen) : 0;
}

/* Stashes a sink's failure under the sink's own code. */
static void stash_sink(xfer *x, const skafos_sink *snk, const char *err) {
  transfer_stash_set(&x->stash, sink_code(snk), "%s", err[0] ? err : "the sink failed");
}

/* Hands bytes of a file get to its tee sink. The file is what counts: a sink that
 * refuses the bytes (it cannot read this archive front to back, finds it damaged, runs
 * out of space) is let go, saying why in tee_skipped, and the download goes on without
 * it. Only an interruption ends the transfer (-1, stashed). */
static int tee_write(xfer *x, const char *p, size_t n) {
  char err[256] = "";
  if (x->tee == NULL || x->tee->write(x->tee, p, n, err, sizeof err) == 0)
    return 0;
  if (x->tee->code && strcmp(x->tee->code, "INTERRUPTED") == 0) {
    stash_sink(x, x->tee, err);
    return -1;
  }
  snprintf(x->tee_skipped, sizeof x->tee_skipped, "%s: %s", sink_code(x->tee),
           err[0] ? err : "the sink failed");
  sink_reset(x->tee, err, sizeof err); /* give its disk space back now */
  x->tee = NULL;
  return 0;
}

/* Waits until every byte received is in the part file and stops writing it; -1 with
 * errno set when a write failed. */
static int part_stop(xfer *x) {
  int e;
  if (x->hash == NULL || thasher_write_to(x->hash, -1, 0) != 0)
    return 0;
  if ((e = thasher_write_error(x->hash)) != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

/* ---- libcurl callbacks: C buffers only, errors stashed, never Lua ------------------- */

static size_t header_cb(char *data, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  size_t n = size * nitems, vlen;
  char name[64];
  const char *v;
  int st = transfer_status_line(data, n);
  if (st > 0) { /* a new response (1xx or final): forget the previous one */
    x->status = st;
    x->etag_raw[0] = '\0';
    x->cr_first = x->cr_last = x->cr_total = -1;
    x->to_file = 0;
    tbuf_reset(&x->errbody);
    return n;
  }
  if (transfer_header_split(data, n, name, sizeof name, &v, &vlen) == 0) {
    if (strcmp(name, "etag") == 0 && vlen < sizeof x->etag_raw) {
      memcpy(x->etag_raw, v, vlen);
      x->etag_raw[vlen] = '\0';
    } else if (strcmp(name, "content-range") == 0) {
      transfer_content_range(v, vlen, &x->cr_first, &x->cr_last, &x->cr_total);
    }
    return n;
  }
  if (!(n <= 2 && (data[0] == '\r' || data[0] == '\n')) || (x->out == NULL && x->snk == NULL))
    return n;
  if (x->snk) { /* only a whole 200 body, or a 206 continuing where we asked, goes on */
    char err[256] = "";
    int rc = 0;
    x->to_file = 0;
    if (x->status == 200) {
      if (x->resumable_sink) {
        x->restarted = x->offset > 0;
        x->offset = 0;
        rc = x->snk->start(x->snk, 0, x->etag_raw, err, sizeof err);
      }
      x->to_file = 1;
    } else if (x->status == 206 && x->offset > 0) {
      if (x->cr_first != x->offset) {
        transfer_stash_set(&x->stash, "RANGE", "%s",
                           "storage answered a range that does not continue the download");
        return 0;
      }
      rc = x->snk->start(x->snk, x->offset, x->etag_raw, err, sizeof err);
      x->to_file = 1;
    }
    if (rc != 0) {
      stash_sink(x, x->snk, err);
      return 0;
    }
    return n;
  }
  /* End of a get's header block: decide, before any body byte, where the body goes.
   * Only 200 and 206 ever reach the part file. */
  if (x->status == 200) {
    if (x->offset > 0) { /* If-Range did not match: the object changed, start over */
      char err[256] = "";
      if (part_stop(x) != 0 || ftruncate(fileno(x->out), 0) != 0 || hash_init(x, 0) != 0 ||
          thasher_write_to(x->hash, fileno(x->out), 0) != 0) {
        transfer_stash_set(&x->stash, "WRITE", "cannot restart the part file: %s",
                           strerror(errno));
        return 0;
      }
      if (x->tee && sink_reset(x->tee, err, sizeof err) != 0) {
        stash_sink(x, x->tee, err);
        return 0;
      }
      x->offset = 0;
      x->restarted = 1;
    }
    x->to_file = 1;
  } else if (x->status == 206) {
    if (x->cr_first != x->offset) {
      transfer_stash_set(&x->stash, "RANGE", "%s",
                         "storage answered a range that does not continue the part file");
      return 0;
    }
    x->to_file = 1;
  }
  if (x->to_file) { /* remember the ETag now, so an interrupted get can resume */
    char msg[sizeof x->stash.msg];
    size_t len = strlen(x->etag_raw);
    int unsafe, fd = transfer_open_file(x->meta, O_WRONLY | O_CREAT, 0644, &unsafe, msg,
                                        sizeof msg);
    int ok = fd >= 0 && ftruncate(fd, 0) == 0 && write(fd, x->etag_raw, len) == (ssize_t)len;
    if (fd >= 0 && close(fd) != 0)
      ok = 0;
    if (!ok) {
      if (unsafe)
        transfer_stash_set(&x->stash, "UNSAFE_PATH", "%s", msg);
      else
        transfer_stash_set(&x->stash, "WRITE", "cannot write %s", x->meta);
      return 0;
    }
  }
  return n;
}

/* A failed write of the part file, with its path; a full disk or quota is NO_SPACE. */
static void stash_write_error(xfer *x, int werr) {
  char msg[512];
  snprintf(msg, sizeof msg, "cannot write %s: %s", x->part, strerror(werr));
  transfer_stash_set(&x->stash, werr == ENOSPC || werr == EDQUOT ? "NO_SPACE" : "WRITE", "%s", msg);
}

static size_t write_cb(char *data, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  size_t n = size * nitems;
  int werr;
  if (!x->to_file) { /* an error body: keep its start for the XML error */
    if (tbuf_add(&x->errbody, data, n) != 0) {
      transfer_stash_set(&x->stash, "NO_MEMORY", "%s", "out of memory for an error body");
      return 0;
    }
    return n;
  }
  if (x->snk) {
    char err[256] = "";
    if (x->snk->write(x->snk, data, n, err, sizeof err) != 0) {
      stash_sink(x, x->snk, err);
      return 0;
    }
    if (x->hash)
      thasher_feed(x->hash, data, n);
    x->received += (int64_t)n;
    return n;
  }
  /* the hasher's writer thread puts the bytes in the part file */
  if (tee_write(x, data, n) != 0)
    return 0;
  thasher_feed(x->hash, data, n);
  if ((werr = thasher_write_error(x->hash)) != 0) {
    stash_write_error(x, werr);
    return 0;
  }
  x->received += (int64_t)n;
  return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  size_t want = size * nitems;
  ssize_t got;
  if ((int64_t)want > x->size - x->sent)
    want = (size_t)(x->size - x->sent);
  if (want == 0)
    return 0;
  if (x->src) {
    char err[256] = "";
    size_t r = x->src->read(x->src, buf, want, err, sizeof err);
    if (r == (size_t)-1) {
      transfer_stash_set(&x->stash, "SOURCE", "source read failed: %s", err);
      return CURL_READFUNC_ABORT;
    }
    got = (ssize_t)r;
  } else {
    do
      got = read(x->in_fd, buf, want);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      transfer_stash_set(&x->stash, "READ", "cannot read the source file: %s", strerror(errno));
      return CURL_READFUNC_ABORT;
    }
  }
  if (got == 0) {
    transfer_stash_set(&x->stash, "SOURCE", "%s", "the source ended before its announced size");
    return CURL_READFUNC_ABORT;
  }
  thasher_feed(x->hash, buf, (size_t)got);
  x->sent += got;
  return (size_t)got;
}

/* libcurl rewinds when it must send the body again (a dead reused connection). */
static int seek_cb(void *ud, curl_off_t offset, int origin) {
  xfer *x = ud;
  char err[256] = "";
  if (offset != 0 || origin != SEEK_SET)
    return CURL_SEEKFUNC_CANTSEEK;
  if (x->src ? (x->src->reset == NULL || x->src->reset(x->src, err, sizeof err) != 0)
             : lseek(x->in_fd, 0, SEEK_SET) != 0)
    return CURL_SEEKFUNC_FAIL;
  if (hash_init(x, 1) != 0)
    return CURL_SEEKFUNC_FAIL;
  x->sent = 0;
  return CURL_SEEKFUNC_OK;
}

/* ---- tick: runs between libcurl calls (transfer_run); progress under lua_pcall ------ */

/* Calls the progress function with done and total (nil when negative); nonzero when it
 * failed or returned false (stashed). */
static int call_progress(xfer *x, int64_t done, int64_t total) {
  lua_State *L = x->L;
  lua_pushvalue(L, x->progress);
  lua_pushinteger(L, (lua_Integer)done);
  if (total >= 0)
    lua_pushinteger(L, (lua_Integer)total);
  else
    lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    /* a signal while the callback ran makes the interrupt hook raise inside it: that is
     * the interrupt, not a failing callback */
    if (skafos_interrupted())
      transfer_stash_set(&x->stash, "INTERRUPTED", "%s", "interrupted");
    else
      transfer_stash_set(&x->stash, "CALLBACK", "progress callback failed: %s",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
    transfer_stash_set(&x->stash, "ABORTED", "%s", "progress callback returned false");
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

static int tick(void *ud, int final) {
  xfer *x = ud;
  (void)final;
  if (x->out && x->hash) /* what a slow or stalled download got so far reaches the file */
    thasher_flush(x->hash);
  if (!x->progress)
    return 0;
  if (x->out || x->snk) { /* get */
    curl_off_t cl = -1;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    return call_progress(x, x->offset + x->received,
                         cl >= 0 && x->to_file ? x->offset + (int64_t)cl : -1);
  }
  return call_progress(x, x->sent, x->size);
}

/* The same for a ranged get (pget), which knows its own counts. */
static int pget_tick(void *ud, int64_t done, int64_t total) {
  xfer *x = ud;
  return x->progress ? call_progress(x, done, total) : 0;
}

/* ---- options (from the table at index 3, which may be absent) ------------------------ */

static int field(lua_State *L, const char *name) {
  if (!lua_istable(L, 3)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, 3, name);
}

static double optnumber(lua_State *L, const char *name, double def) {
  double v = def;
  if (field(L, name) != LUA_TNIL) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "s3: option '%s' must be a number", name);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *optstring(lua_State *L, const char *name) {
  int t = field(L, name); /* left on the stack, anchoring the string */
  if (t == LUA_TNIL)
    return NULL;
  if (t != LUA_TSTRING)
    luaL_error(L, "s3: option '%s' must be a string", name);
  return lua_tostring(L, -1);
}

static int optbool(lua_State *L, const char *name) {
  int v = field(L, name) != LUA_TNIL && lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void appendheader(lua_State *L, xfer *x, const char *line) {
  struct curl_slist *n = curl_slist_append(x->hdrs, line);
  if (n == NULL)
    luaL_error(L, "s3: out of memory");
  x->hdrs = n;
}

/* Extra headers (e.g. x-amz-meta-*). Credentials are refused: storage never sees one. */
static void readheaders(lua_State *L, xfer *x) {
  if (field(L, "headers") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) { /* stack: headers name value */
    const char *name = luaL_checkstring(L, -2);
    const char *v = luaL_checkstring(L, -1);
    if (strcasecmp(name, "x-api-token") == 0 || strcasecmp(name, "authorization") == 0)
      luaL_error(L, "s3: refusing to send %s to storage", name);
    if (strpbrk(name, "\r\n:") || strpbrk(v, "\r\n"))
      luaL_error(L, "s3: bad header %s", name);
    appendheader(L, x, lua_pushfstring(L, "%s: %s", name, v));
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Reads the options every put and get shares. Returns 0, or -1 with msg set when a trace
 * file is asked for at a path skafos will not write through (UNSAFE_PATH). */
static int readopts(lua_State *L, xfer *x, char *msg, size_t msglen) {
  int t;
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  x->topts.timeout = optnumber(L, "timeout", 0);
  x->topts.connect_timeout = optnumber(L, "connect_timeout", 30);
  x->topts.low_speed_bytes = 1;
  x->topts.low_speed_time = 60;
  t = field(L, "low_speed");
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    x->topts.low_speed_time = 0;
  } else if (t == LUA_TTABLE) {
    if (lua_getfield(L, -1, "bytes") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 1);
    }
    if (lua_getfield(L, -2, "seconds") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, -2, 2);
    }
    x->topts.low_speed_bytes = (long)lua_tointeger(L, -2);
    x->topts.low_speed_time = (long)lua_tointeger(L, -1);
    if (x->topts.low_speed_bytes <= 0 || x->topts.low_speed_time <= 0)
      luaL_error(L, "s3: low_speed needs positive {bytes, seconds}");
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "s3: option 'low_speed' must be a table or false");
  }
  lua_pop(L, 1);
  x->topts.ca_file = optstring(L, "ca_file");
  x->topts.proxy = optstring(L, "proxy");
  x->topts.insecure = optbool(L, "insecure");
  x->topts.interrupted = skafos_interrupted;
  t = field(L, "trace");
  if (t == LUA_TSTRING) {
    int unsafe;
    x->trace = transfer_fopen(lua_tostring(L, -1), O_WRONLY | O_CREAT | O_APPEND, 0666, "a",
                              &unsafe, msg, msglen);
    if (x->trace == NULL && unsafe) {
      lua_pop(L, 1);
      return -1;
    }
    if (x->trace == NULL)
      luaL_error(L, "s3: cannot open trace file %s", lua_tostring(L, -1));
    x->topts.trace = x->trace;
  } else if ((t == LUA_TNIL && skafos_trace_level(L) > 0) ||
             (t == LUA_TBOOLEAN && lua_toboolean(L, -1))) {
    x->topts.trace = stderr;
  }
  lua_pop(L, 1);
  if (x->topts.trace) /* a server may echo the token in any header: mask it there too */
    x->topts.secrets = x->secrets = skafos_secrets_copy(L);
  if (field(L, "progress") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TFUNCTION);
    x->progress = lua_gettop(L);
  } else {
    lua_pop(L, 1);
  }
  readheaders(L, x);
  if (x->topts.insecure)
    fprintf(stderr, "skafos: warning: TLS certificate verification is disabled for this "
                    "transfer (insecure = true)\n");
  return 0;
}

static xfer *newxfer(lua_State *L) {
  xfer *x = lua_newuserdatauv(L, sizeof *x, 0);
  memset(x, 0, sizeof *x);
  x->in_fd = -1;
  x->L = L;
  tbuf_init(&x->errbody, ERROR_BODY_LIMIT);
  luaL_setmetatable(L, XFER_MT);
  return x;
}

static CURLcode setup(xfer *x, const char *url) {
  CURL *e = x->easy;
  CURLcode rc = transfer_setup(e, &x->topts, skafos_user_agent(), x->errbuf);
  CURLSH *share = skafos_curl_share(x->L);
#define SET(opt, val)                                                                    \
  do {                                                                                   \
    if (rc == CURLE_OK)                                                                  \
      rc = curl_easy_setopt(e, opt, val);                                                \
  } while (0)
  if (share)
    SET(CURLOPT_SHARE, share);
  SET(CURLOPT_URL, url);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HTTPHEADER, x->hdrs);
#undef SET
  return rc;
}

/* ---- results and errors ----------------------------------------------------------------- */

static void seturlfield(lua_State *L, const char *url) {
  char red[2048];
  transfer_redact(url, strlen(url), red, sizeof red);
  lua_pushstring(L, red);
  lua_setfield(L, -2, "url");
}

static int pushfailure(lua_State *L, xfer *x, CURLcode rc, const char *url) {
  const char *code, *msg;
  char buf[CURL_ERROR_SIZE + 768];
  int retryable = 0;
  if (x->stash.code) {
    code = x->stash.code;
    msg = x->stash.msg;
  } else if (rc == CURLE_ABORTED_BY_CALLBACK && skafos_interrupted()) {
    code = "INTERRUPTED";
    msg = "interrupted";
  } else {
    code = transfer_curl_failure(x->easy, rc, x->errbuf, &x->topts, &retryable, buf,
                                 sizeof buf);
    msg = buf;
  }
  skafos_pusherror(L, code, msg, 0, retryable);
  seturlfield(L, url);
  if (rc != CURLE_OK) {
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
  }
  return 2;
}

/* An HTTP error answer (status, the start of its body) from storage: S3's XML says why;
 * the status is the fallback. */
static int pushs3answer(lua_State *L, long status, const tbuf *body, int64_t retry_after,
                        const char *url) {
  s3err_info info;
  int retryable = 0, isxml = s3err_parse(body->p, body->n, &info);
  const char *code = s3err_classify(isxml ? &info : NULL, status, &retryable);
  char msg[800];
  if (isxml)
    snprintf(msg, sizeof msg, "storage refused the request (HTTP %ld %s): %s", status,
             info.code, info.message[0] ? info.message : "no message");
  else
    snprintf(msg, sizeof msg, "storage answered HTTP %ld", status);
  skafos_pusherror(L, code, msg, (int)status, retryable);
  seturlfield(L, url);
  if (isxml) {
    lua_pushstring(L, info.code);
    lua_setfield(L, -2, "s3_code");
    if (info.request_id[0]) {
      lua_pushstring(L, info.request_id);
      lua_setfield(L, -2, "request_id");
    }
  }
  if (retry_after > 0) {
    lua_pushinteger(L, (lua_Integer)retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  return 2;
}

static int pushs3error(lua_State *L, xfer *x, const char *url) {
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
    retry_after = 0;
  return pushs3answer(L, x->status, &x->errbody, (int64_t)retry_after, url);
}

/* ---- s3.put ----------------------------------------------------------------------------- */

static int s3_put(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *path = NULL;
  skafos_source *src = NULL;
  char md5[33], sha[65], etag[256], msg[600];
  xfer *x;
  CURLcode rc = CURLE_OK;
  int plain;

  if (lua_type(L, 2) == LUA_TSTRING)
    path = lua_tostring(L, 2);
  else if ((src = skafos_tosource(L, 2)) == NULL)
    return luaL_argerror(L, 2, "file path or byte source expected");
  lua_settop(L, 3);
  luaL_checkstack(L, 30, "s3.put");
  x = newxfer(L);
  if (readopts(L, x, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  appendheader(L, x, "Content-Type: application/octet-stream");

  if (path) {
    struct stat st;
    if ((x->in_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(x->in_fd, &st) != 0) {
      snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
      return skafos_pusherror(L, "READ", msg, 0, 0);
    }
    if (!S_ISREG(st.st_mode)) {
      snprintf(msg, sizeof msg, "%s is not a regular file", path);
      return skafos_pusherror(L, "READ", msg, 0, 0);
    }
    x->size = (int64_t)st.st_size;
#ifdef SKAFOS_HAVE_POSIX_FADVISE
    posix_fadvise(x->in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  } else {
    char err[256] = "";
    x->src = src;
    x->size = src->size;
    /* A stream may have been read by an earlier attempt: always start from byte 0. */
    if (src->reset && src->reset(src, err, sizeof err) != 0)
      return skafos_pusherror(L, "SOURCE", err[0] ? err : "cannot reset the source", 0, 0);
  }
  if (x->size < 0)
    return skafos_pusherror(L, "SOURCE", "the source has no known size", 0, 0);
  if (x->size > MAX_PUT_SIZE)
    return skafos_pusherror(L, "TOO_LARGE", "a single presigned PUT takes at most 5 GiB",
                            0, 0);
  /* Ask first: a refused URL (expired, bad signature) then costs no upload. */
  if (x->size > 0)
    appendheader(L, x, "Expect: 100-continue");
  if (hash_init(x, 1) != 0 || (x->easy = curl_easy_init()) == NULL)
    return skafos_pusherror(L, "NO_MEMORY", "cannot set up the transfer", 0, 0);

  rc = setup(x, url);
#define SET(opt, val)                                                                    \
  do {                                                                                   \
    if (rc == CURLE_OK)                                                                  \
      rc = curl_easy_setopt(x->easy, opt, val);                                          \
  } while (0)
  SET(CURLOPT_UPLOAD, 1L);
  SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->size);
  SET(CURLOPT_READFUNCTION, read_cb);
  SET(CURLOPT_READDATA, x);
  SET(CURLOPT_SEEKFUNCTION, seek_cb);
  SET(CURLOPT_SEEKDATA, x);
#undef SET
  if (rc == CURLE_OK)
    rc = transfer_run(x->easy, &x->topts, x->progress ? tick : NULL, x, PROGRESS_INTERVAL);
  if (rc != CURLE_OK || x->stash.code)
    return pushfailure(L, x, rc, url);
  if (x->status != 200) /* S3 answers a successful PUT with exactly 200 */
    return pushs3error(L, x, url);

  thasher_final(x->hash, md5, sha);
  plain = transfer_etag(x->etag_raw, strlen(x->etag_raw), etag, sizeof etag);
  if (plain == 1 && strcmp(etag, md5) != 0) {
    snprintf(msg, sizeof msg, "storage ETag %s does not match the MD5 sent (%s)", etag, md5);
    skafos_pusherror(L, "INTEGRITY", msg, 200, 0);
    seturlfield(L, url);
    return 2;
  }
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, x->status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, plain >= 0 ? etag : "");
  lua_setfield(L, -2, "etag");
  lua_pushinteger(L, (lua_Integer)x->sent);
  lua_setfield(L, -2, "bytes");
  lua_pushstring(L, md5);
  lua_setfield(L, -2, "md5");
  lua_pushstring(L, sha);
  lua_setfield(L, -2, "sha256");
  lua_pushboolean(L, plain == 1);
  lua_setfield(L, -2, "etag_verified");
  if (plain != 1) {
    lua_pushstring(L, x->etag_raw[0] ? "the ETag is not a plain MD5: not compared"
                                     : "storage sent no ETag: not compared");
    lua_setfield(L, -2, "etag_note");
  }
  xfer_release(x);
  return 1;
}

/* ---- s3.get ----------------------------------------------------------------------------- */

/* curl_slist_append that frees the list when it fails (so one owner remains). */
static struct curl_slist *slist_append(struct curl_slist *l, const char *s) {
  struct curl_slist *n = curl_slist_append(l, s);
  if (n == NULL)
    curl_slist_free_all(l);
  return n;
}

/* Reads the ETag remembered next to a part file into out; "" when there is none. Returns
 * -1 with msg set when something other than our own file is there: a planted ETag must not
 * make another file look like the start of this object. */
static int readmeta(const char *meta, char *out, size_t outlen, char *msg, size_t msglen) {
  int unsafe, fd = transfer_open_file(meta, O_RDONLY, 0, &unsafe, msg, msglen);
  ssize_t n;
  out[0] = '\0';
  if (fd < 0)
    return unsafe ? -1 : 0;
  do
    n = read(fd, out, outlen - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
  if (strpbrk(out, "\r\n"))
    out[0] = '\0';
  return 0;
}

/* Feeds the bytes already in the part file to SHA-256 and to the tee sink. Returns 0,
 * -1 when they cannot be read (errno set) or -2 when the sink refused them (stashed). */
static int replay_part(xfer *x, int64_t n) {
  int fd = fileno(x->out);
  int64_t off = 0;
  if (x->hashbuf == NULL && (x->hashbuf = malloc(HASH_CHUNK)) == NULL)
    return -1;
  while (off < n) {
    size_t want = (size_t)(n - off < HASH_CHUNK ? n - off : HASH_CHUNK);
    ssize_t got = pread(fd, x->hashbuf, want, (off_t)off);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      if (got == 0)
        errno = EIO; /* the part file shrank under us */
      return -1;
    }
    if (tee_write(x, x->hashbuf, (size_t)got) != 0)
      return -2;
    thasher_feed(x->hash, x->hashbuf, (size_t)got);
    off += got;
  }
  return 0;
}

/* Opens the part file for this attempt: kept (offset = its size) when resuming from a
 * part whose ETag is known, else emptied. Pushes nothing; returns 0, -1 with errno set, or
 * -2 with msg set when the part file or its ETag file is not our own regular file. */
static int openpart(xfer *x, int resume, char *etag, size_t etaglen, char *msg, size_t msglen) {
  struct stat st;
  int fd, unsafe;
  x->offset = 0;
  etag[0] = '\0';
  fd = transfer_open_file(x->part, O_RDWR | O_CREAT, 0644, &unsafe, msg, msglen);
  if (fd < 0)
    return unsafe ? -2 : -1;
  if ((x->out = fdopen(fd, "wb")) == NULL) {
    close(fd);
    return -1;
  }
  setvbuf(x->out, NULL, _IONBF, 0); /* only the hasher's writer writes, with pwrite */
  if (resume && fstat(fd, &st) == 0 && st.st_size > 0) {
    if (readmeta(x->meta, etag, etaglen, msg, msglen) != 0)
      return -2;
    if (etag[0])
      x->offset = (int64_t)st.st_size;
  }
  if (x->offset == 0) {
    unlink(x->meta);
    if (ftruncate(fd, 0) != 0)
      return -1;
  }
  if (fseeko(x->out, (off_t)x->offset, SEEK_SET) != 0)
    return -1;
  return 0;
}

/* Makes the part file durable and gives it its final name. */
static int finish(xfer *x, const char *dest, char *msg, size_t msglen) {
  const char *slash;
  int fd = fileno(x->out), rc = 0;
  if (fflush(x->out) != 0 || fsync(fd) != 0) {
    snprintf(msg, msglen, "cannot write %s: %s", x->part, strerror(errno));
    rc = -1;
  }
  if (fclose(x->out) != 0 && rc == 0) {
    snprintf(msg, msglen, "cannot write %s: %s", x->part, strerror(errno));
    rc = -1;
  }
  x->out = NULL;
  if (rc == 0 && rename(x->part, dest) != 0) {
    snprintf(msg, msglen, "cannot rename %s to %s: %s", x->part, dest, strerror(errno));
    rc = -1;
  }
  if (rc != 0)
    return -1;
  unlink(x->meta);
  /* Make the rename itself durable. */
  slash = strrchr(dest, '/');
  {
    char dir[4096];
    int dfd;
    if (slash == NULL)
      snprintf(dir, sizeof dir, ".");
    else
      snprintf(dir, sizeof dir, "%.*s", (int)(slash - dest > 0 ? slash - dest : 1), dest);
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return 0;
}

/* Forgets what a failed get handed to the sink, so nothing half-extracted stays. */
static void drop_sink(skafos_sink *snk) {
  char err[256];
  sink_reset(snk, err, sizeof err);
}

/* Pushes nil and a sink's failure (err, else fallback) under the sink's own code. */
/* The result table of a get: status, bytes, etag (normalised from the raw header),
 * sha256 (unless NULL), resumed and restarted; `more` is room for what the caller adds. */
static void push_get_result(lua_State *L, long status, int64_t bytes, const char *etag_raw,
                            const char *sha, int resumed, int restarted, int more) {
  char etag[256];
  lua_createtable(L, 0, 6 + more);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "bytes");
  transfer_etag(etag_raw, strlen(etag_raw), etag, sizeof etag);
  lua_pushstring(L, etag);
  lua_setfield(L, -2, "etag");
  if (sha) {
    lua_pushstring(L, sha);
    lua_setfield(L, -2, "sha256");
  }
  lua_pushboolean(L, resumed);
  lua_setfield(L, -2, "resumed");
  lua_pushboolean(L, restarted);
  lua_setfield(L, -2, "restarted");
}

static int push_sink_error(lua_State *L, const skafos_sink *snk, const char *err,
                           const char *fallback) {
  return skafos_pusherror(L, sink_code(snk), err[0] ? err : fallback, 0, 0);
}

/* Pushes the caller's headers plus Range and If-Range onto a new list (x->hdrs stays
 * as it is, so a second round starts clean); NULL when out of memory. */
static struct curl_slist *range_headers(lua_State *L, xfer *x, int64_t offset,
                                        const char *etag) {
  struct curl_slist *extra = NULL, *h;
  for (h = x->hdrs; h; h = h->next)
    if ((extra = slist_append(extra, h->data)) == NULL)
      return NULL;
  lua_pushfstring(L, "Range: bytes=%I-", (lua_Integer)offset);
  extra = slist_append(extra, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (extra == NULL)
    return NULL;
  lua_pushfstring(L, "If-Range: %s", etag);
  extra = slist_append(extra, lua_tostring(L, -1));
  lua_pop(L, 1);
  return extra;
}

/* One request of a get: from byte `offset` (Range + If-Range etag) when positive, else
 * the whole object. Returns the transfer's CURLcode (CURLE_OUT_OF_MEMORY when the
 * headers cannot be built). */
static CURLcode get_round(lua_State *L, xfer *x, const char *url, int64_t offset,
                          const char *etag) {
  struct curl_slist *extra = NULL;
  CURLcode rc;
  x->received = 0;
  x->restarted = 0;
  x->stash.code = NULL;
  curl_easy_reset(x->easy);
  rc = setup(x, url);
  if (offset > 0) {
    if ((extra = range_headers(L, x, offset, etag)) == NULL)
      return CURLE_OUT_OF_MEMORY;
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, extra);
  }
  if (rc == CURLE_OK)
    rc = transfer_run(x->easy, &x->topts, x->progress || x->out ? tick : NULL, x,
                      PROGRESS_INTERVAL);
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(extra);
  return rc;
}

/* s3.get into a sink. A sink that can resume (with `resume` asked and no `sha256` to
 * check) says where to go on, and the request carries Range + If-Range: a 206 continues
 * there, a 200 (the object changed) starts the sink afresh, a 416 starts over once; what
 * a failed attempt handed to it stays for the next one. Any other sink is reset first
 * and again on every failure. Without `hash` no SHA-256 is computed: on a machine with
 * few cores it costs as much wall time as receiving and writing the bytes, and a sink
 * may check the data itself; a resumed get has none either (the earlier bytes are gone). */
static int get_stream(lua_State *L, xfer *x, const char *url, const char *want_sha,
                      int64_t off, const char *ietag, int connections, int ramp,
                      int64_t window, int64_t piece);

static int get_sink(lua_State *L, xfer *x, const char *url, const char *want_sha, int hash,
                    int resume, int connections, int ramp, int64_t window, int64_t piece) {
  char err[256] = "", sha[65], msg[600], ietag[256] = "";
  curl_off_t cl = -1;
  CURLcode rc = CURLE_OK;
  int64_t off = 0;
  int attempt;
  x->resumable_sink = resume && x->snk->resume && x->snk->start && !want_sha;
  if (x->resumable_sink) {
    off = x->snk->resume(x->snk, ietag, sizeof ietag, err, sizeof err);
    if (off < 0)
      return push_sink_error(L, x->snk, err, "cannot resume the sink");
  } else if (sink_reset(x->snk, err, sizeof err) != 0) {
    return push_sink_error(L, x->snk, err, "cannot reset the sink");
  }
  if ((hash || want_sha) && off == 0 && hash_init(x, 0) != 0)
    return skafos_pusherror(L, "NO_MEMORY", "cannot set up hashing", 0, 0);
  if (connections > 1)
    return get_stream(L, x, url, want_sha, off, ietag, connections, ramp, window, piece);
  if ((x->easy = curl_easy_init()) == NULL)
    return skafos_pusherror(L, "NO_MEMORY", "cannot set up the transfer", 0, 0);
  for (attempt = 0; attempt < 2; attempt++) {
    x->offset = off;
    rc = get_round(L, x, url, off, ietag);
    if (rc != CURLE_OK || x->stash.code) {
      if (!x->resumable_sink)
        drop_sink(x->snk);
      return pushfailure(L, x, rc, url);
    }
    if (x->status == 416 && off > 0) { /* the kept bytes do not fit the object */
      off = 0;
      ietag[0] = '\0';
      continue;
    }
    break;
  }
  if (x->status != 200 && x->status != 206) {
    if (!x->resumable_sink)
      drop_sink(x->snk);
    return pushs3error(L, x, url);
  }
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  if ((cl >= 0 && x->received != (int64_t)cl) ||
      (x->status == 206 && x->cr_total >= 0 && x->offset + x->received != x->cr_total)) {
    if (!x->resumable_sink)
      drop_sink(x->snk);
    snprintf(msg, sizeof msg, "received %lld bytes, storage announced %lld",
             (long long)(x->offset + x->received),
             (long long)(x->status == 206 ? x->cr_total : (int64_t)cl));
    skafos_pusherror(L, "TRUNCATED", msg, (int)x->status, 1);
    seturlfield(L, url);
    return 2;
  }
  if (x->hash)
    thasher_final(x->hash, NULL, sha);
  if (want_sha && strcasecmp(want_sha, sha) != 0) {
    drop_sink(x->snk);
    snprintf(msg, sizeof msg, "SHA-256 %s does not match the expected %.64s", sha, want_sha);
    return skafos_pusherror(L, "INTEGRITY", msg, 0, 0);
  }
  push_get_result(L, x->status, x->offset + x->received, x->etag_raw, x->hash ? sha : NULL,
                  x->offset > 0, x->restarted, 0);
  xfer_release(x);
  return 1;
}

/* ---- s3.get over several connections (pget.c) ------------------------------------------ */

/* 1 when a single-connection get left a part to resume: a bare ETag beside a part that
 * is not empty. */
static int sequential_part(xfer *x) {
  char etag[256], msg[600];
  struct stat st;
  return readmeta(x->meta, etag, sizeof etag, msg, sizeof msg) == 0 && etag[0] &&
         lstat(x->part, &st) == 0 && st.st_size > 0;
}

#define META_MAX (1u << 20)

/* Reads the meta file next to a part into m (pget_meta_free it). Returns 1 when it holds
 * ranges, 0 when it holds something else or nothing, -1 with msg set when something
 * other than our own file is there. */
static int readranges(const char *meta, pget_meta *m, char *msg, size_t msglen) {
  int unsafe, fd = transfer_open_file(meta, O_RDONLY, 0, &unsafe, msg, msglen), ok;
  char *buf;
  size_t n = 0;
  memset(m, 0, sizeof *m);
  m->size = -1;
  if (fd < 0)
    return unsafe ? -1 : 0;
  if ((buf = malloc(META_MAX)) == NULL) {
    close(fd);
    return 0;
  }
  while (n < META_MAX) {
    ssize_t got = read(fd, buf + n, META_MAX - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    n += (size_t)got;
  }
  close(fd);
  ok = n < META_MAX && pget_meta_parse(buf, n, m) == 0 && m->ranged;
  free(buf);
  if (!ok)
    pget_meta_free(m);
  return ok;
}

static CURLcode pget_setup(void *ud, CURL *easy, char *errbuf) {
  xfer *x = ud;
  CURLcode rc = transfer_setup(easy, &x->topts, skafos_user_agent(), errbuf);
  CURLSH *share = skafos_curl_share(x->L);
  if (rc == CURLE_OK && share)
    rc = curl_easy_setopt(easy, CURLOPT_SHARE, share);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(easy, CURLOPT_URL, x->url);
  return rc;
}

/* Pushes nil and why a ranged get failed (and frees r's error body): storage's answer,
 * or what a callback stashed (the progress function, the sink), or pget's own code. */
static int push_pget_failure(lua_State *L, xfer *x, pget_result *r, const char *url) {
  int n;
  if (r->http_status > 0) {
    n = pushs3answer(L, r->http_status, &r->errbody, r->retry_after, url);
  } else {
    if (x->stash.code) /* the progress callback or the sink said why */
      skafos_pusherror(L, x->stash.code, x->stash.msg, 0, 0);
    else
      skafos_pusherror(L, r->code, r->msg, 0, r->retryable);
    seturlfield(L, url);
    if (r->curl_code != CURLE_OK) {
      lua_pushinteger(L, (lua_Integer)r->curl_code);
      lua_setfield(L, -2, "curl_code");
    }
    n = 2;
  }
  tbuf_free(&r->errbody);
  return n;
}

/* pget's stream mode hands the object to x->snk here, in order. A resumable sink starts
 * where it said (or afresh from 0, the object having changed); any other only from 0. */
static int stream_start(void *ud, int64_t offset, const char *etag) {
  xfer *x = ud;
  char err[256] = "";
  int rc;
  if (x->resumable_sink)
    rc = x->snk->start(x->snk, offset, etag, err, sizeof err);
  else if (offset == 0)
    rc = sink_reset(x->snk, err, sizeof err);
  else
    rc = -1;
  if (rc != 0) {
    stash_sink(x, x->snk, err);
    return -1;
  }
  if (offset == 0 && (x->offset > 0 || x->received > 0))
    x->restarted = 1; /* not what the sink had: the object changed */
  if (offset == 0 && x->hash)
    thasher_reset(x->hash);
  x->offset = offset;
  x->received = 0;
  snprintf(x->etag_raw, sizeof x->etag_raw, "%s", etag);
  return 0;
}

static int stream_write(void *ud, const char *p, size_t n) {
  xfer *x = ud;
  char err[256] = "";
  if (x->snk->write(x->snk, p, n, err, sizeof err) != 0) {
    stash_sink(x, x->snk, err);
    return -1;
  }
  if (x->hash)
    thasher_feed(x->hash, p, n);
  x->received += (int64_t)n;
  return 0;
}

/* s3.get into a sink over up to `connections` connections (pget.c's stream mode), from
 * byte `off` (If-Range ietag) when the sink resumes there. Ranges ahead of the point the
 * sink has reached wait in memory, `window` bytes at most; each is retried alone; a server
 * without ranges gives one connection; a changed object starts the sink over. */
static int get_stream(lua_State *L, xfer *x, const char *url, const char *want_sha,
                      int64_t off, const char *ietag, int connections, int ramp,
                      int64_t window, int64_t piece) {
  pget_conf c;
  pget_result r;
  char sha[65], msg[600];
  memset(&c, 0, sizeof c);
  c.url = url;
  c.fd = -1;
  c.connections = connections;
  c.no_ramp = !ramp;
  c.headers = x->hdrs;
  c.topts = &x->topts;
  c.setup = pget_setup;
  c.tick = pget_tick;
  c.ud = x;
  c.sink_start = stream_start;
  c.sink_write = stream_write;
  c.window = window;
  c.piece = piece;
  c.stream_from = off;
  c.stream_etag = ietag;
  x->url = url;
  x->offset = off;
  if (pget_run(&c, &r) != 0) {
    if (!x->resumable_sink)
      drop_sink(x->snk);
    return push_pget_failure(L, x, &r, url);
  }
  tbuf_free(&r.errbody);
  if (x->hash)
    thasher_final(x->hash, NULL, sha);
  if (want_sha && (x->hash == NULL || strcasecmp(want_sha, sha) != 0)) {
    drop_sink(x->snk);
    snprintf(msg, sizeof msg, "SHA-256 %s does not match the expected %.64s",
             x->hash ? sha : "(not computed)", want_sha);
    return skafos_pusherror(L, "INTEGRITY", msg, 0, 0);
  }
  push_get_result(L, r.status, r.bytes, r.etag, x->hash ? sha : NULL, x->offset > 0,
                  r.restarted || x->restarted, 4);
  lua_pushinteger(L, r.connections);
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, (lua_Integer)r.requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)r.buffered_peak);
  lua_setfield(L, -2, "buffered_peak");
  lua_pushinteger(L, (lua_Integer)r.window);
  lua_setfield(L, -2, "window");
  xfer_release(x);
  return 1;
}

/* pget's hashing thread hands the part file's bytes to the tee here, in order from the
 * first (nothing else touches x->tee meanwhile). A tee that refuses them is let go, as
 * tee_write does; an interrupted one too: the transfer notices the interrupt itself. */
static int ranges_tee(void *ud, const char *p, size_t n) {
  xfer *x = ud;
  char err[256] = "";
  if (x->tee == NULL)
    return -1;
  if (x->tee->write(x->tee, p, n, err, sizeof err) == 0)
    return 0;
  snprintf(x->tee_skipped, sizeof x->tee_skipped, "%s: %s", sink_code(x->tee),
           err[0] ? err : "the sink failed");
  sink_reset(x->tee, err, sizeof err);
  x->tee = NULL;
  return -1;
}

/* The object changed: the tee starts again from its first byte. */
static void ranges_tee_reset(void *ud) {
  xfer *x = ud;
  char err[256];
  if (x->tee && sink_reset(x->tee, err, sizeof err) != 0) {
    snprintf(x->tee_skipped, sizeof x->tee_skipped, "%s: %s", sink_code(x->tee), err);
    x->tee = NULL;
  }
}

/* s3.get into dest's part file over up to `connections` connections (pget.c), resuming
 * the ranges an earlier run recorded. A tee sink gets the object in order from the part
 * file as its front fills (ranges_tee). Returns -1 (nothing pushed) when the first range showed that one
 * connection is best: the part holds it, and the single-connection get goes on. */
static int get_ranges(lua_State *L, xfer *x, const char *url, const char *dest,
                      const char *want_sha, int resume, int connections, int ramp) {
  pget_meta m;
  pget_conf c;
  pget_result r;
  struct stat st;
  char msg[600], err[256] = "";
  int fd, unsafe, have, rc;

  have = resume ? readranges(x->meta, &m, msg, sizeof msg) : 0;
  if (have < 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  fd = transfer_open_file(x->part, O_RDWR | O_CREAT, 0644, &unsafe, msg, sizeof msg);
  if (fd < 0) {
    if (have)
      pget_meta_free(&m);
    if (unsafe)
      return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
    snprintf(msg, sizeof msg, "cannot open %s: %s", x->part, strerror(errno));
    return skafos_pusherror(L, "WRITE", msg, 0, 0);
  }
  if ((x->out = fdopen(fd, "wb")) == NULL) {
    close(fd);
    if (have)
      pget_meta_free(&m);
    return skafos_pusherror(L, "NO_MEMORY", "cannot set up the part file", 0, 0);
  }
  setvbuf(x->out, NULL, _IONBF, 0);
  /* Recorded ranges count only while the part still reaches as far as they do. */
  if (have && (fstat(fd, &st) != 0 ||
               (m.ndone > 0 && (int64_t)st.st_size < m.done[m.ndone - 1].last + 1))) {
    pget_meta_free(&m);
    have = 0;
  }
  if (!have)
    unlink(x->meta);
  /* the tee gets the object from its first byte, as the part file's front fills */
  if (x->tee && sink_reset(x->tee, err, sizeof err) != 0) {
    if (have)
      pget_meta_free(&m);
    return push_sink_error(L, x->tee, err, "cannot reset the sink");
  }
  memset(&c, 0, sizeof c);
  c.url = url;
  c.part = x->part;
  c.meta = x->meta;
  c.fd = fd;
  c.connections = connections;
  c.no_ramp = !ramp;
  c.resume = have ? &m : NULL;
  c.headers = x->hdrs;
  c.topts = &x->topts;
  c.setup = pget_setup;
  c.tick = pget_tick;
  c.ud = x;
  if (x->tee) {
    c.tee = ranges_tee;
    c.tee_reset = ranges_tee_reset;
  }
  x->url = url;
  rc = pget_run(&c, &r);
  if (have)
    pget_meta_free(&m);
  if (rc == 1) { /* one connection is best: the caller goes on from the part */
    tbuf_free(&r.errbody);
    transfer_fclose(&x->out);
    x->handoff = 1;
    x->front_sha = r.front_sha;
    x->front_len = r.handoff;
    return -1;
  }
  if (rc != 0)
    return push_pget_failure(L, x, &r, url);
  tbuf_free(&r.errbody);
  if (want_sha && strcasecmp(want_sha, r.sha256) != 0) {
    snprintf(msg, sizeof msg, "SHA-256 %s does not match the expected %.64s", r.sha256,
             want_sha);
    transfer_fclose(&x->out);
    unlink(x->part);
    unlink(x->meta);
    return skafos_pusherror(L, "INTEGRITY", msg, 0, 0);
  }
  if (finish(x, dest, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "WRITE", msg, 0, 0);
  push_get_result(L, r.status, r.bytes, r.etag, r.sha256, r.resumed > 0, r.restarted, 2);
  lua_pushinteger(L, r.connections);
  lua_setfield(L, -2, "connections");
  if (x->tee_skipped[0]) {
    lua_pushstring(L, x->tee_skipped);
    lua_setfield(L, -2, "sink_skipped");
  }
  xfer_release(x);
  return 1;
}

/* s3.get into dest's part file (and x->tee, when there is one), renamed to dest when
 * whole. The tee starts from byte 0 on every round: a resumed part is replayed into it
 * first, and a restart (200 to a Range, or 416) resets it. */
static int get_file(lua_State *L, xfer *x, const char *url, const char *dest,
                    const char *want_sha, int resume, int connections, int ramp) {
  char etag[256], sha[65], msg[600], err[256] = "";
  int attempt, replayed, opened;
  CURLcode rc = CURLE_OK;
  pget_meta m;

  x->part = lua_pushfstring(L, "%s.part", dest);
  x->meta = lua_pushfstring(L, "%s.part.etag", dest);
  /* Refuse a planted file before anything is sent; opening each one decides again. */
  if (transfer_path_check(x->part, msg, sizeof msg) != 0 ||
      transfer_path_check(x->meta, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  /* Ranges, or a part that an earlier ranged get left (it has holes), go to pget; a
   * part that a single-connection get left is resumed as such. */
  if ((connections > 1 && !(resume && sequential_part(x))) ||
      (resume && readranges(x->meta, &m, msg, sizeof msg) == 1)) {
    int n;
    if (connections <= 1)
      pget_meta_free(&m);
    if ((n = get_ranges(L, x, url, dest, want_sha, resume, connections, ramp)) >= 0)
      return n;
    resume = 1; /* from the first range, which is in the part */
  }
  if ((x->easy = curl_easy_init()) == NULL)
    return skafos_pusherror(L, "NO_MEMORY", "cannot set up the transfer", 0, 0);

  /* Two rounds at most: a 416 for a part that does not match the object drops the part
   * and fetches the whole object once more. */
  for (attempt = 0; attempt < 2; attempt++) {
    part_stop(x); /* the file of a previous round is done with */
    transfer_fclose(&x->out);
    if ((opened = openpart(x, resume && attempt == 0, etag, sizeof etag, msg, sizeof msg)) != 0) {
      if (opened == -2)
        return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
      snprintf(msg, sizeof msg, "cannot open %s: %s", x->part, strerror(errno));
      return skafos_pusherror(L, "WRITE", msg, 0, 0);
    }
    if (hash_init(x, 0) != 0)
      return skafos_pusherror(L, "NO_MEMORY", "cannot set up hashing", 0, 0);
    if (x->tee && sink_reset(x->tee, err, sizeof err) != 0)
      return push_sink_error(L, x->tee, err, "cannot reset the sink");
    if (x->front_sha && attempt == 0 && x->offset > 0 && x->offset == x->front_len &&
        thasher_resume_sha256(x->hash, x->front_sha) == 0)
      replayed = 0; /* the ranged get hashed those bytes as they came */
    else
      replayed = x->offset > 0 ? replay_part(x, x->offset) : 0;
    if (replayed == -2)
      return pushfailure(L, x, CURLE_OK, url);
    if (replayed != 0) {
      snprintf(msg, sizeof msg, "cannot read %s: %s", x->part, strerror(errno));
      return skafos_pusherror(L, "READ", msg, 0, 0);
    }
    if (thasher_write_to(x->hash, fileno(x->out), x->offset) != 0)
      return skafos_pusherror(L, "NO_MEMORY", "cannot start writing the part file", 0, 0);
    rc = get_round(L, x, url, x->offset, etag);
    if (part_stop(x) != 0 && rc == CURLE_OK)
      stash_write_error(x, errno);
    if (rc != CURLE_OK || x->stash.code) {
      /* What arrived stays in the part file for a resumed get. */
      if (x->out)
        fsync(fileno(x->out));
      return pushfailure(L, x, rc, url);
    }
    if (x->status == 416 && x->offset > 0) {
      if (x->cr_total == x->offset)
        break; /* the part already holds the whole object */
      continue;
    }
    break;
  }

  if (x->status == 416 && x->offset > 0 && x->cr_total == x->offset) {
    /* fallthrough to the checks below with nothing received */
  } else if (x->status != 200 && x->status != 206) {
    return pushs3error(L, x, url);
  } else {
    curl_off_t cl = -1;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if ((cl >= 0 && x->received != (int64_t)cl) ||
        (x->status == 206 && x->cr_total >= 0 && x->offset + x->received != x->cr_total)) {
      snprintf(msg, sizeof msg, "received %lld bytes, storage announced %lld",
               (long long)(x->offset + x->received),
               (long long)(x->status == 206 ? x->cr_total : (int64_t)cl));
      fsync(fileno(x->out));
      skafos_pusherror(L, "TRUNCATED", msg, (int)x->status, 1);
      seturlfield(L, url);
      return 2;
    }
  }
  thasher_final(x->hash, NULL, sha);
  if (want_sha && strcasecmp(want_sha, sha) != 0) {
    snprintf(msg, sizeof msg, "SHA-256 %s does not match the expected %.64s", sha, want_sha);
    transfer_fclose(&x->out);
    unlink(x->part);
    unlink(x->meta);
    return skafos_pusherror(L, "INTEGRITY", msg, 0, 0);
  }
  if (x->etag_raw[0] == '\0')
    snprintf(x->etag_raw, sizeof x->etag_raw, "%s", etag);
  if (finish(x, dest, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "WRITE", msg, 0, 0);

  push_get_result(L, x->status, x->offset + x->received, x->etag_raw, sha,
                  x->offset > 0 && !x->handoff, x->restarted, 1);
  if (x->tee_skipped[0]) {
    lua_pushstring(L, x->tee_skipped);
    lua_setfield(L, -2, "sink_skipped");
  }
  xfer_release(x);
  return 1;
}

static int s3_get(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  skafos_sink *snk = skafos_tosink(L, 2);
  const char *dest = snk ? NULL : luaL_checkstring(L, 2);
  const char *want_sha;
  int resume, n, connections, ramp;
  xfer *x;
  char msg[600];

  lua_settop(L, 3);
  luaL_checkstack(L, 30, "s3.get");
  x = newxfer(L);
  if (readopts(L, x, msg, sizeof msg) != 0)
    return skafos_pusherror(L, "UNSAFE_PATH", msg, 0, 0);
  resume = optbool(L, "resume");
  want_sha = optstring(L, "sha256");
  connections = (int)optnumber(L, "connections", 1);
  if (connections < 1 || connections > PGET_MAX_CONNECTIONS)
    luaL_error(L, "s3: option 'connections' must be 1 to %d", PGET_MAX_CONNECTIONS);
  ramp = field(L, "ramp") == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (snk) {
    int hash = field(L, "hash") == LUA_TNIL || lua_toboolean(L, -1);
    lua_pop(L, 1);
    x->snk = snk;
    return get_sink(L, x, url, want_sha, hash, resume, connections, ramp,
                    (int64_t)optnumber(L, "window", 0), (int64_t)optnumber(L, "piece", 0));
  }
  if (field(L, "sink") != LUA_TNIL && (x->tee = skafos_tosink(L, -1)) == NULL)
    luaL_error(L, "s3: option 'sink' must be a byte sink such as zip.extractor(dir)");
  lua_pop(L, 1); /* the options table keeps the sink alive */
  n = get_file(L, x, url, dest, want_sha, resume, connections, ramp);
  if (n != 1 && x->tee) /* nothing half-extracted stays */
    drop_sink(x->tee);
  return n;
}

static const luaL_Reg s3_funcs[] = {{"put", s3_put}, {"get", s3_get}, {NULL, NULL}};

int luaopen_skafos_s3(lua_State *L);

int luaopen_skafos_s3(lua_State *L) {
  if (skafos_curl_init() != 0)
    return luaL_error(L, "libcurl failed to initialise");
  if (luaL_newmetatable(L, XFER_MT)) {
    lua_pushcfunction(L, xfer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, xfer_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, s3_funcs);
  lua_pushinteger(L, (lua_Integer)MAX_PUT_SIZE);
  lua_setfield(L, -2, "max_put_size");
  return 1;
}
