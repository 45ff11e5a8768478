/*
 * The defensive zip reader behind zip.list and zip.extract. It trusts nothing in the
 * archive: every offset and size is bounds-checked, entry data are checked against the
 * declared sizes and CRC, and extraction writes only inside a staging directory.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <zlib.h>

#include "crc32x.h"
#include "zipread.h"

/* minizip's unzip trusts local headers, skips the CRC check of short entries and checks
 * no path; parsing the few records ourselves keeps every check in one place. */

#define CD_MAX (512u << 20) /* refuse central directories larger than this */
#define CHUNK (1u << 20)
#define SYMLINK_MAX ZR_SYMLINK_MAX
#define FLAG_DESCRIPTOR 0x08 /* CRC and sizes follow the data */

static int fd_pread(void *ud, void *buf, size_t n, uint64_t off) {
  int fd = (int)(intptr_t)ud;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

static int io_read(const zr_archive *a, void *buf, size_t n, uint64_t off) {
  if (off > a->io.size || n > a->io.size - off)
    return -1;
  return a->io.pread(a->io.ud, buf, n, off);
}

/* ---- the entry table ------------------------------------------------------------- */

#define SLOT_MAX18 ((1u << 18) - 1)

const zr_entry *zr_get(const zr_table *t, size_t i, zr_entry *e) {
  const zr_slot *s = &t->s[i];
  e->name = zf_pool_at(&t->names, s->name);
  e->name_h = s->name;
  e->crc = s->crc;
  e->rawlen = s->rawlen;
  e->mode = s->mode;
  e->flags = (uint16_t)s->flags;
  e->is_dir = s->is_dir;
  e->is_symlink = s->is_symlink;
  e->name_bad = s->name_bad;
  e->raw_apart = s->raw_apart;
  e->dos_names = s->dos_names;
  e->listed = s->listed;
  if (s->wide) {
    const zr_wide *w = &t->w[s->csize];
    e->csize = w->csize;
    e->usize = w->usize;
    e->offset = w->offset;
    e->namelen = w->namelen;
    e->data_delta = w->data_delta;
    e->method = w->method;
  } else {
    e->csize = s->csize;
    e->usize = s->usize;
    e->offset = s->offset;
    e->namelen = (uint32_t)s->namelen;
    e->data_delta = (uint32_t)s->data_delta;
    e->method = s->deflated ? ZF_DEFLATE : ZF_STORE;
  }
  return e;
}

int zr_set(zr_table *t, size_t i, const zr_entry *e) {
  zr_slot *s = &t->s[i];
  int wide = s->wide || e->csize >= UINT32_MAX || e->usize >= UINT32_MAX ||
             e->offset >= UINT32_MAX || e->namelen > SLOT_MAX18 || e->data_delta > SLOT_MAX18 ||
             (e->method != ZF_STORE && e->method != ZF_DEFLATE);
  if (wide) {
    size_t k = s->wide ? s->csize : t->nw;
    if (!s->wide && t->nw == t->wcap) {
      size_t ncap = t->wcap ? 2 * t->wcap : 16;
      zr_wide *g;
      if (ncap > UINT32_MAX || (g = realloc(t->w, ncap * sizeof *g)) == NULL)
        return -1;
      t->w = g;
      t->wcap = ncap;
    }
    if (!s->wide)
      t->nw++;
    t->w[k].csize = e->csize;
    t->w[k].usize = e->usize;
    t->w[k].offset = e->offset;
    t->w[k].namelen = e->namelen;
    t->w[k].data_delta = e->data_delta;
    t->w[k].method = e->method;
    s->wide = 1;
    s->csize = (uint32_t)k;
    s->usize = s->offset = 0;
    s->namelen = s->data_delta = 0;
    s->deflated = 0;
  } else {
    s->csize = (uint32_t)e->csize;
    s->usize = (uint32_t)e->usize;
    s->offset = (uint32_t)e->offset;
    s->namelen = e->namelen;
    s->data_delta = e->data_delta;
    s->deflated = e->method == ZF_DEFLATE;
  }
  s->name = e->name_h;
  s->crc = e->crc;
  s->rawlen = e->rawlen;
  s->mode = e->mode;
  s->flags = e->flags;
  s->is_dir = e->is_dir;
  s->is_symlink = e->is_symlink;
  s->name_bad = e->name_bad;
  s->raw_apart = e->raw_apart;
  s->dos_names = e->dos_names;
  s->listed = e->listed;
  return 0;
}

int zr_table_reserve(zr_table *t, size_t n) {
  zr_slot *g;
  if (n <= t->cap)
    return 0;
  if (n > SIZE_MAX / sizeof *g || (g = realloc(t->s, n * sizeof *g)) == NULL)
    return -1;
  t->s = g;
  t->cap = n;
  return 0;
}

int zr_push(zr_table *t, const zr_entry *e) {
  if (t->n == t->cap && zr_table_reserve(t, t->cap ? 2 * t->cap : 64) != 0)
    return -1;
  memset(&t->s[t->n], 0, sizeof t->s[t->n]);
  if (zr_set(t, t->n, e) != 0)
    return -1;
  t->n++;
  return 0;
}

void zr_table_free(zr_table *t) {
  free(t->s);
  free(t->w);
  zf_pool_free(&t->names);
  memset(t, 0, sizeof *t);
}

int zr_entry_names(zr_entry *e, zf_pool *pool, const char *raw, size_t rawlen, int dos,
                   zerr *err) {
  char *name, *both;
  const char *why;
  size_t namelen;
  if (zf_read_name(raw, rawlen, e->flags & ZF_FLAG_UTF8, dos, &name, &namelen, &why) != 0)
    goto oom;
  e->rawlen = (uint16_t)rawlen;
  e->namelen = (uint32_t)namelen;
  e->name_bad = why != NULL;
  e->dos_names = dos != 0;
  e->raw_apart = namelen != rawlen || memcmp(name, raw, rawlen) != 0;
  if (!e->raw_apart) {
    e->name = zf_pool_put_h(pool, name, namelen, &e->name_h);
  } else if ((both = realloc(name, namelen + 1 + rawlen)) != NULL) {
    /* name, its NUL, then the stored bytes: one piece of the pool (see zr_raw) */
    name = both;
    name[namelen] = '\0';
    memcpy(name + namelen + 1, raw, rawlen);
    e->name = zf_pool_put_h(pool, name, namelen + 1 + rawlen, &e->name_h);
  } else {
    e->name = NULL;
  }
  free(name);
  if (e->name == NULL)
    goto oom;
  e->is_dir = rawlen > 0 && (raw[rawlen - 1] == '/' || (dos && raw[rawlen - 1] == '\\'));
  return 0;
oom:
  zerr_set(err, "NOMEM", "out of memory");
  return -1;
}

const char *zr_name_problem(const zr_entry *e) {
  if (e->name_bad) { /* rare: the reason is found again rather than kept for each entry */
    char *name;
    size_t len;
    const char *why = NULL;
    if (zf_read_name(zr_raw(e), e->rawlen, e->flags & ZF_FLAG_UTF8, e->dos_names, &name, &len,
                     &why) != 0)
      return "cannot be read (out of memory)";
    free(name);
    return why ? why : "cannot be read";
  }
  if (e->namelen == 0 && e->rawlen > 0)
    return NULL; /* the root, "./" */
  return zf_check_name(e->name, e->namelen);
}

void zr_close(zr_archive *a) {
  zr_table_free(&a->t);
  if (a->fd >= 0)
    close(a->fd);
  a->fd = -1;
}

/* A printable copy of an entry name for messages; the root shows as stored. Control
 * bytes, and every byte past ASCII in a name that is not UTF-8, are escaped. */
const char *zr_shown(const zr_entry *e, char *buf, size_t len) {
  int root = e->namelen == 0 && e->rawlen > 0;
  const char *name = root ? zr_raw(e) : e->name;
  size_t i, k = 0, n = root ? e->rawlen : e->namelen;
  int utf8 = zf_utf8_valid(name, n);
  for (i = 0; i < n && k + 5 < len; i++) {
    unsigned char c = (unsigned char)name[i];
    size_t seq = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      k += (size_t)snprintf(buf + k, len - k, "\\x%02x", c);
    } else if (c >= 0xc0) { /* a whole character or none, so a cut name stays UTF-8 */
      if (k + seq + 4 >= len)
        break;
      memcpy(buf + k, name + i, seq);
      k += seq;
      i += seq - 1;
    } else {
      buf[k++] = (char)c;
    }
  }
  if (i < n && k + 4 < len)
    k += (size_t)snprintf(buf + k, len - k, "...");
  buf[k < len ? k : len - 1] = '\0';
  return buf;
}

#define NAMEBUF ZR_NAMEBUF

static int find_eocd(zr_archive *a, uint64_t *eocd, zerr *err) {
  uint64_t size = a->io.size, tail = size < 65557 ? size : 65557, start = size - tail;
  unsigned char *buf;
  size_t i;
  int found = 0;
  if (size < ZF_EOCD_FIXED) {
    zerr_set(err, "INTEGRITY", "not a zip archive (only %llu bytes)",
             (unsigned long long)size);
    return -1;
  }
  buf = malloc((size_t)tail);
  if (buf == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  if (io_read(a, buf, (size_t)tail, start) != 0) {
    free(buf);
    zerr_set(err, "IO", "cannot read the archive");
    return -1;
  }
  /* prefer the record whose comment ends the file; accept trailing bytes otherwise */
  for (i = (size_t)tail - ZF_EOCD_FIXED + 1; i-- > 0;) {
    if (zf_get32(buf + i) != ZF_SIG_EOCD)
      continue;
    if (i + ZF_EOCD_FIXED + zf_get16(buf + i + 20) == tail) {
      *eocd = start + i;
      found = 2;
      break;
    }
    if (!found && i + ZF_EOCD_FIXED + zf_get16(buf + i + 20) <= tail) {
      *eocd = start + i;
      found = 1;
    }
  }
  free(buf);
  if (!found)
    zerr_set(err, "INTEGRITY", "no end of central directory: not a zip archive, or truncated");
  return found ? 0 : -1;
}

/* Reads the zip64 extra field values a central record needs. */
static int parse_zip64(zr_entry *e, const unsigned char *x, size_t xlen, int need_u,
                       int need_c, int need_o) {
  size_t p = 0;
  while (p + 4 <= xlen) {
    uint16_t id = zf_get16(x + p), len = zf_get16(x + p + 2);
    if (p + 4 + len > xlen)
      return -1;
    if (id == 0x0001) {
      const unsigned char *v = x + p + 4;
      size_t need = 8u * (size_t)(need_u + need_c + need_o), k = 0;
      if (len < need)
        return -1;
      if (need_u) {
        e->usize = zf_get64(v + k);
        k += 8;
      }
      if (need_c) {
        e->csize = zf_get64(v + k);
        k += 8;
      }
      if (need_o)
        e->offset = zf_get64(v + k);
      return 0;
    }
    p += 4 + (size_t)len;
  }
  return need_u || need_c || need_o ? -1 : 0;
}

/* The central directory is read through a window of CD_WINDOW bytes, which holds the
 * largest record (46 bytes and three fields of at most 65535). */
#define CD_WINDOW (512u * 1024u)

/* Makes at least n bytes from win[*at] on available, reading on from the directory
 * (*got bytes of it read so far); -1 when the directory holds fewer. */
static int cd_window(const zr_archive *a, unsigned char *win, size_t *have, size_t *at,
                     uint64_t *got, size_t n) {
  size_t want;
  if (*have - *at >= n)
    return 0;
  memmove(win, win + *at, *have - *at);
  *have -= *at;
  *at = 0;
  want = CD_WINDOW - *have;
  if (want > a->cd_size - *got)
    want = (size_t)(a->cd_size - *got);
  if (want > 0 && io_read(a, win + *have, want, a->cd_offset + *got) != 0)
    return -1;
  *have += want;
  *got += want;
  return *have >= n ? 0 : -1;
}

int zr_open_end(zr_archive *a, const zr_io *io, uint64_t max_entries, uint64_t *count,
                zerr *err) {
  unsigned char rec[ZF_EOCD64_FIXED];
  uint64_t eocd = 0, cd_end;
  memset(a, 0, sizeof *a);
  a->fd = -1;
  a->io = *io;
  if (find_eocd(a, &eocd, err) != 0)
    return -1;
  if (io_read(a, rec, ZF_EOCD_FIXED, eocd) != 0) {
    zerr_set(err, "INTEGRITY", "the archive is truncated");
    return -1;
  }
  if (zf_get16(rec + 4) != 0 || zf_get16(rec + 6) != 0) {
    zerr_set(err, "UNSAFE_ARCHIVE", "multi-disk archives are not supported");
    return -1;
  }
  *count = zf_get16(rec + 10);
  a->cd_size = zf_get32(rec + 12);
  a->cd_offset = zf_get32(rec + 16);
  a->end = eocd + ZF_EOCD_FIXED + zf_get16(rec + 20);
  cd_end = eocd;
  if (eocd >= ZF_LOC64_FIXED && io_read(a, rec, ZF_LOC64_FIXED, eocd - ZF_LOC64_FIXED) == 0 &&
      zf_get32(rec) == ZF_SIG_LOC64) {
    uint64_t at = zf_get64(rec + 8);
    if (zf_get32(rec + 4) != 0 || zf_get32(rec + 16) > 1) {
      zerr_set(err, "UNSAFE_ARCHIVE", "multi-disk archives are not supported");
      return -1;
    }
    if (at > eocd - ZF_LOC64_FIXED || eocd - ZF_LOC64_FIXED - at < ZF_EOCD64_FIXED ||
        io_read(a, rec, ZF_EOCD64_FIXED, at) != 0 || zf_get32(rec) != ZF_SIG_EOCD64) {
      zerr_set(err, "INTEGRITY", "bad zip64 end of central directory record");
      return -1;
    }
    if (zf_get32(rec + 16) != 0 || zf_get32(rec + 20) != 0 ||
        zf_get64(rec + 24) != zf_get64(rec + 32)) {
      zerr_set(err, "UNSAFE_ARCHIVE", "multi-disk archives are not supported");
      return -1;
    }
    *count = zf_get64(rec + 32);
    a->cd_size = zf_get64(rec + 40);
    a->cd_offset = zf_get64(rec + 48);
    cd_end = at;
  }
  if (a->cd_offset > cd_end || cd_end - a->cd_offset != a->cd_size) {
    zerr_set(err, "INTEGRITY",
             "central directory does not end where the end record says (truncated?)");
    return -1;
  }
  if (a->cd_size > CD_MAX) {
    zerr_set(err, "UNSAFE_ARCHIVE", "central directory of %llu bytes is too large",
             (unsigned long long)a->cd_size);
    return -1;
  }
  if (*count > a->cd_size / ZF_CENTRAL_FIXED) {
    zerr_set(err, "INTEGRITY", "central directory too short for %llu entries (truncated?)",
             (unsigned long long)*count);
    return -1;
  }
  if (max_entries != 0 && *count > max_entries) {
    zerr_set(err, "UNSAFE_ARCHIVE",
             "the archive has %llu entries, more than the limit of %llu (raise it with "
             "--max-entries or the max_entries setting)",
             (unsigned long long)*count, (unsigned long long)max_entries);
    return -1;
  }
  return 0;
}

size_t zr_central_len(const unsigned char *r) {
  return ZF_CENTRAL_FIXED + (size_t)zf_get16(r + 28) + zf_get16(r + 30) + zf_get16(r + 32);
}

int zr_parse_central(const unsigned char *r, zf_pool *pool, zr_entry *e, zerr *err) {
  size_t nl = zf_get16(r + 28), xl = zf_get16(r + 30);
  uint32_t c32, u32, o32, ext_attr;
  uint16_t made_by;
  if (zf_get16(r + 34) != 0 && zf_get16(r + 34) != ZF_MAX16) {
    zerr_set(err, "UNSAFE_ARCHIVE", "multi-disk archives are not supported");
    return -1;
  }
  memset(e, 0, sizeof *e);
  made_by = zf_get16(r + 4);
  e->flags = zf_get16(r + 8);
  e->method = zf_get16(r + 10);
  e->crc = zf_get32(r + 16);
  c32 = zf_get32(r + 20);
  u32 = zf_get32(r + 24);
  ext_attr = zf_get32(r + 38);
  o32 = zf_get32(r + 42);
  e->csize = c32;
  e->usize = u32;
  e->offset = o32;
  if (zr_entry_names(e, pool, (const char *)r + ZF_CENTRAL_FIXED, nl, zf_made_on_dos(made_by),
                     err) != 0)
    return -1;
  if (parse_zip64(e, r + ZF_CENTRAL_FIXED + nl, xl, u32 == ZF_MAX32, c32 == ZF_MAX32,
                  o32 == ZF_MAX32) != 0) {
    char nb[NAMEBUF];
    zerr_set(err, "INTEGRITY", "entry '%s': bad or missing zip64 field",
             zr_shown(e, nb, sizeof nb));
    return -1;
  }
  if ((made_by >> 8) == 3 || (made_by >> 8) == 19)
    e->mode = (uint16_t)(ext_attr >> 16);
  e->is_symlink = (e->mode & S_IFMT) == S_IFLNK;
  e->is_dir = e->is_dir || (e->mode & S_IFMT) == S_IFDIR ||
              ((made_by >> 8) == 0 && (ext_attr & 0x10));
  return 0;
}

int zr_open(zr_archive *a, const zr_io *io, uint64_t max_entries, zerr *err) {
  unsigned char *cd;
  zr_entry e;
  uint64_t count, p = 0, got = 0;
  size_t i, have = 0, wat = 0;
  if (zr_open_end(a, io, max_entries, &count, err) != 0)
    return -1;
  /* the directory goes through a window, never whole: a million entries are 60 MB of
   * it, and only the entries are kept */
  cd = malloc(CD_WINDOW);
  if (cd == NULL || zr_table_reserve(&a->t, count ? (size_t)count : 1) != 0) {
    free(cd);
    zerr_set(err, "NOMEM", "out of memory");
    zr_close(a);
    return -1;
  }
  for (i = 0; i < count; i++) {
    const unsigned char *r;
    size_t len;
    if (cd_window(a, cd, &have, &wat, &got, ZF_CENTRAL_FIXED) != 0)
      goto trunc;
    r = cd + wat;
    if (a->cd_size - p < ZF_CENTRAL_FIXED || zf_get32(r) != ZF_SIG_CENTRAL)
      goto badcd;
    len = zr_central_len(r);
    if (a->cd_size - p < len)
      goto badcd;
    if (cd_window(a, cd, &have, &wat, &got, len) != 0)
      goto trunc;
    if (zr_parse_central(cd + wat, &a->t.names, &e, err) != 0)
      goto fail;
    if (zr_push(&a->t, &e) != 0) {
      zerr_set(err, "NOMEM", "out of memory");
      goto fail;
    }
    wat += len;
    p += len;
  }
  if (p != a->cd_size)
    goto badcd;
  free(cd);
  return 0;
badcd:
  zerr_set(err, "INTEGRITY", "central directory is corrupt or truncated");
  goto fail;
trunc:
  zerr_set(err, "INTEGRITY", "the archive is truncated");
fail:
  free(cd);
  zr_close(a);
  return -1;
}

int zr_open_file(zr_archive *a, const char *path, uint64_t max_entries, zerr *err) {
  struct stat st;
  zr_io io;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    zerr_set(err, fd < 0 && errno == ENOENT ? "NOT_FOUND" : "IO", "cannot read %s: %s", path,
             fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  io.pread = fd_pread;
  io.ud = (void *)(intptr_t)fd;
  io.size = (uint64_t)st.st_size;
  if (zr_open(a, &io, max_entries, err) != 0) {
    close(fd);
    return -1;
  }
  a->fd = fd;
  return 0;
}

/* ---- checks ----------------------------------------------------------------------- */

static int cmp_offset(const void *ctx, uint32_t x, uint32_t y) {
  uint64_t a = zr_offset_of(ctx, x), b = zr_offset_of(ctx, y);
  return a < b ? -1 : a > b;
}

/* Entry indexes by ascending offset; the caller frees. */
static uint32_t *by_offset(const zr_archive *a) {
  uint32_t *idx = malloc((a->t.n ? a->t.n : 1) * sizeof *idx);
  size_t i;
  if (idx == NULL)
    return NULL;
  for (i = 0; i < a->t.n; i++)
    idx[i] = (uint32_t)i;
  if (zf_sort_idx(idx, a->t.n, cmp_offset, &a->t) != 0) {
    free(idx);
    return NULL;
  }
  return idx;
}

/* An entry unsafe to extract: with lim->unsafe the first one is kept there and the
 * checks go on (0), else it is the failure (-1). err holds its message. */
static int unsafe_entry(const zr_limits *lim, const zerr *err) {
  if (lim->unsafe == NULL)
    return -1;
  if (lim->unsafe->code == NULL)
    *lim->unsafe = *err;
  return 0;
}

static int entry_name_ok(const zr_entry *e, zerr *err) {
  char nb[NAMEBUF];
  const char *why = zr_name_problem(e);
  if (why) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s': %s", zr_shown(e, nb, sizeof nb), why);
    return -1;
  }
  return 0;
}

/* Whether the data can be read and checked at all. */
static int entry_readable(const zr_entry *e, zerr *err) {
  char nb[NAMEBUF];
  if (e->flags & 0x41) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' is encrypted", zr_shown(e, nb, sizeof nb));
    return -1;
  }
  if (e->method != ZF_STORE && e->method != ZF_DEFLATE) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' uses unsupported compression method %u",
             zr_shown(e, nb, sizeof nb), e->method);
    return -1;
  }
  return 0;
}

/* Symlinks when allowed and well formed; directories without data. */
static int entry_kind_ok(const zr_entry *e, const zr_limits *lim, zerr *err) {
  char nb[NAMEBUF];
  if (e->is_symlink && !lim->symlinks_inside) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' is a symlink", zr_shown(e, nb, sizeof nb));
    return -1;
  }
  if (e->is_symlink && (e->is_dir || e->usize > SYMLINK_MAX || e->usize == 0)) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' is not a valid symlink",
             zr_shown(e, nb, sizeof nb));
    return -1;
  }
  if (e->is_dir && (e->usize != 0 || (e->namelen > 0 && e->name[e->namelen - 1] != '/') ||
                    (e->namelen == 0 && e->rawlen == 0))) {
    zerr_set(err, "UNSAFE_ARCHIVE", "directory entry '%s' is malformed or has data",
             zr_shown(e, nb, sizeof nb));
    return -1;
  }
  return 0;
}

int zr_check_entry(const zr_entry *e, const zr_limits *lim, zerr *err) {
  if (entry_name_ok(e, err) != 0 || entry_readable(e, err) != 0 ||
      entry_kind_ok(e, lim, err) != 0)
    return -1;
  return 0;
}

static void entry_name_at(const void *ctx, size_t i, const char **p, size_t *len) {
  *p = zr_name_of(ctx, i);
  *len = zr_namelen_of(ctx, i);
}

/* Names in byte order (then shorter first), for the search of files by prefix. */
static int cmp_entry_name(const void *ctx, uint32_t x, uint32_t y) {
  size_t la = zr_namelen_of(ctx, x), lb = zr_namelen_of(ctx, y);
  int c = memcmp(zr_name_of(ctx, x), zr_name_of(ctx, y), la < lb ? la : lb);
  return c ? c : (la < lb ? -1 : la > lb);
}

/* Whether files[0..n) (sorted by cmp_entry_name) holds the name p[0..len). */
static int has_file(const zr_table *t, const uint32_t *files, size_t n, const char *p,
                    size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    size_t fl = zr_namelen_of(t, files[mid]);
    int c = memcmp(zr_name_of(t, files[mid]), p, fl < len ? fl : len);
    if (c == 0)
      c = fl < len ? -1 : fl > len;
    if (c == 0)
      return 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

int zr_check_names(zr_archive *a, const zr_limits *lim, zerr *err) {
  uint32_t *files = NULL;
  size_t i, x, y, nfiles = 0;
  char nb[NAMEBUF], nb2[NAMEBUF];
  zr_entry ew, ew2;
  int dup, rc = -1;
  for (i = 0; i < a->t.n; i++) {
    const zr_entry *e = zr_get(&a->t, i, &ew);
    if (lim->unsafe == NULL) {
      if (zr_check_entry(e, lim, err) != 0)
        return -1;
    } else if (entry_readable(e, err) != 0) {
      return -1; /* what cannot be read cannot be checked: never only reported */
    } else if (entry_name_ok(e, err) != 0 || entry_kind_ok(e, lim, err) != 0) {
      unsafe_entry(lim, err);
    }
  }
  dup = zf_find_duplicate(a->t.n, entry_name_at, &a->t, &x, &y);
  if (dup < 0) {
    zerr_set(err, "NOMEM", "out of memory");
    goto done;
  }
  if (dup) {
    zerr_set(err, "UNSAFE_ARCHIVE",
             dup == 1 ? "entry '%s' appears twice%.0s" : "entries '%s' and '%s' differ only by case",
             zr_shown(zr_get(&a->t, x, &ew), nb, sizeof nb),
             zr_shown(zr_get(&a->t, y, &ew2), nb2, sizeof nb2));
    if (unsafe_entry(lim, err) != 0)
      goto done;
  }
  /* nothing may live under a file or a symlink: "a" then "a/b" */
  if ((files = malloc((a->t.n ? a->t.n : 1) * sizeof *files)) == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    goto done;
  }
  for (i = 0; i < a->t.n; i++)
    if (!a->t.s[i].is_dir)
      files[nfiles++] = (uint32_t)i;
  if (zf_sort_idx(files, nfiles, cmp_entry_name, &a->t) != 0) {
    zerr_set(err, "NOMEM", "out of memory");
    goto done;
  }
  for (i = 0; i < a->t.n; i++) {
    const zr_entry *e = zr_get(&a->t, i, &ew);
    size_t k;
    for (k = 1; k < e->namelen; k++) {
      if (e->name[k] != '/' || !has_file(&a->t, files, nfiles, e->name, k))
        continue;
      zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' lies under the file or symlink '%.*s'",
               zr_shown(e, nb, sizeof nb), (int)k, e->name);
      if (unsafe_entry(lim, err) != 0)
        goto done;
      goto checked; /* kept: one is enough */
    }
  }
checked:
  rc = 0;
done:
  free(files);
  return rc;
}

int zr_check(zr_archive *a, const zr_limits *lim, zerr *err) {
  uint32_t *idx;
  size_t i, renamed = SIZE_MAX;
  uint64_t declared = 0;
  char nb[NAMEBUF], nb2[NAMEBUF];
  zr_entry ew, ew2;
  if (zr_check_names(a, lim, err) != 0)
    return -1;
  for (i = 0; i < a->t.n; i++) {
    zr_entry *e = (zr_entry *)zr_get(&a->t, i, &ew);
    unsigned char h[ZF_LOCAL_FIXED];
    char *lname;
    size_t nl, xl;
    int same;
    if (e->offset > a->cd_offset || a->cd_offset - e->offset < ZF_LOCAL_FIXED ||
        io_read(a, h, ZF_LOCAL_FIXED, e->offset) != 0 || zf_get32(h) != ZF_SIG_LOCAL) {
      zerr_set(err, "INTEGRITY", "entry '%s': no local header where the directory says",
               zr_shown(e, nb, sizeof nb));
      return -1;
    }
    nl = zf_get16(h + 26);
    xl = zf_get16(h + 28);
    if (zf_get16(h + 8) != e->method || ((zf_get16(h + 6) ^ e->flags) & 0x41)) {
      zerr_set(err, "INTEGRITY", "entry '%s': local header disagrees with the directory",
               zr_shown(e, nb, sizeof nb));
      return -1;
    }
    lname = malloc(nl + 1);
    if (lname == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    same = nl == e->rawlen && io_read(a, lname, nl, e->offset + ZF_LOCAL_FIXED) == 0 &&
           memcmp(lname, zr_raw(e), nl) == 0;
    free(lname);
    if (!same && renamed == SIZE_MAX)
      renamed = i; /* reported after the overlap check, which explains more */
    e->data_delta = (uint32_t)(ZF_LOCAL_FIXED + nl + xl);
    if (zr_set(&a->t, i, e) != 0) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    if (zr_data_offset(e) > a->cd_offset || a->cd_offset - zr_data_offset(e) < e->csize) {
      zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s': data overlap the central directory",
               zr_shown(e, nb, sizeof nb));
      return -1;
    }
    if (e->method == ZF_STORE && e->csize != e->usize) {
      zerr_set(err, "INTEGRITY", "stored entry '%s' declares different sizes",
               zr_shown(e, nb, sizeof nb));
      return -1;
    }
    if (declared + e->usize < declared)
      declared = UINT64_MAX;
    else
      declared += e->usize;
  }
  idx = by_offset(a);
  if (idx == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  for (i = 1; i < a->t.n; i++) {
    const zr_entry *p = zr_get(&a->t, idx[i - 1], &ew), *q = zr_get(&a->t, idx[i], &ew2);
    if (q->offset < zr_data_offset(p) + p->csize) {
      zerr_set(err, "UNSAFE_ARCHIVE", "entries '%s' and '%s' overlap",
               zr_shown(p, nb, sizeof nb), zr_shown(q, nb2, sizeof nb2));
      free(idx);
      return -1;
    }
  }
  free(idx);
  if (renamed != SIZE_MAX) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s': local header names a different file",
             zr_shown(zr_get(&a->t, renamed, &ew), nb, sizeof nb));
    return -1;
  }
  if (lim->max_size && declared > lim->max_size) {
    if (lim->space_dir)
      zerr_set(err, "NO_SPACE", "not enough space in %s: the entries declare %llu bytes, %llu are free",
               lim->space_dir, (unsigned long long)declared, (unsigned long long)lim->max_size);
    else
      zerr_set(err, "UNSAFE_ARCHIVE", "entries declare %llu bytes, over the limit of %llu",
               (unsigned long long)declared, (unsigned long long)lim->max_size);
    return -1;
  }
  return 0;
}

/* The CRC and sizes an entry's local header gives, read as the streaming extractor reads
 * them (zip64 values when the extra field has both), and whether it has a zip64 field
 * (its data descriptor then holds 64-bit sizes). */
typedef struct local_info {
  uint16_t flags;
  uint32_t crc;
  uint64_t csize, usize;
  int zip64;
} local_info;

static int read_local(zr_archive *a, const zr_entry *e, local_info *li, zerr *err) {
  unsigned char h[ZF_LOCAL_FIXED], *x;
  size_t nl, xl, p = 0;
  char nb[NAMEBUF];
  if (io_read(a, h, ZF_LOCAL_FIXED, e->offset) != 0)
    goto trunc;
  li->flags = zf_get16(h + 6);
  li->crc = zf_get32(h + 14);
  li->csize = zf_get32(h + 18);
  li->usize = zf_get32(h + 22);
  li->zip64 = 0;
  nl = zf_get16(h + 26);
  xl = zf_get16(h + 28);
  if (xl == 0)
    return 0;
  x = malloc(xl);
  if (x == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  if (io_read(a, x, xl, e->offset + ZF_LOCAL_FIXED + nl) != 0) {
    free(x);
    goto trunc;
  }
  while (p + 4 <= xl) {
    size_t id = zf_get16(x + p), len = zf_get16(x + p + 2);
    if (p + 4 + len > xl)
      break;
    if (id == 0x0001) {
      li->zip64 = 1;
      if (len >= 16 && (li->usize == ZF_MAX32 || li->csize == ZF_MAX32)) {
        li->usize = zf_get64(x + p + 4);
        li->csize = zf_get64(x + p + 12);
      }
    }
    p += 4 + len;
  }
  free(x);
  return 0;
trunc:
  zerr_set(err, "INTEGRITY", "entry '%s': the archive is truncated", zr_shown(e, nb, sizeof nb));
  return -1;
}

int zr_check_stream(zr_archive *a, zerr *err) {
  uint32_t *idx = by_offset(a);
  size_t i;
  uint64_t at = 0; /* where the next record must start */
  char nb[NAMEBUF];
  zr_entry ew;
  int rc = -1;
  if (idx == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  for (i = 0; i < a->t.n; i++) {
    const zr_entry *e = zr_get(&a->t, idx[i], &ew);
    local_info li;
    if (e->offset != at) {
      zerr_set(err, "INTEGRITY", "unexpected bytes at offset %llu, before entry '%s': not a "
               "zip entry", (unsigned long long)at, zr_shown(e, nb, sizeof nb));
      goto done;
    }
    if (read_local(a, e, &li, err) != 0)
      goto done;
    if (e->method == ZF_STORE && (li.flags & FLAG_DESCRIPTOR) && li.csize == 0 && li.usize == 0) {
      rc = 0; /* read from the file, not front to back */
      goto done;
    }
    at = zr_data_offset(e) + e->csize;
    /* stored data are as long as the local header says; deflated data with a
     * descriptor end where the stream ends, which zr_read_entry ties to e->csize */
    if ((!(li.flags & FLAG_DESCRIPTOR) || e->method == ZF_STORE) &&
        (li.csize != e->csize || li.usize != (e->method == ZF_STORE ? e->csize : e->usize) ||
         (!(li.flags & FLAG_DESCRIPTOR) && li.crc != e->crc))) {
      zerr_set(err, "INTEGRITY", "entry '%s': its local header gives other sizes or CRC than "
               "the central directory", zr_shown(e, nb, sizeof nb));
      goto done;
    }
    if (li.flags & FLAG_DESCRIPTOR) {
      unsigned char d[4 + 20];
      size_t body = li.zip64 ? 20 : 12, skip = 0;
      int found = io_read(a, d, 4, at) == 0;
      if (found) { /* the signature is optional */
        skip = zf_get32(d) == ZF_SIG_DESCRIPTOR ? 4 : 0;
        found = io_read(a, d, skip + body, at) == 0;
      }
      if (!found) {
        zerr_set(err, "INTEGRITY", "entry '%s': its data descriptor is missing or truncated",
                 zr_shown(e, nb, sizeof nb));
        goto done;
      }
      if (zf_get32(d + skip) != e->crc ||
          (li.zip64 ? zf_get64(d + skip + 4) : zf_get32(d + skip + 4)) != e->csize ||
          (li.zip64 ? zf_get64(d + skip + 12) : zf_get32(d + skip + 8)) != e->usize) {
        zerr_set(err, "INTEGRITY", "entry '%s': its data descriptor gives other sizes or CRC "
                 "than the central directory", zr_shown(e, nb, sizeof nb));
        goto done;
      }
      at += skip + body;
    }
  }
  if (a->cd_offset != at) {
    zerr_set(err, "INTEGRITY", "unexpected bytes at offset %llu, before the central directory",
             (unsigned long long)at);
    goto done;
  }
  if (a->end != a->io.size) {
    zerr_set(err, "INTEGRITY", "%llu bytes follow the end of central directory record",
             (unsigned long long)(a->io.size - a->end));
    goto done;
  }
  rc = 0;
done:
  free(idx);
  return rc;
}

/* ---- entry data ------------------------------------------------------------------- */

/* n more bytes of entry e produced, written of it so far, after reading the archive up
 * to offset at. */
static int produced(zr_archive *a, const zr_entry *e, uint64_t written, uint64_t at,
                    const zr_limits *lim, zr_progress *pr, size_t n, zerr *err) {
  char nb[NAMEBUF];
  if (written > e->usize) {
    zerr_set(err, "INTEGRITY", "entry '%s' holds more bytes than the %llu it declares",
             zr_shown(e, nb, sizeof nb), (unsigned long long)e->usize);
    return -1;
  }
  pr->written += n;
  if (lim->max_size && pr->written > lim->max_size) {
    if (lim->space_dir)
      zerr_set(err, "NO_SPACE", "not enough space in %s: extracting '%s' needs more than the %llu bytes free",
               lim->space_dir, zr_shown(e, nb, sizeof nb), (unsigned long long)lim->max_size);
    else
      zerr_set(err, "UNSAFE_ARCHIVE", "extracting '%s' passes the limit of %llu bytes",
               zr_shown(e, nb, sizeof nb), (unsigned long long)lim->max_size);
    return -1;
  }
  if (lim->max_ratio && pr->written / lim->max_ratio > (lim->ratio_so_far ? at : a->io.size)) {
    zerr_set(err, "UNSAFE_ARCHIVE",
             "extracting '%s' expands the archive more than %llu times",
             zr_shown(e, nb, sizeof nb), (unsigned long long)lim->max_ratio);
    return -1;
  }
  if (pr->hooks && pr->hooks->cancelled && pr->hooks->cancelled(pr->hooks->ud)) {
    zerr_set(err, "INTERRUPTED", "interrupted");
    return -1;
  }
  if (pr->hooks && pr->hooks->progress && pr->written - pr->reported >= (1u << 20)) {
    pr->reported = pr->written;
    if (pr->hooks->progress(pr->hooks->ud, pr->written, pr->total) != 0) {
      zerr_set(err, "ABORTED", "stopped by the progress callback");
      return -1;
    }
  }
  return 0;
}

int zr_read_entry(zr_archive *a, size_t i, zr_sink sink, void *ud, const zr_limits *lim,
                  zr_progress *pr, zerr *err) {
  zr_entry ew;
  const zr_entry *e = zr_get(&a->t, i, &ew);
  unsigned char *in = NULL, *out = NULL;
  uint64_t pos = 0, written = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  z_stream z;
  int zinit = 0, rc = -1, ended = 0;
  char nb[NAMEBUF];
  in = malloc(CHUNK);
  out = e->method == ZF_DEFLATE ? malloc(CHUNK) : NULL;
  if (in == NULL || (e->method == ZF_DEFLATE && out == NULL)) {
    zerr_set(err, "NOMEM", "out of memory");
    goto done;
  }
  if (e->method == ZF_DEFLATE) {
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) {
      zerr_set(err, "NOMEM", "out of memory");
      goto done;
    }
    zinit = 1;
  }
  while (pos < e->csize && !ended) {
    size_t n = e->csize - pos > CHUNK ? CHUNK : (size_t)(e->csize - pos);
    if (io_read(a, in, n, zr_data_offset(e) + pos) != 0) {
      zerr_set(err, "INTEGRITY", "entry '%s': the archive is truncated",
               zr_shown(e, nb, sizeof nb));
      goto done;
    }
    pos += n;
    if (e->method == ZF_STORE) {
      written += n;
      if (produced(a, e, written, zr_data_offset(e) + pos, lim, pr, n, err) != 0)
        goto done;
      crc = zcrc32((uint32_t)crc, in, n);
      if (sink(ud, in, n, err) != 0)
        goto done;
      continue;
    }
    z.next_in = in;
    z.avail_in = (uInt)n;
    do {
      size_t k;
      int ret;
      z.next_out = out;
      z.avail_out = CHUNK;
      ret = inflate(&z, Z_NO_FLUSH);
      if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
        zerr_set(err, "INTEGRITY", "entry '%s': corrupt compressed data",
                 zr_shown(e, nb, sizeof nb));
        goto done;
      }
      k = CHUNK - z.avail_out;
      if (k > 0) {
        written += k;
        if (produced(a, e, written, zr_data_offset(e) + pos - z.avail_in, lim, pr, k, err) != 0)
          goto done;
        crc = zcrc32((uint32_t)crc, out, k);
        if (sink(ud, out, k, err) != 0)
          goto done;
      }
      if (ret == Z_STREAM_END) {
        ended = 1;
        break;
      }
      if (ret == Z_BUF_ERROR && k == 0)
        break;
    } while (z.avail_in > 0 || z.avail_out == 0);
    if (ended && (z.avail_in > 0 || pos < e->csize)) {
      zerr_set(err, "INTEGRITY", "entry '%s': compressed data end before its declared size",
               zr_shown(e, nb, sizeof nb));
      goto done;
    }
  }
  if (e->method == ZF_DEFLATE && !ended) {
    zerr_set(err, "INTEGRITY", "entry '%s': compressed data are truncated",
             zr_shown(e, nb, sizeof nb));
    goto done;
  }
  if (written != e->usize) {
    zerr_set(err, "INTEGRITY", "entry '%s' holds %llu bytes, fewer than the %llu it declares",
             zr_shown(e, nb, sizeof nb), (unsigned long long)written,
             (unsigned long long)e->usize);
    goto done;
  }
  if ((uint32_t)crc != e->crc) {
    zerr_set(err, "INTEGRITY", "entry '%s': CRC mismatch", zr_shown(e, nb, sizeof nb));
    goto done;
  }
  rc = 0;
done:
  if (zinit)
    inflateEnd(&z);
  free(in);
  free(out);
  return rc;
}

typedef struct mem_sink {
  char buf[SYMLINK_MAX + 1];
  size_t len;
} mem_sink;

static int memory_sink(void *ud, const unsigned char *p, size_t n, zerr *err) {
  mem_sink *m = ud;
  if (n > SYMLINK_MAX - m->len) {
    zerr_set(err, "UNSAFE_ARCHIVE", "symlink target too long");
    return -1;
  }
  memcpy(m->buf + m->len, p, n);
  m->len += n;
  return 0;
}

static int null_sink(void *ud, const unsigned char *p, size_t n, zerr *err) {
  (void)ud;
  (void)p;
  (void)n;
  (void)err;
  return 0;
}

int zr_verify(zr_archive *a, const zr_limits *lim, const zhooks *hooks, uint64_t *bytes,
              zerr *err) {
  zr_progress pr;
  uint32_t *idx = by_offset(a);
  size_t i;
  zr_entry ew;
  int rc = 0;
  if (idx == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  memset(&pr, 0, sizeof pr);
  pr.hooks = hooks;
  for (i = 0; i < a->t.n; i++)
    pr.total += zr_get(&a->t, i, &ew)->usize;
  for (i = 0; i < a->t.n && rc == 0; i++) {
    const zr_entry *e = zr_get(&a->t, idx[i], &ew);
    mem_sink m;
    char nb[NAMEBUF];
    /* a symlink refused or malformed was already refused or reported by zr_check */
    if (!(lim->symlinks_inside && e->is_symlink && !e->is_dir && e->usize > 0 &&
          e->usize <= SYMLINK_MAX)) {
      rc = zr_read_entry(a, idx[i], null_sink, NULL, lim, &pr, err);
      continue;
    }
    m.len = 0;
    rc = zr_read_entry(a, idx[i], memory_sink, &m, lim, &pr, err);
    if (rc == 0 && !zr_symlink_ok(a, e, m.buf, m.len)) {
      zerr_set(err, "UNSAFE_ARCHIVE", "symlink '%s' points outside the target or through "
               "another symlink", zr_shown(e, nb, sizeof nb));
      rc = unsafe_entry(lim, err);
    }
  }
  free(idx);
  *bytes = pr.written;
  return rc;
}

/* ---- extraction ------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

const char *zr_write_code(int errnum) {
  return errnum == ENOSPC || errnum == EDQUOT ? "NO_SPACE" : "IO";
}

void zr_rm_tree(const char *path) { nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS); }

typedef struct fd_sink {
  int fd;
  const char *path;
} fd_sink;

static int write_sink(void *ud, const unsigned char *p, size_t n, zerr *err) {
  fd_sink *s = ud;
  while (n > 0) {
    ssize_t w = write(s->fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      zerr_set(err, zr_write_code(errno), "cannot write %s: %s", s->path, strerror(errno));
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* mkdir -p of the first len bytes of rel under the staging directory; every component
 * must be (or become) a real directory. The last directory made is cached: nothing but
 * this code creates directories in the stage and no symlink exists there while files
 * are written, so any component-prefix of it still is a directory, and the entries of
 * one directory, which archives keep together, cost no system call. */
int zr_stage_mkdirs(zr_stage *s, const char *rel, size_t len, zerr *err) {
  size_t rl = strlen(s->path), k = 0, need = rl + len + 2;
  int rc = 0;
  if (len == 0)
    return 0;
  if (s->lastdir && s->lastlen >= len && memcmp(s->lastdir, rel, len) == 0 &&
      (s->lastlen == len || s->lastdir[len] == '/'))
    return 0;
  if (s->lastdir) { /* skip the components the cache already holds */
    size_t j;
    for (j = 0; j < s->lastlen && j < len && s->lastdir[j] == rel[j]; j++)
      if (rel[j] == '/')
        k = j;
    if (j == s->lastlen && (j == len || rel[j] == '/'))
      k = j;
  }
  if (need > s->bufsize) {
    char *grown = realloc(s->buf, need);
    if (grown == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    s->buf = grown;
    s->bufsize = need;
  }
  memcpy(s->buf, s->path, rl);
  s->buf[rl] = '/';
  for (k = k + 1; k <= len && rc == 0; k++) {
    struct stat st;
    if (k < len && rel[k] != '/')
      continue;
    memcpy(s->buf + rl + 1, rel, k);
    s->buf[rl + 1 + k] = '\0';
    if (mkdir(s->buf, 0755) != 0 &&
        (errno != EEXIST || lstat(s->buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
      zerr_set(err, errno == EEXIST ? "UNSAFE_ARCHIVE" : "IO",
               "cannot create directory '%.*s': %s", (int)k, rel,
               errno == EEXIST ? "a file is in the way" : strerror(errno));
      rc = -1;
    }
  }
  if (rc == 0) {
    char *copy = malloc(len + 1);
    if (copy != NULL) { /* without the cache only speed is lost */
      memcpy(copy, rel, len);
      copy[len] = '\0';
    }
    free(s->lastdir);
    s->lastdir = copy;
    s->lastlen = copy ? len : 0;
  }
  return rc;
}

static int is_symlink_name(const zr_archive *a, const char *p, size_t len) {
  size_t i;
  for (i = 0; i < a->t.n; i++)
    if (a->t.s[i].is_symlink && zr_namelen_of(&a->t, i) == len &&
        memcmp(zr_name_of(&a->t, i), p, len) == 0)
      return 1;
  return 0;
}

/* A symlink target is accepted when, resolved from the link's directory one component
 * at a time, it never leaves the root and never passes through another symlink: with no
 * chains, this lexical resolution is the one the filesystem will do. */
int zr_symlink_ok(const zr_archive *a, const zr_entry *e, const char *t, size_t tlen) {
  char *path = malloc(e->namelen + tlen + 2);
  size_t len, i = 0;
  int ok = 1;
  if (path == NULL || tlen == 0 || t[0] == '/' || memchr(t, '\0', tlen) ||
      memchr(t, '\\', tlen)) {
    free(path);
    return 0;
  }
  len = e->namelen;
  memcpy(path, e->name, len);
  while (len > 0 && path[len - 1] != '/') /* the link's directory */
    len--;
  if (len > 0)
    len--;
  while (i < tlen && ok) {
    size_t j = i, clen;
    while (j < tlen && t[j] != '/')
      j++;
    clen = j - i;
    if (clen == 0 || (clen == 1 && t[i] == '.')) {
      /* nothing */
    } else if (clen == 2 && t[i] == '.' && t[i + 1] == '.') {
      if (len == 0)
        ok = 0;
      while (len > 0 && path[len - 1] != '/')
        len--;
      if (len > 0)
        len--;
    } else {
      if (len > 0)
        path[len++] = '/';
      memcpy(path + len, t + i, clen);
      len += clen;
      if (is_symlink_name(a, path, len))
        ok = 0;
    }
    i = j + 1;
  }
  free(path);
  return ok;
}

char *zr_path_join(const char *a, const char *b, size_t blen) {
  size_t la = strlen(a);
  char *s = malloc(la + blen + 2);
  if (s == NULL)
    return NULL;
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, blen);
  s[la + 1 + blen] = '\0';
  return s;
}

static int extract_entry(zr_archive *a, size_t i, zr_stage *stage, const zr_limits *lim,
                         zr_progress *pr, zerr *err) {
  zr_entry ew;
  const zr_entry *e = zr_get(&a->t, i, &ew);
  size_t len = e->namelen, dirlen = len;
  char *path;
  int rc = 0;
  while (dirlen > 0 && e->name[dirlen - 1] == '/')
    dirlen--;
  if (e->is_dir)
    return zr_stage_mkdirs(stage, e->name, dirlen, err);
  while (dirlen > 0 && e->name[dirlen - 1] != '/')
    dirlen--;
  if (dirlen > 0 && zr_stage_mkdirs(stage, e->name, dirlen - 1, err) != 0)
    return -1;
  path = zr_path_join(stage->path, e->name, len);
  if (path == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  if (e->is_symlink) {
    mem_sink m;
    char nb[NAMEBUF];
    m.len = 0;
    rc = zr_read_entry(a, i, memory_sink, &m, lim, pr, err);
    if (rc == 0 && !zr_symlink_ok(a, e, m.buf, m.len)) {
      zerr_set(err, "UNSAFE_ARCHIVE", "symlink '%s' points outside the target or through "
               "another symlink", zr_shown(e, nb, sizeof nb));
      rc = -1;
    }
    if (rc == 0) {
      m.buf[m.len] = '\0';
      if (symlink(m.buf, path) != 0) {
        zerr_set(err, "IO", "cannot create symlink %s: %s", path, strerror(errno));
        rc = -1;
      }
    }
  } else {
    fd_sink s;
    s.path = path;
    s.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                (e->mode & 0111) ? 0755 : 0644);
    if (s.fd < 0) {
      zerr_set(err, errno == EEXIST ? "UNSAFE_ARCHIVE" : "IO", "cannot create %s: %s", path,
               strerror(errno));
      rc = -1;
    } else {
      rc = zr_read_entry(a, i, write_sink, &s, lim, pr, err);
      if (close(s.fd) != 0 && rc == 0) {
        zerr_set(err, zr_write_code(errno), "cannot write %s: %s", path, strerror(errno));
        rc = -1;
      }
    }
  }
  free(path);
  return rc;
}

/* 1 when path is an empty directory, 0 when it has entries, -1 when unreadable. */
static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  struct dirent *de;
  int empty = 1;
  if (d == NULL)
    return -1;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

static int make_parents(const char *dir, zr_stage *m, zerr *err) {
  char *p = strdup(dir);
  size_t k, len;
  if (p == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  len = strlen(p);
  for (k = 1; k <= len; k++) {
    char **grown;
    if (k < len && p[k] != '/')
      continue;
    p[k] = '\0';
    if (mkdir(p, 0755) == 0) {
      grown = realloc(m->made, (m->nmade + 1) * sizeof *grown);
      if (grown == NULL || (grown[m->nmade] = strdup(p)) == NULL) {
        if (grown)
          m->made = grown;
        rmdir(p);
        free(p);
        zerr_set(err, "NOMEM", "out of memory");
        return -1;
      }
      m->made = grown;
      m->nmade++;
    } else if (errno != EEXIST) {
      zerr_set(err, "IO", "cannot create directory %s: %s", p, strerror(errno));
      free(p);
      return -1;
    }
    if (k < len)
      p[k] = '/';
  }
  free(p);
  return 0;
}

int zr_stage_prepare(zr_stage *s, const char *dir, int force, zerr *err) {
  const char *base;
  size_t len;
  struct stat st;
  memset(s, 0, sizeof *s);
  s->lockfd = -1;
  s->clean = strdup(dir);
  if (s->clean == NULL)
    goto oom;
  len = strlen(s->clean);
  while (len > 1 && s->clean[len - 1] == '/')
    s->clean[--len] = '\0';
  base = strrchr(s->clean, '/');
  base = base ? base + 1 : s->clean;
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    zerr_set(err, "INVALID_INPUT", "cannot extract into '%s': name a directory", dir);
    return -1;
  }
  s->base = base;
  s->parent = base == s->clean ? strdup(".") : strndup(s->clean, (size_t)(base - s->clean - 1));
  if (s->parent == NULL)
    goto oom;
  if (*s->parent == '\0') {
    free(s->parent);
    s->parent = strdup("/");
    if (s->parent == NULL)
      goto oom;
  }
  if (lstat(s->clean, &st) == 0) {
    int empty;
    if (!S_ISDIR(st.st_mode)) {
      zerr_set(err, "INVALID_INPUT", "%s exists and is not a directory", s->clean);
      return -1;
    }
    empty = dir_is_empty(s->clean);
    if (empty < 0) {
      zerr_set(err, "IO", "cannot read %s: %s", s->clean, strerror(errno));
      return -1;
    }
    if (!empty && !force) {
      zerr_set(err, "EXISTS", "%s exists and is not empty", s->clean);
      return -1;
    }
    s->exists = !empty;
  }
  return make_parents(s->parent, s, err);
oom:
  zerr_set(err, "NOMEM", "out of memory");
  return -1;
}

int zr_stage_limits(const zr_stage *s, int64_t max_size, int64_t max_ratio,
                    int symlinks_inside, zr_limits *lim, zerr *err) {
  memset(lim, 0, sizeof *lim);
  lim->symlinks_inside = symlinks_inside;
  lim->max_ratio = max_ratio < 0 ? 1000 : (uint64_t)max_ratio;
  if (max_size >= 0) {
    lim->max_size = (uint64_t)max_size;
  } else {
    struct statvfs vfs;
    if (statvfs(s->parent, &vfs) != 0) {
      zerr_set(err, "IO", "cannot inspect %s: %s", s->parent, strerror(errno));
      return -1;
    }
    lim->max_size = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (lim->max_size == 0)
      lim->max_size = 1; /* a full disk still refuses a non-empty archive */
    lim->space_dir = s->parent; /* past the limit is "no space", not a bomb */
  }
  return 0;
}

/* Holds an exclusive lock on directory path for as long as the returned fd is open, so
 * sweep() knows it is in use; -1 when it cannot. */
static int lock_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Removes what killed runs left beside the target: staging directories and targets
 * moved aside (.<base>.skafos-XXXXXX, .<base>.skafos-old-XXXXXX) that are ours and that
 * no live process holds locked (a live one locks its stage right after making it). A
 * resumable extraction's partial directory is kept: it is meant to outlive its process. */
static void sweep(const zr_stage *s) {
  size_t bl = strlen(s->base), pl = strlen(s->parent);
  DIR *d = opendir(s->parent);
  struct dirent *de;
  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name, *rest;
    struct stat st;
    char *path;
    int fd;
    if (n[0] != '.' || strncmp(n + 1, s->base, bl) != 0 || strncmp(n + 1 + bl, ".skafos-", 8) != 0)
      continue;
    rest = n + 1 + bl + 8;
    if (strncmp(rest, "old-", 4) == 0)
      rest += 4;
    if (strlen(rest) != 6 || (path = malloc(pl + strlen(n) + 2)) == NULL)
      continue;
    sprintf(path, "%s/%s", s->parent, n);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
        flock(fd, LOCK_EX | LOCK_NB) == 0)
      zr_rm_tree(path);
    if (fd >= 0)
      close(fd);
    free(path);
  }
  closedir(d);
}

int zr_stage_create(zr_stage *s, zerr *err) {
  mode_t mask;
  zr_stage_discard(s);
  sweep(s); /* also for a resumable extraction: stages of killed -o X --unzip runs */
  if (s->fixed) {
    zr_rm_tree(s->fixed); /* whatever an earlier run left there */
    if ((s->path = strdup(s->fixed)) == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    if (mkdir(s->path, 0700) != 0) {
      zerr_set(err, "IO", "cannot create the staging directory %s: %s", s->path,
               strerror(errno));
      free(s->path);
      s->path = NULL;
      return -1;
    }
  } else {
    s->path = malloc(strlen(s->parent) + strlen(s->base) + 32);
    if (s->path == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    sprintf(s->path, "%s/.%s.skafos-XXXXXX", s->parent, s->base);
  }
  if (!s->fixed && mkdtemp(s->path) == NULL) {
    zerr_set(err, "IO", "cannot create a staging directory in %s: %s", s->parent,
             strerror(errno));
    free(s->path);
    s->path = NULL;
    return -1;
  }
  if (!s->fixed)
    s->lockfd = lock_dir(s->path);
  mask = umask(0);
  umask(mask);
  chmod(s->path, 0777 & ~mask);
  return 0;
}

void zr_stage_discard(zr_stage *s) {
  if (s->path) {
    zr_rm_tree(s->path);
    free(s->path);
    s->path = NULL;
  }
  if (s->lockfd >= 0) {
    close(s->lockfd);
    s->lockfd = -1;
  }
  free(s->lastdir);
  s->lastdir = NULL;
  s->lastlen = 0;
}

int zr_stage_commit(zr_stage *s, zerr *err) {
  int oldfd = -1;
  char *old = malloc(strlen(s->parent) + strlen(s->base) + 32);
  if (old == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  if (s->exists) {
    int made;
    sprintf(old, "%s/.%s.skafos-old-XXXXXX", s->parent, s->base);
    made = mkdtemp(old) != NULL;
    if (!made || rename(s->clean, old) != 0) {
      zerr_set(err, "IO", "cannot move %s aside: %s", s->clean, strerror(errno));
      if (made)
        rmdir(old);
      free(old);
      return -1;
    }
    oldfd = lock_dir(old); /* removed below, or by a later sweep if this run dies first */
  }
  if (rename(s->path, s->clean) != 0) {
    zerr_set(err, "IO", "cannot rename the staging directory to %s: %s", s->clean,
             strerror(errno));
    if (s->exists)
      rename(old, s->clean);
    if (oldfd >= 0)
      close(oldfd);
    free(old);
    return -1;
  }
  free(s->path);
  s->path = NULL;
  if (s->exists)
    zr_rm_tree(old);
  if (oldfd >= 0)
    close(oldfd);
  if (s->lockfd >= 0) {
    close(s->lockfd);
    s->lockfd = -1;
  }
  free(old);
  s->committed = 1;
  return 0;
}

void zr_stage_free(zr_stage *s) {
  zr_stage_discard(s);
  while (s->nmade > 0) {
    s->nmade--;
    if (!s->committed)
      rmdir(s->made[s->nmade]);
    free(s->made[s->nmade]);
  }
  free(s->made);
  s->made = NULL;
  free(s->buf);
  s->buf = NULL;
  s->bufsize = 0;
  free(s->parent);
  s->parent = NULL;
  free(s->clean);
  s->clean = NULL;
}

int zr_extract(const char *path, const char *dir, zr_options *o, zerr *err) {
  zr_archive a;
  zr_limits lim;
  zr_progress pr;
  zr_stage stage;
  uint32_t *idx = NULL;
  size_t i;
  zr_entry ew;
  int rc = -1, opened = 0, pass;
  memset(&stage, 0, sizeof stage);
  if (zr_open_file(&a, path,
                   o->max_entries < 0 ? ZR_MAX_ENTRIES : (uint64_t)o->max_entries, err) != 0)
    goto done;
  opened = 1;
  if (zr_stage_prepare(&stage, dir, o->force, err) != 0 ||
      zr_stage_limits(&stage, o->max_size, o->max_ratio, o->symlinks_inside, &lim, err) != 0 ||
      zr_check(&a, &lim, err) != 0 || zr_stage_create(&stage, err) != 0)
    goto done;
  idx = by_offset(&a);
  if (idx == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    goto done;
  }
  memset(&pr, 0, sizeof pr);
  pr.hooks = o->hooks;
  for (i = 0; i < a.t.n; i++)
    pr.total += zr_get(&a.t, i, &ew)->usize;
  /* files and directories in archive order, then the symlinks, so nothing is ever
   * written through a link */
  for (pass = 0; pass < 2; pass++)
    for (i = 0; i < a.t.n; i++) {
      const zr_entry *e = zr_get(&a.t, idx[i], &ew);
      if (e->is_symlink != pass)
        continue;
      if (o->hooks && o->hooks->cancelled && o->hooks->cancelled(o->hooks->ud)) {
        zerr_set(err, "INTERRUPTED", "interrupted");
        goto done;
      }
      if (extract_entry(&a, idx[i], &stage, &lim, &pr, err) != 0)
        goto done;
    }
  if (o->hooks && o->hooks->progress &&
      o->hooks->progress(o->hooks->ud, pr.written, pr.total) != 0) {
    zerr_set(err, "ABORTED", "stopped by the progress callback");
    goto done;
  }
  if (zr_stage_commit(&stage, err) != 0)
    goto done;
  o->written = pr.written;
  o->entries = a.t.n;
  rc = 0;
done:
  zr_stage_free(&stage);
  if (opened)
    zr_close(&a);
  free(idx);
  return rc;
}
