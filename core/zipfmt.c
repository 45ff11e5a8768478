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
#define FLAG_UTF8 0x0800

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
      return FLAG_UTF8;
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
  zf_put32(p + 38, (e->mode << 16) | (is_dir ? 0x10 : 0));
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

const char *zf_check_name(const char *name, size_t len) {
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
    if (clen == 1 && name[start] == '.')
      return "'.' component in name";
    if (clen == 2 && name[start] == '.' && name[start + 1] == '.')
      return "'..' component in name";
  }
  return NULL;
}

typedef struct name_ref {
  const char *p;
  size_t len;
  size_t idx;
} name_ref;

static unsigned char fold(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Orders by folded bytes, then by exact bytes, so exact duplicates end up adjacent. */
static int cmp_ref(const void *va, const void *vb) {
  const name_ref *a = va, *b = vb;
  size_t n = a->len < b->len ? a->len : b->len, i;
  int c;
  for (i = 0; i < n; i++) {
    unsigned char x = fold((unsigned char)a->p[i]), y = fold((unsigned char)b->p[i]);
    if (x != y)
      return x < y ? -1 : 1;
  }
  if (a->len != b->len)
    return a->len < b->len ? -1 : 1;
  c = memcmp(a->p, b->p, n);
  if (c)
    return c;
  return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

int zf_find_duplicate(const char *const *names, const size_t *lens, size_t n, size_t *a,
                      size_t *b) {
  name_ref *refs;
  size_t i;
  int found = 0, pass;
  if (n < 2)
    return 0;
  refs = malloc(n * sizeof *refs);
  if (refs == NULL)
    return -1;
  for (i = 0; i < n; i++) {
    refs[i].p = names[i];
    refs[i].len = lens[i];
    if (refs[i].len > 0 && names[i][refs[i].len - 1] == '/')
      refs[i].len--;
    refs[i].idx = i;
  }
  qsort(refs, n, sizeof *refs, cmp_ref);
  for (pass = 1; pass <= 2 && !found; pass++) {
    for (i = 1; i < n; i++) {
      const name_ref *x = &refs[i - 1], *y = &refs[i];
      size_t k;
      if (x->len != y->len)
        continue;
      if (pass == 1 && memcmp(x->p, y->p, x->len) != 0)
        continue;
      for (k = 0; k < x->len; k++)
        if (fold((unsigned char)x->p[k]) != fold((unsigned char)y->p[k]))
          break;
      if (k < x->len)
        continue;
      *a = x->idx < y->idx ? x->idx : y->idx;
      *b = x->idx < y->idx ? y->idx : x->idx;
      found = pass;
      break;
    }
  }
  free(refs);
  return found;
}
