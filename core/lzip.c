/*
 * skafos.zip: the Lua binding of the zip writer, the streaming reader, the checked
 * extractor and the streaming extractor (zipwrite.c, zipstream.c, zipread.c, zipsink.c).
 * Misuse raises; failures return nil, err. Progress callbacks run under lua_pcall.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "common.h"
#include "zipread.h"
#include "zipsink.h"
#include "zipwrite.h"

#define WRITER_MT "skafos.ZipWriter"
#define STREAM_MT "skafos.ZipStream"
#define TEMP_MT "skafos.ZipTemp"
#define ARCHIVE_MT "skafos.ZipArchive"
#define LISTING_MT "skafos.ZipListing"
#define EXTRACTOR_MT "skafos.ZipExtractor"

/* ---- options ---------------------------------------------------------------------- */

typedef struct wopts {
  int method, level, threads;
  int keep_litter; /* litter = "keep" */
  int64_t mtime;
  int progress; /* stack index of the progress function, 0 when none */
  int each;     /* stack index of the per-file function, 0 when none */
  int methods;  /* the summary lists every entry's method (methods = false: only counts) */
} wopts;

/* Parses a `level` option: "auto", "store" or 0..9 (0 is store). */
/* An integer option in [lo, hi]; floats with an integral value count (JSON numbers). */
static int intopt(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, lua_Integer *v) {
  int isnum;
  *v = lua_tointegerx(L, idx, &isnum);
  return isnum && *v >= lo && *v <= hi;
}

static void check_level(lua_State *L, int idx, const char *what, int *method, int *level) {
  lua_Integer v;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    if (strcmp(s, "auto") == 0)
      *method = ZW_AUTO;
    else if (strcmp(s, "store") == 0)
      *method = ZW_STORE;
    else if (strcmp(s, "deflate") == 0)
      *method = ZW_DEFLATE;
    else
      luaL_error(L, "bad %s '%s' (expected \"auto\", \"store\", \"deflate\" or 0..9)", what,
                 s);
    return;
  }
  if (!intopt(L, idx, 0, 9, &v))
    luaL_error(L, "bad %s (expected \"auto\", \"store\" or an integer 0..9)", what);
  *level = (int)v;
  *method = *level == 0 ? ZW_STORE : ZW_DEFLATE;
}

/* A `litter` option at idx: "skip" (0) or "keep" (1); nil leaves *keep as it is. */
static void check_litter(lua_State *L, int idx, int *keep) {
  const char *s;
  if (lua_isnil(L, idx))
    return;
  s = lua_tostring(L, idx);
  if (lua_type(L, idx) != LUA_TSTRING || (strcmp(s, "skip") != 0 && strcmp(s, "keep") != 0))
    luaL_error(L, "bad option litter (expected \"skip\" or \"keep\")");
  *keep = strcmp(s, "keep") == 0;
}

/* Per-entry {method = "store"|"deflate"|"auto", level = 0..9} at table idx: a level
 * alone means deflate at that level (0: store), as the `level` option does. */
static void entry_method(lua_State *L, int idx, int *method, int *level) {
  int has_method, has_level, m;
  idx = lua_absindex(L, idx);
  has_method = lua_getfield(L, idx, "method") != LUA_TNIL;
  has_level = lua_getfield(L, idx, "level") != LUA_TNIL;
  if (has_level) {
    lua_Integer v;
    if (!intopt(L, -1, 0, 9, &v))
      luaL_error(L, "bad level (expected an integer 0..9)");
    *level = (int)v;
    *method = *level == 0 ? ZW_STORE : ZW_DEFLATE;
  }
  if (has_method) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "bad method (expected \"store\", \"deflate\" or \"auto\")");
    check_level(L, -2, "method", &m, level);
    *method = m;
  }
  lua_pop(L, 2);
}

static void check_wopts(lua_State *L, int idx, wopts *o) {
  lua_Integer v;
  o->method = ZW_AUTO;
  o->level = 6;
  o->threads = 0;
  o->mtime = -1;
  o->progress = 0;
  o->each = 0;
  o->keep_litter = 0;
  o->methods = 1;
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "litter");
  check_litter(L, -1, &o->keep_litter);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "methods") != LUA_TNIL) {
    if (!lua_isboolean(L, -1))
      luaL_error(L, "bad option methods (expected a boolean)");
    o->methods = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "level") != LUA_TNIL)
    check_level(L, -1, "level", &o->method, &o->level);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "threads") != LUA_TNIL) {
    if (!intopt(L, -1, 1, 64, &v))
      luaL_error(L, "bad option threads (expected an integer 1..64)");
    o->threads = (int)v;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "mtime") != LUA_TNIL) {
    if (!intopt(L, -1, 0, LUA_MAXINTEGER, &v))
      luaL_error(L, "bad option mtime (expected a Unix time)");
    o->mtime = (int64_t)v;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "progress") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TFUNCTION);
    o->progress = lua_gettop(L); /* stays on the stack for the call */
  } else {
    lua_pop(L, 1);
  }
  if (lua_getfield(L, idx, "each") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TFUNCTION);
    o->each = lua_gettop(L); /* stays on the stack for the calls */
  } else {
    lua_pop(L, 1);
  }
}

/* ---- hooks: progress under lua_pcall, interrupts --------------------------------- */

typedef struct hookctx {
  lua_State *L;
  int fn;     /* stack index of the function, 0 when none */
  int failed; /* the function raised; its error is at stack index `errslot` */
  int errslot;
} hookctx;

static int hook_progress(void *ud, uint64_t done, uint64_t total) {
  hookctx *h = ud;
  lua_State *L = h->L;
  if (h->fn == 0)
    return 0;
  lua_pushvalue(L, h->fn);
  lua_pushinteger(L, (lua_Integer)done);
  lua_pushinteger(L, (lua_Integer)total);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    /* stack: ... errobj; keep it in the reserved slot until the C side unwound */
    lua_replace(L, h->errslot);
    h->failed = 1;
    return 1;
  }
  return 0;
}

static int hook_cancelled(void *ud) {
  (void)ud;
  return skafos_interrupted();
}

/* Sets up the hooks; reserves a stack slot for a callback's error. */
static void hooks_init(lua_State *L, hookctx *h, zhooks *z, int fn) {
  h->L = L;
  h->fn = fn;
  h->failed = 0;
  lua_pushnil(L);
  h->errslot = lua_gettop(L);
  z->progress = hook_progress;
  z->cancelled = hook_cancelled;
  z->ud = h;
}

/* Returns nil, err for an engine failure, or re-raises a progress callback's error. */
static int fail(lua_State *L, const hookctx *h, const zerr *err) {
  if (h != NULL && h->failed) {
    lua_pushvalue(L, h->errslot);
    return lua_error(L);
  }
  return skafos_pusherror(L, err->code ? err->code : "IO", err->msg, 0, 0);
}

/* ---- temporaries owned by a userdata, so a raise never leaks ---------------------- */

typedef struct ztemp {
  zw_plan plan;
  zw_writer *w;
} ztemp;

static int temp_gc(lua_State *L) {
  ztemp *t = luaL_checkudata(L, 1, TEMP_MT);
  zw_plan_free(&t->plan);
  zw_free(t->w);
  t->w = NULL;
  return 0;
}

/* Frees at once what a temp holds: the collector counts only the small userdata, not
 * the plan behind it, so a million-file plan would otherwise outlive its call. */
static void temp_release(ztemp *t) {
  zw_free(t->w);
  t->w = NULL;
  zw_plan_free(&t->plan);
}

static ztemp *newtemp(lua_State *L) {
  ztemp *t = lua_newuserdatauv(L, sizeof *t, 0);
  zw_plan_init(&t->plan);
  t->w = NULL;
  luaL_setmetatable(L, TEMP_MT);
  return t;
}

/* Adds the entries of the list at idx to plan. Raises on misuse; returns -1 with err
 * set on an operational failure. */
static int plan_entries(lua_State *L, int idx, zw_plan *plan, const wopts *o, zerr *err) {
  lua_Integer i, n = luaL_len(L, idx);
  for (i = 1; i <= n; i++) {
    int method = o->method, level = o->level, t = lua_geti(L, idx, i), rc;
    plan->keep_litter = o->keep_litter;
    if (t == LUA_TSTRING) {
      rc = zw_plan_add(plan, lua_tostring(L, -1), NULL, method, level, err);
    } else if (t == LUA_TTABLE) {
      const char *src, *name;
      lua_getfield(L, -1, "src");
      lua_getfield(L, -2, "name");
      src = lua_tostring(L, -2);
      name = lua_tostring(L, -1);
      if ((lua_type(L, -2) != LUA_TSTRING && !lua_isnil(L, -2)) ||
          (lua_type(L, -1) != LUA_TSTRING && !lua_isnil(L, -1)) || (!src && !name))
        return luaL_error(L, "bad entry #%d (expected {src = path, name = string})", (int)i);
      entry_method(L, -3, &method, &level);
      lua_getfield(L, -3, "litter");
      check_litter(L, -1, &plan->keep_litter);
      lua_pop(L, 1);
      rc = src ? zw_plan_add(plan, src, name, method, level, err)
               : zw_plan_add_dir(plan, name, err);
      lua_pop(L, 2);
    } else {
      return luaL_error(L, "bad entry #%d (expected a path or {src = path, name = string})",
                        (int)i);
    }
    lua_pop(L, 1);
    if (rc != 0)
      return -1;
  }
  return 0;
}

static const char *plan_method_name(int method) {
  return method == ZW_STORE ? "store" : method == ZW_DEFLATE ? "deflate" : "auto";
}

/* Calls the `each` function (if any) with every file of the sorted plan, in order:
 * each({name, src, bytes, method, level}) -> method?, level? (what to do with it). Runs
 * plain Lua: a raise goes through, and the plan is freed by its owner's __gc. */
static void apply_each(lua_State *L, zw_plan *plan, const wopts *o) {
  size_t i;
  if (!o->each)
    return;
  for (i = 0; i < plan->n; i++) {
    zw_item *it = &plan->items[i];
    if (it->src == NULL)
      continue;
    lua_pushvalue(L, o->each);
    lua_createtable(L, 0, 6);
    lua_pushlstring(L, it->name, it->namelen);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, it->src);
    lua_setfield(L, -2, "src");
    lua_pushinteger(L, (lua_Integer)it->size);
    lua_setfield(L, -2, "bytes");
    lua_pushliteral(L, "file");
    lua_setfield(L, -2, "type");
    lua_pushstring(L, plan_method_name(it->method));
    lua_setfield(L, -2, "method");
    lua_pushinteger(L, it->level);
    lua_setfield(L, -2, "level");
    lua_call(L, 1, 2);
    /* stack: method level; a table with them reads like a per-entry option */
    if (!lua_isnil(L, -2) || !lua_isnil(L, -1)) {
      int method = it->method, level = it->level;
      lua_createtable(L, 0, 2);
      lua_pushvalue(L, -3);
      lua_setfield(L, -2, "method");
      lua_pushvalue(L, -2);
      lua_setfield(L, -2, "level");
      entry_method(L, -1, &method, &level);
      lua_pop(L, 1);
      it->method = it->size == 0 ? ZW_STORE : method; /* empty files are always stored */
      it->level = level;
    }
    lua_pop(L, 2);
  }
}

static const char *method_name(int method) {
  return method == ZF_STORE ? "store" : method == ZF_DEFLATE ? "deflate" : "other";
}

/* Pushes {entries, bytes_in, bytes_out, methods = {[name] = "store"|"deflate"}}. */
static void push_summary(lua_State *L, const zw_writer *w, int methods) {
  size_t i, n = zw_count(w), stored = 0;
  uint64_t in = 0;
  lua_createtable(L, 0, 6);
  if (methods)
    lua_createtable(L, 0, (int)(n < 1000000 ? n : 1000000));
  for (i = 0; i < n; i++) {
    const zf_entry *e = zw_entry(w, i);
    if (methods) {
      lua_pushstring(L, method_name(e->method));
      lua_setfield(L, -2, e->name);
    }
    stored += e->method == ZF_STORE;
    in += e->usize;
  }
  if (methods)
    lua_setfield(L, -2, "methods");
  lua_pushinteger(L, (lua_Integer)stored);
  lua_setfield(L, -2, "stored");
  lua_pushinteger(L, (lua_Integer)(n - stored));
  lua_setfield(L, -2, "deflated");
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)in);
  lua_setfield(L, -2, "bytes_in");
  lua_pushinteger(L, (lua_Integer)zw_bytes_out(w));
  lua_setfield(L, -2, "bytes_out");
}

/* ---- zip.create ------------------------------------------------------------------- */

static int zip_create(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  wopts o;
  hookctx h;
  zhooks z;
  zerr err;
  ztemp *t;
  luaL_checktype(L, 2, LUA_TTABLE);
  check_wopts(L, 3, &o);
  hooks_init(L, &h, &z, o.progress);
  t = newtemp(L);
  memset(&err, 0, sizeof err);
  if (plan_entries(L, 2, &t->plan, &o, &err) != 0 || zw_plan_sort(&t->plan, &err) != 0)
    return temp_release(t), fail(L, NULL, &err);
  apply_each(L, &t->plan, &o);
  t->w = zw_open(path, o.threads, o.mtime, &err);
  if (t->w == NULL)
    return temp_release(t), fail(L, NULL, &err);
  zw_borrow_names(t->w); /* the plan outlives the writer */
  if (zw_add(t->w, t->plan.items, t->plan.n, &z, &err) != 0 || zw_finish(t->w, &err) != 0) {
    zw_free(t->w); /* deletes the unfinished archive before any raise */
    t->w = NULL;
    return temp_release(t), fail(L, &h, &err);
  }
  push_summary(L, t->w, o.methods);
  temp_release(t);
  return 1;
}

/* ---- zip.writer ------------------------------------------------------------------- */

typedef struct lwriter {
  zw_writer *w; /* NULL once closed */
  int method, level, keep_litter;
  int finished;
} lwriter;

static lwriter *checkwriter(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (lw->w == NULL)
    luaL_error(L, "attempt to use a closed zip writer");
  return lw;
}

static int zip_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  wopts o;
  zerr err;
  lwriter *lw;
  check_wopts(L, 2, &o);
  lw = lua_newuserdatauv(L, sizeof *lw, 1); /* uservalue 1: the progress function */
  lw->w = NULL;
  lw->finished = 0;
  lw->method = o.method;
  lw->level = o.level;
  lw->keep_litter = o.keep_litter;
  luaL_setmetatable(L, WRITER_MT);
  if (o.progress) {
    lua_pushvalue(L, o.progress);
    lua_setiuservalue(L, -2, 1);
  }
  lw->w = zw_open(path, o.threads, o.mtime, &err);
  if (lw->w == NULL)
    return fail(L, NULL, &err);
  return 1;
}

static int zipwriter_add(lua_State *L) {
  lwriter *lw = checkwriter(L);
  const char *src = luaL_optstring(L, 2, NULL);
  const char *name = luaL_optstring(L, 3, NULL);
  int method = lw->method, level = lw->level, keep_litter = lw->keep_litter, fn = 0;
  hookctx h;
  zhooks z;
  zerr err;
  ztemp *t;
  if (src == NULL && name == NULL)
    return luaL_argerror(L, 2, "a source path or a directory name is required");
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    entry_method(L, 4, &method, &level);
    lua_getfield(L, 4, "litter");
    check_litter(L, -1, &keep_litter);
    lua_pop(L, 1);
  }
  if (lua_getiuservalue(L, 1, 1) == LUA_TFUNCTION)
    fn = lua_gettop(L);
  hooks_init(L, &h, &z, fn);
  t = newtemp(L);
  t->plan.keep_litter = keep_litter;
  memset(&err, 0, sizeof err);
  if ((src ? zw_plan_add(&t->plan, src, name, method, level, &err)
           : zw_plan_add_dir(&t->plan, name, &err)) != 0 ||
      zw_plan_sort(&t->plan, &err) != 0)
    return fail(L, NULL, &err);
  if (zw_add(lw->w, t->plan.items, t->plan.n, &z, &err) != 0)
    return fail(L, &h, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* Finishes (ok) or discards (!ok) the archive; safe to call twice. */
static int writer_close(lua_State *L, lwriter *lw, int ok) {
  zerr err;
  int rc = 0;
  if (lw->w == NULL)
    return 0;
  if (ok)
    rc = zw_finish(lw->w, &err);
  if (rc == 0 && ok) {
    lw->finished = 1;
    push_summary(L, lw->w, 1);
    lua_setiuservalue(L, 1, 1); /* the summary replaces the progress function */
  }
  zw_free(lw->w);
  lw->w = NULL;
  if (rc != 0)
    return fail(L, NULL, &err);
  return 0;
}

static int zipwriter_close(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (writer_close(L, lw, 1) != 0)
    return 2;
  lua_pushboolean(L, 1);
  return 1;
}

static int zipwriter_abort(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  writer_close(L, lw, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* The summary of a closed writer, as zip.create returns it; nil while open. */
static int zipwriter_summary(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (!lw->finished)
    return 0;
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* __close: finishes on a normal exit, discards when the scope is left by an error;
 * a failure to finish is raised, as there is no caller to return it to. */
static int zipwriter_tbc(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (writer_close(L, lw, lua_isnoneornil(L, 2)) != 0)
    return lua_error(L);
  return 0;
}

static int zipwriter_gc(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  zw_free(lw->w); /* never finished: the partial archive is removed */
  lw->w = NULL;
  return 0;
}

static int zipwriter_tostring(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (lw->w == NULL)
    lua_pushliteral(L, "skafos.ZipWriter (closed)");
  else
    lua_pushfstring(L, "skafos.ZipWriter (%p)", (void *)lw);
  return 1;
}

/* ---- zip.stream ------------------------------------------------------------------- */

typedef struct lstream {
  skafos_source src; /* first: skafos.s3.put reads through it */
  zs_stream *s;      /* NULL once closed */
} lstream;

static size_t stream_src_read(skafos_source *src, char *buf, size_t n, char *errbuf,
                              size_t errlen) {
  lstream *ls = (lstream *)src;
  zerr err;
  size_t got;
  if (ls->s == NULL) {
    snprintf(errbuf, errlen, "the zip stream is closed");
    return (size_t)-1;
  }
  got = zs_read(ls->s, (unsigned char *)buf, n, &err);
  if (got == (size_t)-1)
    snprintf(errbuf, errlen, "%s", err.msg);
  return got;
}

static int stream_src_reset(skafos_source *src, char *errbuf, size_t errlen) {
  lstream *ls = (lstream *)src;
  zerr err;
  if (ls->s == NULL) {
    snprintf(errbuf, errlen, "the zip stream is closed");
    return -1;
  }
  if (zs_reset(ls->s, &err) != 0) {
    snprintf(errbuf, errlen, "%s", err.msg);
    return -1;
  }
  return 0;
}

static int zip_stream(lua_State *L) {
  wopts o;
  zerr err;
  ztemp *t;
  lstream *ls;
  size_t which;
  int r;
  luaL_checktype(L, 1, LUA_TTABLE);
  check_wopts(L, 2, &o);
  t = newtemp(L);
  memset(&err, 0, sizeof err);
  if (plan_entries(L, 1, &t->plan, &o, &err) != 0 || zw_plan_sort(&t->plan, &err) != 0)
    return temp_release(t), fail(L, NULL, &err);
  apply_each(L, &t->plan, &o);
  r = zw_plan_all_stored(&t->plan, &which, &err);
  if (r < 0)
    return temp_release(t), fail(L, NULL, &err);
  if (r > 0) {
    zerr_set(&err, "NOT_STORED", "'%s' would be compressed; a stream holds stored entries only",
             t->plan.items[which].name);
    return temp_release(t), fail(L, NULL, &err);
  }
  ls = lua_newuserdatauv(L, sizeof *ls, 0);
  ls->s = NULL;
  ls->src.size = 0;
  ls->src.read = stream_src_read;
  ls->src.reset = stream_src_reset;
  luaL_setmetatable(L, STREAM_MT);
  ls->s = zs_take(&t->plan, o.mtime, &err);
  if (ls->s == NULL)
    return temp_release(t), fail(L, NULL, &err);
  ls->src.size = (int64_t)zs_size(ls->s);
  lua_pushinteger(L, (lua_Integer)ls->src.size);
  lua_insert(L, -2);
  return 2;
}

static lstream *checkstream(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  if (ls->s == NULL)
    luaL_error(L, "attempt to use a closed zip stream");
  return ls;
}

static int zipstream_read(lua_State *L) {
  lstream *ls = checkstream(L);
  lua_Integer n = luaL_optinteger(L, 2, 65536);
  luaL_Buffer b;
  zerr err;
  size_t got;
  char *p;
  luaL_argcheck(L, n > 0 && n <= (1 << 26), 2, "expected a size of 1..64 MiB");
  p = luaL_buffinitsize(L, &b, (size_t)n);
  got = zs_read(ls->s, (unsigned char *)p, (size_t)n, &err);
  if (got == (size_t)-1)
    return fail(L, NULL, &err);
  if (got == 0)
    return 0; /* nothing: the end */
  luaL_pushresultsize(&b, got);
  return 1;
}

static int zipstream_reset(lua_State *L) {
  lstream *ls = checkstream(L);
  zerr err;
  if (zs_reset(ls->s, &err) != 0)
    return fail(L, NULL, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int zipstream_close(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  zs_free(ls->s);
  ls->s = NULL;
  lua_pushboolean(L, 1);
  return 1;
}

static int zipstream_len(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  lua_pushinteger(L, (lua_Integer)ls->src.size);
  return 1;
}

static int zipstream_index(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  const char *key = lua_tostring(L, 2);
  if (key && strcmp(key, "size") == 0) {
    lua_pushinteger(L, (lua_Integer)ls->src.size);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int zipstream_tostring(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  if (ls->s == NULL)
    lua_pushliteral(L, "skafos.ZipStream (closed)");
  else
    lua_pushfstring(L, "skafos.ZipStream (%I bytes)", (lua_Integer)ls->src.size);
  return 1;
}

/* ---- zip.plan --------------------------------------------------------------------- */

/* zip.plan(entries) -> {files, dirs, bytes, left_out, left_out_names, inputs = {{files,
 * dirs, bytes, left_out}, ...}} | nil, err: what zip.create and zip.stream would archive,
 * walked and checked the same way (links, loops, unreadable directories, duplicate names,
 * litter left out), without reading any file. */
static int zip_plan(lua_State *L) {
  wopts o;
  zerr err;
  ztemp *t;
  lua_Integer i, n;
  uint64_t files = 0, dirs = 0, bytes = 0;
  size_t done = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  check_wopts(L, 2, &o);
  n = luaL_len(L, 1);
  t = newtemp(L);
  memset(&err, 0, sizeof err);
  lua_createtable(L, (int)(n < 1000000 ? n : 1000000), 0); /* stack: temp inputs */
  for (i = 1; i <= n; i++) {
    uint64_t f = 0, d = 0, b = 0;
    size_t k, left = t->plan.left_out;
    /* one entry at a time, through the same parser as zip.create */
    lua_createtable(L, 1, 0);
    lua_geti(L, 1, i);
    lua_rawseti(L, -2, 1);
    if (plan_entries(L, lua_gettop(L), &t->plan, &o, &err) != 0)
      return temp_release(t), fail(L, NULL, &err);
    lua_pop(L, 1);
    for (k = done; k < t->plan.n; k++) {
      if (t->plan.items[k].src == NULL) {
        d++;
      } else {
        f++;
        b += t->plan.items[k].size;
      }
    }
    done = t->plan.n;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)(t->plan.left_out - left));
    lua_setfield(L, -2, "left_out");
    lua_pushinteger(L, (lua_Integer)f);
    lua_setfield(L, -2, "files");
    lua_pushinteger(L, (lua_Integer)d);
    lua_setfield(L, -2, "dirs");
    lua_pushinteger(L, (lua_Integer)b);
    lua_setfield(L, -2, "bytes");
    lua_rawseti(L, -2, i);
    files += f;
    dirs += d;
    bytes += b;
  }
  if (zw_plan_sort(&t->plan, &err) != 0)
    return temp_release(t), fail(L, NULL, &err);
  apply_each(L, &t->plan, &o);
  lua_createtable(L, 0, 6);
  lua_insert(L, -2);
  lua_setfield(L, -2, "inputs");
  lua_pushinteger(L, (lua_Integer)t->plan.left_out);
  lua_setfield(L, -2, "left_out");
  lua_createtable(L, ZW_LEFT_SHOWN, 0);
  for (i = 0; i < ZW_LEFT_SHOWN && t->plan.left_names[i]; i++) {
    lua_pushstring(L, t->plan.left_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "left_out_names");
  lua_pushinteger(L, (lua_Integer)files);
  lua_setfield(L, -2, "files");
  lua_pushinteger(L, (lua_Integer)dirs);
  lua_setfield(L, -2, "dirs");
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "bytes");
  temp_release(t);
  return 1;
}

/* ---- zip.list --------------------------------------------------------------------- */

/* An open archive owned by a userdata, so a memory error while building a result
 * closes it through __gc. */
static int archive_gc(lua_State *L) {
  zr_close(luaL_checkudata(L, 1, ARCHIVE_MT));
  return 0;
}

static zr_archive *newarchive(lua_State *L) {
  zr_archive *a = lua_newuserdatauv(L, sizeof *a, 0);
  memset(a, 0, sizeof *a);
  a->fd = -1;
  luaL_setmetatable(L, ARCHIVE_MT);
  return a;
}

/* zip.list(path[, opts]) -> listing: the central directory read once, kept compact
 * (about 75 bytes an entry) in a userdata; `#listing`, `listing[i]` and ipairs give the
 * entries, each a fresh table, so a million-entry archive never becomes a million
 * tables at once. */
static void push_listed(lua_State *L, const zr_entry *e) {
  lua_createtable(L, 0, 12);
  lua_pushlstring(L, e->name, e->namelen);
  lua_setfield(L, -2, "name");
  if (e->raw_apart) {
    lua_pushlstring(L, zr_raw(e), e->rawlen);
    lua_setfield(L, -2, "stored_name");
  }
  if (zr_name_problem(e) != NULL) {
    lua_pushstring(L, zr_name_problem(e));
    lua_setfield(L, -2, "unsafe_name");
  }
  lua_pushinteger(L, (lua_Integer)e->usize);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)e->csize);
  lua_setfield(L, -2, "compressed_size");
  if (e->method == ZF_STORE || e->method == ZF_DEFLATE)
    lua_pushstring(L, method_name(e->method));
  else
    lua_pushinteger(L, e->method);
  lua_setfield(L, -2, "method");
  lua_pushinteger(L, (lua_Integer)e->crc);
  lua_setfield(L, -2, "crc");
  lua_pushboolean(L, e->is_dir);
  lua_setfield(L, -2, "dir");
  lua_pushboolean(L, e->is_symlink);
  lua_setfield(L, -2, "symlink");
  lua_pushinteger(L, (lua_Integer)(e->mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)e->offset);
  lua_setfield(L, -2, "offset");
}

static int listing_index(lua_State *L) {
  zr_archive *a = luaL_checkudata(L, 1, LISTING_MT);
  int isnum;
  lua_Integer i = lua_tointegerx(L, 2, &isnum);
  if (isnum && i >= 1 && (uint64_t)i <= a->t.n) {
    zr_entry e;
    push_listed(L, zr_get(&a->t, (size_t)i - 1, &e));
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int listing_len(lua_State *L) {
  zr_archive *a = luaL_checkudata(L, 1, LISTING_MT);
  lua_pushinteger(L, (lua_Integer)a->t.n);
  return 1;
}

static int listing_tostring(lua_State *L) {
  zr_archive *a = luaL_checkudata(L, 1, LISTING_MT);
  lua_pushfstring(L, "skafos.ZipListing (%I entries)", (lua_Integer)a->t.n);
  return 1;
}

static int listing_gc(lua_State *L) {
  zr_close(luaL_checkudata(L, 1, LISTING_MT));
  return 0;
}

/* The option max_entries of the table at idx: a count, 0 for no limit, -1 when not given.
 * Leaves the stack as it was. */
static int64_t opt_max_entries(lua_State *L, int idx) {
  lua_Integer v = -1;
  if (lua_getfield(L, idx, "max_entries") != LUA_TNIL && !intopt(L, -1, 0, LUA_MAXINTEGER, &v))
    luaL_error(L, "bad option max_entries (expected a count, 0 for no limit)");
  lua_pop(L, 1);
  return (int64_t)v;
}

static int zip_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  zr_archive *a;
  zerr err;
  int64_t max_entries = -1;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    max_entries = opt_max_entries(L, 2);
  }
  a = lua_newuserdatauv(L, sizeof *a, 0);
  memset(a, 0, sizeof *a);
  a->fd = -1;
  luaL_setmetatable(L, LISTING_MT);
  if (zr_open_file(a, path, max_entries < 0 ? ZR_MAX_ENTRIES : (uint64_t)max_entries, &err) != 0)
    return fail(L, NULL, &err);
  close(a->fd); /* everything listed is in memory now */
  a->fd = -1;
  return 1;
}

/* ---- extraction options ----------------------------------------------------------- */

/* The extraction options at idx (a table or nil): max_size, max_ratio, symlinks, force.
 * Leaves the stack as it was. */
static void check_xopts(lua_State *L, int idx, int64_t *max_size, int64_t *max_ratio,
                        int64_t *max_entries, int *symlinks_inside, int *force) {
  lua_Integer v;
  *max_size = -1;
  *max_ratio = -1;
  *max_entries = -1;
  *symlinks_inside = 0;
  *force = 0;
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "max_size") != LUA_TNIL) {
    if (!intopt(L, -1, 0, LUA_MAXINTEGER, &v))
      luaL_error(L, "bad option max_size (expected a byte count)");
    *max_size = (int64_t)v;
  }
  if (lua_getfield(L, idx, "max_ratio") != LUA_TNIL) {
    if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 0)
      luaL_error(L, "bad option max_ratio (expected a number >= 0)");
    *max_ratio = (int64_t)lua_tonumber(L, -1);
  }
  *max_entries = opt_max_entries(L, idx);
  if (lua_getfield(L, idx, "symlinks") != LUA_TNIL) {
    const char *s = lua_tostring(L, -1);
    if (s == NULL || (strcmp(s, "inside") != 0 && strcmp(s, "refuse") != 0))
      luaL_error(L, "bad option symlinks (expected \"refuse\" or \"inside\")");
    *symlinks_inside = strcmp(s, "inside") == 0;
  }
  lua_getfield(L, idx, "force");
  *force = lua_toboolean(L, -1);
  lua_pop(L, 4);
}

/* ---- zip.verify ------------------------------------------------------------------- */

/* Every check extraction makes, without writing: names, overlaps, sizes, CRCs, symlinks
 * and their targets, the limits (none unless given). With names = "report" what only
 * extraction refuses is returned as result.unsafe instead; with stream = true also what
 * the streaming extractor refuses (zr_check_stream). */
static int zip_verify(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  zr_archive *a;
  zr_limits lim;
  hookctx h;
  zhooks z;
  zerr err, unsafe;
  int64_t max_size, max_ratio, max_entries;
  uint64_t bytes = 0;
  int fn = 0, rc, symlinks_inside, force, report = 0, stream = 0;
  check_xopts(L, 2, &max_size, &max_ratio, &max_entries, &symlinks_inside, &force);
  if (!lua_isnoneornil(L, 2)) {
    if (lua_getfield(L, 2, "names") != LUA_TNIL) {
      const char *s = lua_tostring(L, -1);
      if (s == NULL || (strcmp(s, "refuse") != 0 && strcmp(s, "report") != 0))
        luaL_error(L, "bad option names (expected \"refuse\" or \"report\")");
      report = strcmp(s, "report") == 0;
    }
    lua_getfield(L, 2, "stream");
    stream = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (lua_getfield(L, 2, "progress") != LUA_TNIL) {
      luaL_checktype(L, -1, LUA_TFUNCTION);
      fn = lua_gettop(L);
    }
  }
  hooks_init(L, &h, &z, fn);
  memset(&lim, 0, sizeof lim);
  memset(&unsafe, 0, sizeof unsafe);
  lim.max_size = max_size < 0 ? 0 : (uint64_t)max_size; /* no target: unlimited */
  lim.max_ratio = max_ratio < 0 ? 0 : (uint64_t)max_ratio;
  lim.symlinks_inside = symlinks_inside;
  lim.ratio_so_far = 1; /* as zip.extractor counts it, the strictest */
  lim.unsafe = report ? &unsafe : NULL;
  a = newarchive(L);
  if (zr_open_file(a, path, max_entries < 0 ? ZR_MAX_ENTRIES : (uint64_t)max_entries, &err) != 0)
    return fail(L, NULL, &err);
  rc = zr_check(a, &lim, &err) == 0 && (!stream || zr_check_stream(a, &err) == 0) &&
       zr_verify(a, &lim, &z, &bytes, &err) == 0;
  lua_pushinteger(L, (lua_Integer)a->t.n);
  zr_close(a);
  if (!rc)
    return fail(L, &h, &err);
  lua_createtable(L, 0, 3);
  lua_insert(L, -2);
  lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "bytes");
  if (unsafe.code) {
    lua_pushstring(L, unsafe.msg);
    lua_setfield(L, -2, "unsafe");
  }
  return 1;
}

/* ---- zip.extract ------------------------------------------------------------------ */

static int zip_extract(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *dir = luaL_checkstring(L, 2);
  zr_options o;
  hookctx h;
  zhooks z;
  zerr err;
  int fn = 0;
  memset(&o, 0, sizeof o);
  check_xopts(L, 3, &o.max_size, &o.max_ratio, &o.max_entries, &o.symlinks_inside, &o.force);
  if (!lua_isnoneornil(L, 3)) {
    if (lua_getfield(L, 3, "progress") != LUA_TNIL) {
      luaL_checktype(L, -1, LUA_TFUNCTION);
      fn = lua_gettop(L);
    }
  }
  hooks_init(L, &h, &z, fn);
  o.hooks = &z;
  if (zr_extract(path, dir, &o, &err) != 0)
    return fail(L, &h, &err);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)o.entries);
  lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)o.written);
  lua_setfield(L, -2, "bytes");
  return 1;
}

/* ---- zip.extractor ---------------------------------------------------------------- */

typedef struct lextractor {
  skafos_sink sink; /* first: skafos.s3.get writes through it */
  zx *x;            /* NULL once finished or aborted */
  zerr err;         /* the latest failure */
} lextractor;

/* Interrupts only: the sink runs inside libcurl callbacks, where no Lua may run. */
static const zhooks extractor_hooks = {NULL, hook_cancelled, NULL};

static int extractor_sink_write(skafos_sink *snk, const char *buf, size_t n, char *errbuf,
                                size_t errlen) {
  lextractor *le = (lextractor *)snk;
  if (le->x == NULL) {
    zerr_set(&le->err, "INVALID_INPUT", "the zip extractor is closed");
  } else if (zx_write(le->x, (const unsigned char *)buf, n, &le->err) == 0) {
    return 0;
  }
  snk->code = le->err.code;
  snprintf(errbuf, errlen, "%s", le->err.msg);
  return -1;
}

static int extractor_sink_reset(skafos_sink *snk, char *errbuf, size_t errlen) {
  lextractor *le = (lextractor *)snk;
  if (le->x == NULL) {
    zerr_set(&le->err, "INVALID_INPUT", "the zip extractor is closed");
  } else if (zx_reset(le->x, &le->err) == 0) {
    snk->code = NULL;
    return 0;
  }
  snk->code = le->err.code;
  snprintf(errbuf, errlen, "%s", le->err.msg);
  return -1;
}

static int64_t extractor_sink_resume(skafos_sink *snk, char *etag, size_t etaglen,
                                     char *errbuf, size_t errlen) {
  lextractor *le = (lextractor *)snk;
  int64_t off = -1;
  if (le->x == NULL)
    zerr_set(&le->err, "INVALID_INPUT", "the zip extractor is closed");
  else if ((off = zx_resume_point(le->x, etag, etaglen, &le->err)) >= 0)
    return off;
  snk->code = le->err.code;
  snprintf(errbuf, errlen, "%s", le->err.msg);
  return -1;
}

static int extractor_sink_start(skafos_sink *snk, int64_t offset, const char *etag,
                                char *errbuf, size_t errlen) {
  lextractor *le = (lextractor *)snk;
  if (le->x == NULL) {
    zerr_set(&le->err, "INVALID_INPUT", "the zip extractor is closed");
  } else if (zx_start(le->x, offset, etag, &le->err) == 0) {
    snk->code = NULL;
    return 0;
  }
  snk->code = le->err.code;
  snprintf(errbuf, errlen, "%s", le->err.msg);
  return -1;
}

static int zip_extractor(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  zx_options o;
  lextractor *le;
  memset(&o, 0, sizeof o);
  check_xopts(L, 2, &o.max_size, &o.max_ratio, &o.max_entries, &o.symlinks_inside, &o.force);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "resumable");
    o.resumable = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  o.hooks = &extractor_hooks;
  le = lua_newuserdatauv(L, sizeof *le, 0);
  memset(le, 0, sizeof *le);
  le->sink.write = extractor_sink_write;
  le->sink.reset = extractor_sink_reset;
  if (o.resumable) {
    le->sink.resume = extractor_sink_resume;
    le->sink.start = extractor_sink_start;
  }
  luaL_setmetatable(L, EXTRACTOR_MT);
  le->x = zx_new(dir, &o, &le->err);
  if (le->x == NULL)
    return fail(L, NULL, &le->err);
  return 1;
}

static lextractor *checkextractor(lua_State *L) {
  lextractor *le = luaL_checkudata(L, 1, EXTRACTOR_MT);
  if (le->x == NULL)
    luaL_error(L, "attempt to use a finished zip extractor");
  return le;
}

static int zipextractor_write(lua_State *L) {
  lextractor *le = checkextractor(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  if (zx_write(le->x, (const unsigned char *)p, n, &le->err) != 0)
    return fail(L, NULL, &le->err);
  lua_pushboolean(L, 1);
  return 1;
}

static int zipextractor_reset(lua_State *L) {
  lextractor *le = checkextractor(L);
  if (zx_reset(le->x, &le->err) != 0)
    return fail(L, NULL, &le->err);
  lua_pushboolean(L, 1);
  return 1;
}

/* The end of the archive: checks, then renames the stage into place. Either way the
 * extractor is done; on failure nothing is left behind. */
static int zipextractor_finish(lua_State *L) {
  lextractor *le = checkextractor(L);
  size_t entries = 0;
  uint64_t bytes = 0;
  int rc = zx_finish(le->x, &entries, &bytes, &le->err);
  zx_free(le->x);
  le->x = NULL;
  if (rc != 0)
    return fail(L, NULL, &le->err);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)entries);
  lua_setfield(L, -2, "entries");
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "bytes");
  return 1;
}

/* Where an interrupted download can go on: offset (0: the start) and ETag ("" if none). */
static int zipextractor_resume_point(lua_State *L) {
  lextractor *le = checkextractor(L);
  char etag[256];
  int64_t off = zx_resume_point(le->x, etag, sizeof etag, &le->err);
  if (off < 0)
    return fail(L, NULL, &le->err);
  lua_pushinteger(L, (lua_Integer)off);
  lua_pushstring(L, etag);
  return 2;
}

static int zipextractor_start(lua_State *L) {
  lextractor *le = checkextractor(L);
  lua_Integer off = luaL_checkinteger(L, 2);
  if (zx_start(le->x, (int64_t)off, luaL_optstring(L, 3, ""), &le->err) != 0)
    return fail(L, NULL, &le->err);
  lua_pushboolean(L, 1);
  return 1;
}

static int zipextractor_partial_dir(lua_State *L) {
  lextractor *le = luaL_checkudata(L, 1, EXTRACTOR_MT);
  const char *d = le->x ? zx_partial_dir(le->x) : NULL;
  if (d)
    lua_pushstring(L, d);
  else
    lua_pushnil(L);
  return 1;
}

/* abort: removes whatever was extracted, also a resumable extractor's partial work. */
static int zipextractor_abort(lua_State *L) {
  lextractor *le = luaL_checkudata(L, 1, EXTRACTOR_MT);
  zx_discard(le->x);
  zx_free(le->x);
  le->x = NULL;
  lua_pushboolean(L, 1);
  return 1;
}

/* close, __gc and __close: as abort, except that a resumable extractor keeps its
 * partial work for the next run; safe twice. */
static int zipextractor_close(lua_State *L) {
  lextractor *le = luaL_checkudata(L, 1, EXTRACTOR_MT);
  zx_free(le->x);
  le->x = NULL;
  lua_pushboolean(L, 1);
  return 1;
}

static int zipextractor_tostring(lua_State *L) {
  lextractor *le = luaL_checkudata(L, 1, EXTRACTOR_MT);
  if (le->x == NULL)
    lua_pushliteral(L, "skafos.ZipExtractor (finished)");
  else
    lua_pushfstring(L, "skafos.ZipExtractor (%p)", (void *)le);
  return 1;
}

/* ---- registration ----------------------------------------------------------------- */

static const luaL_Reg writer_methods[] = {{"add", zipwriter_add},
                                          {"close", zipwriter_close},
                                          {"abort", zipwriter_abort},
                                          {"summary", zipwriter_summary},
                                          {NULL, NULL}};

static const luaL_Reg writer_meta[] = {{"__close", zipwriter_tbc},
                                       {"__gc", zipwriter_gc},
                                       {"__tostring", zipwriter_tostring},
                                       {NULL, NULL}};

static const luaL_Reg stream_methods[] = {{"read", zipstream_read},
                                          {"reset", zipstream_reset},
                                          {"close", zipstream_close},
                                          {NULL, NULL}};

static const luaL_Reg stream_meta[] = {{"__close", zipstream_close},
                                       {"__gc", zipstream_close},
                                       {"__len", zipstream_len},
                                       {"__index", zipstream_index},
                                       {"__tostring", zipstream_tostring},
                                       {NULL, NULL}};

static const luaL_Reg extractor_methods[] = {{"write", zipextractor_write},
                                             {"finish", zipextractor_finish},
                                             {"reset", zipextractor_reset},
                                             {"resume_point", zipextractor_resume_point},
                                             {"start", zipextractor_start},
                                             {"partial_dir", zipextractor_partial_dir},
                                             {"abort", zipextractor_abort},
                                             {"close", zipextractor_close},
                                             {NULL, NULL}};

static const luaL_Reg extractor_meta[] = {{"__close", zipextractor_close},
                                          {"__gc", zipextractor_close},
                                          {"__tostring", zipextractor_tostring},
                                          {NULL, NULL}};

static const luaL_Reg listing_meta[] = {{"__index", listing_index},
                                        {"__len", listing_len},
                                        {"__tostring", listing_tostring},
                                        {"__gc", listing_gc},
                                        {NULL, NULL}};
static const luaL_Reg zip_funcs[] = {{"create", zip_create},
                                     {"plan", zip_plan},
                                     {"writer", zip_writer},
                                     {"stream", zip_stream},
                                     {"list", zip_list},
                                     {"extract", zip_extract},
                                     {"extractor", zip_extractor},
                                     {"verify", zip_verify},
                                     {NULL, NULL}};

int luaopen_skafos_zip(lua_State *L);

int luaopen_skafos_zip(lua_State *L) {
  luaL_newmetatable(L, WRITER_MT);
  luaL_setfuncs(L, writer_meta, 0);
  luaL_newlib(L, writer_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, STREAM_MT);
  luaL_setfuncs(L, stream_meta, 0);
  luaL_newlib(L, stream_methods);
  lua_setfield(L, -2, "methods");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, SKAFOS_SOURCE_FIELD);
  lua_pop(L, 1);
  luaL_newmetatable(L, TEMP_MT);
  lua_pushcfunction(L, temp_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, EXTRACTOR_MT);
  luaL_setfuncs(L, extractor_meta, 0);
  luaL_newlib(L, extractor_methods);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, SKAFOS_SINK_FIELD);
  lua_pop(L, 1);
  luaL_newmetatable(L, ARCHIVE_MT);
  lua_pushcfunction(L, archive_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, LISTING_MT);
  luaL_setfuncs(L, listing_meta, 0);
  lua_pop(L, 1);
  luaL_newlib(L, zip_funcs);
  return 1;
}
