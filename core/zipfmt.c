/*
 * Byte layout of the zip records skafos writes (local, central, zip64 and end records),
 * the deterministic metadata rules (timestamps, modes, flags) and the entry-name checks
 * shared by the writer and the extractor. See zipfmt.h; APPNOTE.TXT 4.3 and 4.5.3.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "zipfmt.h"

#define MADE_BY_UNIX 0x031e /* Unix host, spec version 3.0, as Info-ZIP writes */

#define DOS_EPOCH 315532800 /* 1980-01-01T00:00:00Z */

void zerr_set(zerr *e, const char *code, const char *fmt, ...) {
  va_list ap;
  if (e == NULL)
    return;
  e->code = code;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
}

#define POOL_CHUNK (64u * 1024u)
#define POOL_MAX_CHUNKS 32768u      /* handles: chunk << 16 | offset, top bit clear */
#define POOL_MAX_BIG 0x7fffffffu    /* handles: top bit set | index */

/* Room for one more pointer in *arr (*cap of them). */
static int pool_room(char ***arr, uint32_t n, uint32_t *cap, uint32_t max) {
  char **g;
  uint32_t ncap;
  if (n < *cap)
    return 0;
  if (n >= max)
    return -1;
  ncap = *cap ? (*cap > max / 2 ? max : 2 * *cap) : 16;
  if ((g = realloc(*arr, (size_t)ncap * sizeof *g)) == NULL)
    return -1;
  *arr = g;
  *cap = ncap;
  return 0;
}

char *zf_pool_put_h(zf_pool *p, const char *s, size_t n, uint32_t *h) {
  char *r;
  if (n + 1 > POOL_CHUNK / 4) { /* a long string is an allocation of its own */
    if (n >= SIZE_MAX / 2 || pool_room(&p->big, p->nbig, &p->bigcap, POOL_MAX_BIG) != 0 ||
        (r = malloc(n + 1)) == NULL)
      return NULL;
    p->big[p->nbig] = r;
    *h = 0x80000000u | p->nbig++;
  } else {
    if (p->n == 0 || POOL_CHUNK - p->used < n + 1) {
      if (pool_room(&p->chunk, p->n, &p->cap, POOL_MAX_CHUNKS) != 0 ||
          (p->chunk[p->n] = malloc(POOL_CHUNK)) == NULL)
        return NULL;
      p->n++;
      p->used = 0;
    }
    r = p->chunk[p->n - 1] + p->used;
    *h = (p->n - 1) << 16 | (uint32_t)p->used;
    p->used += n + 1;
  }
  memcpy(r, s, n);
  r[n] = '\0';
  return r;
}

char *zf_pool_put(zf_pool *p, const char *s, size_t n) {
  uint32_t h;
  return zf_pool_put_h(p, s, n, &h);
}

void zf_pool_free(zf_pool *p) {
  uint32_t i;
  for (i = 0; i < p->n; i++)
    free(p->chunk[i]);
  for (i = 0; i < p->nbig; i++)
    free(p->big[i]);
  free(p->chunk);
  free(p->big);
  memset(p, 0, sizeof *p);
}

void zf_pool_clear(zf_pool *p) {
  uint32_t i;
  for (i = 1; i < p->n; i++)
    free(p->chunk[i]);
  for (i = 0; i < p->nbig; i++)
    free(p->big[i]);
  p->n = p->n ? 1 : 0;
  p->nbig = 0;
  p->used = 0;
}

int zf_needs_zip64_local(int method, uint64_t usize) {
  return method == ZF_STORE ? usize >= ZF_MAX32 : usize >= ZF_DEFLATE_ZIP64_AT;
}

/* Whether the central record carries the sizes, the offset in a zip64 extra. */
static int central_zip64_sizes(const zf_entry *e) {
  return e->zip64_local || e->usize >= ZF_MAX32 || e->csize >= ZF_MAX32;
}

static int central_zip64_offset(const zf_entry *e) { return e->offset >= ZF_MAX32; }

static uint16_t version_needed(const zf_entry *e, int zip64) {
  if (zip64)
    return 45;
  return e->method == ZF_DEFLATE ? 20 : 10;
}

static uint16_t entry_flags(const zf_entry *e) {
  size_t i;
  for (i = 0; i < e->namelen; i++)
    if ((unsigned char)e->name[i] >= 0x80)
      return ZF_FLAG_UTF8;
  return 0;
}

size_t zf_local_size(const zf_entry *e) {
  return ZF_LOCAL_FIXED + e->namelen + (e->zip64_local ? 20 : 0);
}

size_t zf_local(unsigned char *buf, const zf_entry *e) {
  unsigned char *p = buf;
  zf_put32(p, ZF_SIG_LOCAL);
  zf_put16(p + 4, version_needed(e, e->zip64_local));
  zf_put16(p + 6, entry_flags(e));
  zf_put16(p + 8, e->method);
  zf_put16(p + 10, e->dostime);
  zf_put16(p + 12, e->dosdate);
  zf_put32(p + 14, e->crc);
  zf_put32(p + 18, e->zip64_local ? ZF_MAX32 : (uint32_t)e->csize);
  zf_put32(p + 22, e->zip64_local ? ZF_MAX32 : (uint32_t)e->usize);
  zf_put16(p + 26, (uint16_t)e->namelen);
  zf_put16(p + 28, e->zip64_local ? 20 : 0);
  memcpy(p + 30, e->name, e->namelen);
  p += 30 + e->namelen;
  if (e->zip64_local) {
    zf_put16(p, 0x0001);
    zf_put16(p + 2, 16);
    zf_put64(p + 4, e->usize);
    zf_put64(p + 12, e->csize);
    p += 20;
  }
  return (size_t)(p - buf);
}

static size_t central_extra_size(const zf_entry *e) {
  size_t n = (central_zip64_sizes(e) ? 16 : 0) + (central_zip64_offset(e) ? 8 : 0);
  return n ? n + 4 : 0;
}

size_t zf_central_size(const zf_entry *e) {
  return ZF_CENTRAL_FIXED + e->namelen + central_extra_size(e);
}

size_t zf_central(unsigned char *buf, const zf_entry *e) {
  int zsizes = central_zip64_sizes(e), zoff = central_zip64_offset(e);
  size_t extra = central_extra_size(e);
  int is_dir = (e->mode & S_IFMT) == S_IFDIR;
  unsigned char *p = buf;
  zf_put32(p, ZF_SIG_CENTRAL);
  zf_put16(p + 4, MADE_BY_UNIX);
  zf_put16(p + 6, version_needed(e, zsizes || zoff));
  zf_put16(p + 8, entry_flags(e));
  zf_put16(p + 10, e->method);
  zf_put16(p + 12, e->dostime);
  zf_put16(p + 14, e->dosdate);
  zf_put32(p + 16, e->crc);
  zf_put32(p + 20, zsizes ? ZF_MAX32 : (uint32_t)e->csize);
  zf_put32(p + 24, zsizes ? ZF_MAX32 : (uint32_t)e->usize);
  zf_put16(p + 28, (uint16_t)e->namelen);
  zf_put16(p + 30, (uint16_t)extra);
  zf_put16(p + 32, 0); /* comment */
  zf_put16(p + 34, 0); /* disk */
  zf_put16(p + 36, 0); /* internal attributes */
  zf_put32(p + 38, ((uint32_t)e->mode << 16) | (is_dir ? 0x10 : 0));
  zf_put32(p + 42, zoff ? ZF_MAX32 : (uint32_t)e->offset);
  memcpy(p + 46, e->name, e->namelen);
  p += 46 + e->namelen;
  if (extra) {
    zf_put16(p, 0x0001);
    zf_put16(p + 2, (uint16_t)(extra - 4));
    p += 4;
    if (zsizes) { /* APPNOTE order: uncompressed, compressed, offset */
      zf_put64(p, e->usize);
      zf_put64(p + 8, e->csize);
      p += 16;
    }
    if (zoff) {
      zf_put64(p, e->offset);
      p += 8;
    }
  }
  return (size_t)(p - buf);
}

static int end_needs_zip64(uint64_t count, uint64_t cd_offset, uint64_t cd_size) {
  return count >= ZF_MAX16 || cd_offset >= ZF_MAX32 || cd_size >= ZF_MAX32;
}

size_t zf_end_size(uint64_t count, uint64_t cd_offset, uint64_t cd_size) {
  return ZF_EOCD_FIXED + (end_needs_zip64(count, cd_offset, cd_size)
                              ? ZF_EOCD64_FIXED + ZF_LOC64_FIXED
                              : 0);
}

size_t zf_end(unsigned char *buf, uint64_t count, uint64_t cd_offset, uint64_t cd_size) {
  unsigned char *p = buf;
  if (end_needs_zip64(count, cd_offset, cd_size)) {
    uint64_t at = cd_offset + cd_size; /* the zip64 end record follows the directory */
    zf_put32(p, ZF_SIG_EOCD64);
    zf_put64(p + 4, ZF_EOCD64_FIXED - 12);
    zf_put16(p + 12, MADE_BY_UNIX);
    zf_put16(p + 14, 45);
    zf_put32(p + 16, 0);
    zf_put32(p + 20, 0);
    zf_put64(p + 24, count);
    zf_put64(p + 32, count);
    zf_put64(p + 40, cd_size);
    zf_put64(p + 48, cd_offset);
    p += ZF_EOCD64_FIXED;
    zf_put32(p, ZF_SIG_LOC64);
    zf_put32(p + 4, 0);
    zf_put64(p + 8, at);
    zf_put32(p + 16, 1);
    p += ZF_LOC64_FIXED;
  }
  zf_put32(p, ZF_SIG_EOCD);
  zf_put16(p + 4, 0);
  zf_put16(p + 6, 0);
  zf_put16(p + 8, count >= ZF_MAX16 ? ZF_MAX16 : (uint16_t)count);
  zf_put16(p + 10, count >= ZF_MAX16 ? ZF_MAX16 : (uint16_t)count);
  zf_put32(p + 12, cd_size >= ZF_MAX32 ? ZF_MAX32 : (uint32_t)cd_size);
  zf_put32(p + 16, cd_offset >= ZF_MAX32 ? ZF_MAX32 : (uint32_t)cd_offset);
  zf_put16(p + 20, 0);
  p += ZF_EOCD_FIXED;
  return (size_t)(p - buf);
}

void zf_dostime(int64_t t, uint16_t *dostime, uint16_t *dosdate) {
  struct tm tm;
  time_t tt;
  if (t < DOS_EPOCH)
    t = DOS_EPOCH;
  tt = (time_t)t;
  gmtime_r(&tt, &tm);
  if (tm.tm_year + 1900 > 2107) {
    *dosdate = (uint16_t)((127 << 9) | (12 << 5) | 31);
    *dostime = (uint16_t)((23 << 11) | (59 << 5) | 29);
    return;
  }
  *dosdate = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
  *dostime = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
}

int64_t zf_default_epoch(void) {
  const char *s = getenv("SOURCE_DATE_EPOCH");
  char *end;
  long long v;
  if (s == NULL || *s < '0' || *s > '9')
    return DOS_EPOCH;
  v = strtoll(s, &end, 10);
  if (*end != '\0' || v < 0)
    return DOS_EPOCH;
  return (int64_t)v;
}

uint32_t zf_norm_mode(int is_dir, uint32_t disk_mode) {
  if (is_dir)
    return S_IFDIR | 0755;
  return S_IFREG | ((disk_mode & 0111) ? 0755 : 0644);
}

/* zf_check_name; with dots, a "." component followed by '/' is allowed too. */
static const char *check_name(const char *name, size_t len, int dots) {
  size_t i, start;
  if (len == 0)
    return "empty name";
  if (memchr(name, '\0', len))
    return "NUL byte in name";
  if (memchr(name, '\\', len))
    return "backslash in name";
  if (name[0] == '/')
    return "absolute name";
  if (len >= 2 && name[1] == ':' &&
      ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')))
    return "drive letter in name";
  if (len > 0xffff)
    return "name too long";
  for (start = 0; start < len; start = i + 1) {
    size_t clen;
    for (i = start; i < len && name[i] != '/'; i++) {
    }
    clen = i - start;
    if (clen == 0 && i < len)
      return "empty path component";
    if (clen == 1 && name[start] == '.' && !(dots && i < len))
      return "'.' component in name";
    if (clen == 2 && name[start] == '.' && name[start + 1] == '.')
      return "'..' component in name";
  }
  return NULL;
}

const char *zf_check_name(const char *name, size_t len) { return check_name(name, len, 0); }

int zf_made_on_dos(uint16_t made_by) {
  int host = made_by >> 8;
  return host == 0 || host == 6 || host == 10 || host == 14;
}

int zf_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    unsigned c = p[i], need, k;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07;
    } else {
      return 0; /* a continuation byte, or a lead byte of an overlong or too large form */
    }
    if (len - i - 1 < need)
      return 0;
    for (k = 1; k <= need; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += need + 1;
  }
  return 1;
}

/* Code page 437 (the IBM PC's), bytes 0x80..0xff: what APPNOTE D.1 says a name without
 * the UTF-8 flag is written in. Bytes below 0x80 are ASCII. */
static const uint16_t cp437_high[128] = {
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, /* 0x80 */
    0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
    0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, /* 0x90 */
    0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
    0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba, /* 0xa0 */
    0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, /* 0xb0 */
    0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
    0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, /* 0xc0 */
    0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, /* 0xd0 */
    0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
    0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4, /* 0xe0 */
    0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
    0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248, /* 0xf0 */
    0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

/* raw[0..len) from CP437 into UTF-8 at out (room for 3 * len bytes); returns the length. */
static size_t cp437_to_utf8(const char *raw, size_t len, char *out) {
  size_t i, k = 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)raw[i];
    uint16_t cp = c < 0x80 ? c : cp437_high[c - 0x80];
    if (cp < 0x80) {
      out[k++] = (char)cp;
    } else if (cp < 0x800) {
      out[k++] = (char)(0xc0 | (cp >> 6));
      out[k++] = (char)(0x80 | (cp & 0x3f));
    } else {
      out[k++] = (char)(0xe0 | (cp >> 12));
      out[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      out[k++] = (char)(0x80 | (cp & 0x3f));
    }
  }
  return k;
}

int zf_read_name(const char *raw, size_t len, int utf8_flag, int dos, char **out,
                 size_t *outlen, const char **why) {
  char *dec = malloc(3 * len + 1), *norm = malloc(3 * len + 1);
  size_t n, i, k, start;
  *out = NULL;
  *outlen = 0;
  *why = NULL;
  if (dec == NULL || norm == NULL) {
    free(dec);
    free(norm);
    return -1;
  }
  /* dec: the stored name as text, kept for messages */
  if (memchr(raw, '\0', len) || zf_utf8_valid(raw, len)) {
    memcpy(dec, raw, len);
    n = len;
  } else if (utf8_flag) {
    memcpy(dec, raw, len);
    n = len;
    *why = "name marked as UTF-8 is not valid UTF-8";
  } else {
    n = cp437_to_utf8(raw, len, dec);
  }
  dec[n] = '\0';
  /* norm: DOS separators read as '/', checked with "." components allowed, which are
   * then dropped (each is followed by '/', check_name saw to it) */
  for (i = 0; i <= n; i++)
    norm[i] = dos && dec[i] == '\\' ? '/' : dec[i];
  if (*why == NULL)
    *why = check_name(norm, n, 1);
  for (start = 0, k = 0; *why == NULL && start < n; start = i + 1) {
    size_t take;
    for (i = start; i < n && norm[i] != '/'; i++) {
    }
    if (i - start == 1 && norm[start] == '.')
      continue;
    take = i - start + (i < n);
    memmove(norm + k, norm + start, take);
    k += take;
  }
  /* what is left must pass the writer's own rule, or be the root */
  if (*why == NULL && k > 0)
    *why = zf_check_name(norm, k);
  if (*why != NULL) {
    free(norm);
    *out = dec;
    *outlen = n;
  } else {
    free(dec);
    norm[k] = '\0';
    *out = norm;
    *outlen = k;
  }
  return 0;
}

int zf_sort_idx(uint32_t *idx, size_t n, zf_idx_cmp cmp, const void *ctx) {
  uint32_t *tmp, *from = idx, *to;
  size_t width;
  if (n < 2)
    return 0;
  if ((tmp = malloc(n * sizeof *tmp)) == NULL)
    return -1;
  to = tmp;
  /* bottom-up merge sort: stable, n log n, one buffer of n indexes */
  for (width = 1; width < n; width *= 2) {
    size_t lo;
    uint32_t *t;
    for (lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t x = lo, y = mid, k = lo;
      while (x < mid && y < hi)
        to[k++] = cmp(ctx, from[y], from[x]) < 0 ? from[y++] : from[x++];
      while (x < mid)
        to[k++] = from[x++];
      while (y < hi)
        to[k++] = from[y++];
    }
    t = from;
    from = to;
    to = t;
  }
  if (from != idx)
    memcpy(idx, from, n * sizeof *idx);
  free(tmp);
  return 0;
}

static unsigned char fold(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

typedef struct dup_ctx {
  zf_name_at at;
  const void *ctx;
} dup_ctx;

/* A name without its one trailing '/'. */
static void trimmed(const dup_ctx *d, uint32_t i, const char **p, size_t *len) {
  d->at(d->ctx, i, p, len);
  if (*len > 0 && (*p)[*len - 1] == '/')
    (*len)--;
}

/* Orders by folded bytes, then by exact bytes, so exact duplicates end up adjacent (the
 * sort is stable: equal names stay in index order). */
static int cmp_dup(const void *ctx, uint32_t ia, uint32_t ib) {
  const char *a, *b;
  size_t la, lb, n, i;
  trimmed(ctx, ia, &a, &la);
  trimmed(ctx, ib, &b, &lb);
  n = la < lb ? la : lb;
  for (i = 0; i < n; i++) {
    unsigned char x = fold((unsigned char)a[i]), y = fold((unsigned char)b[i]);
    if (x != y)
      return x < y ? -1 : 1;
  }
  if (la != lb)
    return la < lb ? -1 : 1;
  return memcmp(a, b, n);
}

int zf_find_duplicate(size_t n, zf_name_at at, const void *ctx, size_t *a, size_t *b) {
  dup_ctx d;
  uint32_t *idx;
  size_t i;
  int found = 0, pass;
  if (n < 2)
    return 0;
  if (n > UINT32_MAX || (idx = malloc(n * sizeof *idx)) == NULL)
    return -1;
  for (i = 0; i < n; i++)
    idx[i] = (uint32_t)i;
  d.at = at;
  d.ctx = ctx;
  if (zf_sort_idx(idx, n, cmp_dup, &d) != 0) {
    free(idx);
    return -1;
  }
  for (pass = 1; pass <= 2 && !found; pass++) {
    for (i = 1; i < n; i++) {
      const char *x, *y;
      size_t lx, ly, k;
      trimmed(&d, idx[i - 1], &x, &lx);
      trimmed(&d, idx[i], &y, &ly);
      if (lx != ly)
        continue;
      if (pass == 1 && memcmp(x, y, lx) != 0)
        continue;
      for (k = 0; k < lx; k++)
        if (fold((unsigned char)x[k]) != fold((unsigned char)y[k]))
          break;
      if (k < lx)
        continue;
      *a = idx[i - 1] < idx[i] ? idx[i - 1] : idx[i];
      *b = idx[i - 1] < idx[i] ? idx[i] : idx[i - 1];
      found = pass;
      break;
    }
  }
  free(idx);
  return found;
}
