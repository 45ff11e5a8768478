/*
 * The streaming extractor behind zip.extractor: parses an archive front to back as its
 * bytes arrive, writes each entry into the staging directory of zipread.c's extraction
 * under the same rules, and checks the central directory against the stream at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "crc32x.h"
#include "zipread.h"
#include "zipsink.h"

#define OUTBUF (1u << 20)
#define TAIL_MAX (64u << 20) /* end records (and bytes after them) kept in memory */
#define TAIL_PIECE (64u * 1024u) /* taken into the tail at a time */
#define NAMES_MAX (512u << 20) /* entry names kept, in all: as zr_open bounds the directory */
#define TAIL_KEEP (ZF_EOCD_FIXED + 65535u) /* after a fault: enough for the end record */
#define FLAG_DESCRIPTOR 0x08
#define JOURNAL_MAX (256u << 20) /* a longer journal is not ours: start over */
static const char JOURNAL_MAGIC[8] = {'S', 'K', 'A', 'F', 'O', 'S', 'X', '1'};

enum { ST_SIG, ST_LOCAL, ST_DATA, ST_DESC, ST_TAIL, ST_SKIP };

struct zx {
  zx_options o;
  zr_limits lim;
  zr_stage stage;
  int state;
  uint64_t pos;   /* archive bytes consumed */
  zerr failed;    /* sticky failure when failed.code != NULL */
  zerr pending;   /* an unsafe entry seen; nothing is written after it */
  /* a name with a backslash was read as if a DOS or Windows system had made the archive,
   * which only the central directory says (local headers do not); it judges at the end */
  int provisional;
  /* the record being gathered */
  unsigned char *hbuf;
  size_t hlen, hneed, hcap;
  /* every streamed entry, in stream order, and their names */
  zr_table t;
  uint32_t *hash; /* open addressing over t by folded name; UINT32_MAX = empty */
  size_t hsize;
  /* the current entry, t's entry cur_i, worked on here and kept there by cur_keep */
  zr_entry *cur;
  zr_entry work;
  size_t cur_i;
  int discard, zip64, fd;
  char *path;
  uint64_t consumed, written, skip;
  uLong crc;
  z_stream z;
  int zinit;
  unsigned char *out;
  size_t outlen;
  /* totals */
  uint64_t total;
  /* the central directory, checked record by record as it arrives against the entries
   * streamed (never kept whole), then the end records, kept from end_start on */
  unsigned char *tail; /* bytes not yet taken, from tail_start on */
  size_t tlen, tcap;
  uint64_t tail_start;
  uint64_t name_bytes;  /* of the entries streamed (NAMES_MAX) */
  uint64_t cd_start;    /* where the directory began */
  uint64_t cd_records;  /* records taken */
  uint64_t cd_bytes;    /* their size */
  int cd_over;          /* a record that is not one: the end records (or junk) start here */
  zerr cd_bad;          /* the directory's first structural fault, reported by zx_finish */
  zerr cd_differs;      /* its first disagreement with the streamed entries */
  zf_pool cd_names;     /* scratch for the record being taken */
  /* resumable extraction: <parent>/.<base>.skafos-partial holds the stage (tree/) and a
   * journal of every entry begun and ended, so a later extractor, in this process or
   * another, continues from the last entry boundary or the last byte of a stored entry */
  char *pdir, *jpath;
  int jfd;        /* the journal, locked; -1 when not resumable */
  int jstop;      /* an unsafe entry was seen: no more records */
  uint64_t *jofs; /* while replaying: per entry, where its begin record starts */
  size_t jcap;
  uint64_t jlen;  /* journal bytes written */
  uint64_t data_start; /* of the current entry */
};

static void failed_cleanup(zx *x, const char *code);

static int fail(zx *x, zerr *err, const char *code, const char *msg) {
  zerr_set(&x->failed, code, "%s", msg);
  *err = x->failed;
  return -1;
}

/* Keeps the first unsafe entry; the stream goes on without writing. */
static void set_pending(zx *x, const zerr *e) {
  if (x->pending.code == NULL)
    x->pending = *e;
  x->discard = 1;
}

/* ---- names seen, for duplicates as they arrive -------------------------------------- */

static size_t folded_len(const char *name, size_t len) {
  if (len > 0 && name[len - 1] == '/')
    len--;
  return len;
}

static size_t fold_hash(const char *name, size_t namelen) {
  size_t i, len = folded_len(name, namelen);
  uint64_t h = 1469598103934665603u;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    h = (h ^ c) * 1099511628211u;
  }
  return (size_t)h;
}

/* Adds entry idx (e) to the names seen: 0 when new, 1 exact duplicate, 2 case-only
 * duplicate (*other set), -1 out of memory. */
static int seen_add(zx *x, const zr_entry *e, size_t idx, size_t *other) {
  size_t i, len = folded_len(e->name, e->namelen), mask;
  if (2 * (x->t.n + 1) > x->hsize) {
    size_t nsize = x->hsize ? 2 * x->hsize : 64, k;
    uint32_t *nh = malloc(nsize * sizeof *nh);
    if (nh == NULL)
      return -1;
    for (k = 0; k < nsize; k++)
      nh[k] = UINT32_MAX;
    for (k = 0; k < idx; k++) {
      size_t j = fold_hash(zr_name_of(&x->t, k), zr_namelen_of(&x->t, k)) & (nsize - 1);
      while (nh[j] != UINT32_MAX)
        j = (j + 1) & (nsize - 1);
      nh[j] = (uint32_t)k;
    }
    free(x->hash);
    x->hash = nh;
    x->hsize = nsize;
  }
  mask = x->hsize - 1;
  for (i = fold_hash(e->name, e->namelen) & mask; x->hash[i] != UINT32_MAX; i = (i + 1) & mask) {
    const char *o = zr_name_of(&x->t, x->hash[i]);
    size_t k;
    if (folded_len(o, zr_namelen_of(&x->t, x->hash[i])) != len)
      continue;
    for (k = 0; k < len; k++) {
      unsigned char a = (unsigned char)e->name[k], b = (unsigned char)o[k];
      if (a >= 'A' && a <= 'Z')
        a = (unsigned char)(a + 32);
      if (b >= 'A' && b <= 'Z')
        b = (unsigned char)(b + 32);
      if (a != b)
        break;
    }
    if (k < len)
      continue;
    *other = x->hash[i];
    return memcmp(e->name, o, len) == 0 ? 1 : 2;
  }
  x->hash[i] = (uint32_t)idx;
  return 0;
}

/* ---- output ------------------------------------------------------------------------ */

static int write_all(zx *x, const unsigned char *p, size_t n, zerr *err) {
  while (n > 0) {
    ssize_t w = write(x->fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      zerr_set(err, zr_write_code(errno), "cannot write %s: %s", x->path, strerror(errno));
      x->failed = *err;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int flush_out(zx *x, zerr *err) {
  int rc = 0;
  if (x->outlen > 0 && x->fd >= 0)
    rc = write_all(x, x->out, x->outlen, err);
  x->outlen = 0;
  return rc;
}

/* Accounts for n bytes of entry data produced (at most 1 MiB at a time): declared size,
 * limits, interrupts. */
static int produced(zx *x, size_t n, zerr *err) {
  zr_entry *e = x->cur;
  char nb[ZR_NAMEBUF];
  x->written += n;
  x->total += n;
  if (e->is_dir && x->written > 0) {
    zerr_set(err, "UNSAFE_ARCHIVE", "directory entry '%s' is malformed or has data",
             zr_shown(e, nb, sizeof nb));
    goto bad;
  }
  if (!(e->flags & FLAG_DESCRIPTOR) && x->written > e->usize) {
    zerr_set(err, "INTEGRITY", "entry '%s' holds more bytes than the %llu it declares",
             zr_shown(e, nb, sizeof nb), (unsigned long long)e->usize);
    goto bad;
  }
  if (x->lim.max_size && x->total > x->lim.max_size) {
    if (x->lim.space_dir)
      zerr_set(err, "NO_SPACE", "not enough space in %s: extracting '%s' needs more than the %llu bytes free",
               x->lim.space_dir, zr_shown(e, nb, sizeof nb), (unsigned long long)x->lim.max_size);
    else
      zerr_set(err, "UNSAFE_ARCHIVE", "extracting '%s' passes the limit of %llu bytes",
               zr_shown(e, nb, sizeof nb), (unsigned long long)x->lim.max_size);
    goto bad;
  }
  if (x->lim.max_ratio && x->total / x->lim.max_ratio > x->pos) {
    zerr_set(err, "UNSAFE_ARCHIVE", "extracting '%s' expands the archive more than %llu times",
             zr_shown(e, nb, sizeof nb), (unsigned long long)x->lim.max_ratio);
    goto bad;
  }
  if (x->o.hooks && x->o.hooks->cancelled && x->o.hooks->cancelled(x->o.hooks->ud)) {
    zerr_set(err, "INTERRUPTED", "interrupted");
    goto bad;
  }
  return 0;
bad:
  x->failed = *err;
  return -1;
}

/* ---- the journal of a resumable extraction ------------------------------------------
 * "SKAFOSX1", u16 ETag length, the ETag, u32 CRC-32 of those bytes; then records: u8
 * type, u32 payload length, the payload, u32 CRC-32 of type, length and payload. 'B' (an
 * entry begins): u64 local header offset, u64 data offset, u16 flags, u16 method, u32
 * CRC, u64 compressed and u64 uncompressed size as declared, u8 zip64, the name. 'E' (it
 * ended and passed its checks): u32 CRC, u64 compressed size, u64 size, u64 archive
 * offset after it. Nothing is synced: a resume checks every finished file's CRC again. */

#define JB_FIXED 41
#define JE_FIXED 28

static int jwrite(zx *x, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = pwrite(x->jfd, p, n, (off_t)x->jlen);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
    x->jlen += (uint64_t)w;
  }
  return 0;
}

/* Appends one record, unless there is no journal or an unsafe entry stopped it (a
 * resume then replays up to that entry and meets it again). */
static int jrecord(zx *x, int type, const unsigned char *payload, size_t len, zerr *err) {
  unsigned char head[5], tail[4];
  uLong c;
  if (x->jfd < 0 || x->jstop || x->jlen == 0) /* no journal, or not started by zx_start */
    return 0;
  if (x->pending.code) {
    x->jstop = 1;
    return 0;
  }
  head[0] = (unsigned char)type;
  zf_put32(head + 1, (uint32_t)len);
  c = crc32(crc32(0L, head, 5), payload, (uInt)len);
  zf_put32(tail, (uint32_t)c);
  if (jwrite(x, head, 5) != 0 || jwrite(x, payload, len) != 0 || jwrite(x, tail, 4) != 0) {
    zerr_set(err, "IO", "cannot write %s: %s", x->jpath, strerror(errno));
    x->failed = *err;
    return -1;
  }
  return 0;
}

static int jbegin(zx *x, zerr *err) {
  const zr_entry *e = x->cur;
  unsigned char *b;
  int rc;
  if (x->jfd < 0 || x->jstop || x->jlen == 0)
    return 0;
  if ((b = malloc(JB_FIXED + e->rawlen)) == NULL)
    return fail(x, err, "NOMEM", "out of memory");
  zf_put64(b, e->offset);
  zf_put64(b + 8, x->data_start);
  zf_put16(b + 16, e->flags);
  zf_put16(b + 18, e->method);
  zf_put32(b + 20, e->crc);
  zf_put64(b + 24, e->csize);
  zf_put64(b + 32, e->usize);
  b[40] = (unsigned char)x->zip64;
  memcpy(b + JB_FIXED, zr_raw(e), e->rawlen);
  rc = jrecord(x, 'B', b, JB_FIXED + e->rawlen, err);
  free(b);
  return rc;
}

static int jend(zx *x, zerr *err) {
  unsigned char b[JE_FIXED];
  zf_put32(b, x->cur->crc);
  zf_put64(b + 4, x->cur->csize);
  zf_put64(b + 12, x->cur->usize);
  zf_put64(b + 20, x->pos);
  return jrecord(x, 'E', b, sizeof b, err);
}

/* Starts the journal afresh for the object with this ETag. */
static int jstart(zx *x, const char *etag, zerr *err) {
  size_t el = strlen(etag) > 1024 ? 1024 : strlen(etag);
  unsigned char b[8 + 2 + 1024 + 4];
  memcpy(b, JOURNAL_MAGIC, 8);
  zf_put16(b + 8, (uint16_t)el);
  memcpy(b + 10, etag, el);
  zf_put32(b + 10 + el, (uint32_t)crc32(0L, b, (uInt)(10 + el)));
  x->jlen = 0;
  x->jstop = 0;
  if (ftruncate(x->jfd, 0) != 0 || jwrite(x, b, 14 + el) != 0) {
    zerr_set(err, "IO", "cannot write %s: %s", x->jpath, strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- local headers ------------------------------------------------------------------ */

/* Collects bytes into hbuf until it holds `need`; returns 1 when it does. */
static int gather(zx *x, const unsigned char **p, size_t *n, size_t need, zerr *err) {
  size_t take;
  if (x->hlen >= need)
    return 1; /* gathered by an earlier call */
  if (need > x->hcap) {
    unsigned char *g = realloc(x->hbuf, need);
    if (g == NULL) {
      fail(x, err, "NOMEM", "out of memory");
      return -1;
    }
    x->hbuf = g;
    x->hcap = need;
  }
  take = need - x->hlen < *n ? need - x->hlen : *n;
  memcpy(x->hbuf + x->hlen, *p, take);
  x->hlen += take;
  x->pos += take;
  *p += take;
  *n -= take;
  return x->hlen == need;
}

static int open_entry(zx *x, zerr *err) {
  zr_entry *e = x->cur;
  char nb[ZR_NAMEBUF];
  size_t dirlen = e->namelen;
  if (x->stage.path == NULL && zr_stage_create(&x->stage, err) != 0)
    goto bad;
  while (dirlen > 0 && e->name[dirlen - 1] == '/')
    dirlen--;
  if (e->is_dir)
    return zr_stage_mkdirs(&x->stage, e->name, dirlen, err) == 0 ? 0 : (x->failed = *err, -1);
  while (dirlen > 0 && e->name[dirlen - 1] != '/')
    dirlen--;
  if (dirlen > 0 && zr_stage_mkdirs(&x->stage, e->name, dirlen - 1, err) != 0)
    goto bad;
  x->path = zr_path_join(x->stage.path, e->name, e->namelen);
  if (x->path == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    goto bad;
  }
  x->fd = open(x->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (x->fd < 0) {
    zerr_set(err, errno == EEXIST ? "UNSAFE_ARCHIVE" : "IO", "cannot create '%s': %s",
             zr_shown(e, nb, sizeof nb), errno == EEXIST ? "something is in the way"
                                                         : strerror(errno));
    goto bad;
  }
  return 0;
bad:
  x->failed = *err;
  return -1;
}

/* Names of a streamed entry (e->flags set): a backslash is taken for a separator, as
 * if a DOS or Windows system made the archive; zx_finish holds the name to the rule
 * once the central directory says which system did. */
static int stream_names(zx *x, zr_entry *e, const char *raw, size_t len, zerr *err) {
  int dos = memchr(raw, '\\', len) != NULL;
  if (zr_entry_names(e, &x->t.names, raw, len, dos, err) != 0)
    return -1;
  x->provisional |= dos;
  return 0;
}

/* Doubles the array at *arr (*cap items of size bytes). */
static int grow(zx *x, void **arr, size_t *cap, size_t size, zerr *err) {
  size_t ncap = *cap ? 2 * *cap : 64;
  void *g = realloc(*arr, ncap * size);
  if (g == NULL)
    return fail(x, err, "NOMEM", "out of memory");
  *arr = g;
  *cap = ncap;
  return 0;
}

/* Keeps the current entry's working form in the table. */
static int cur_keep(zx *x, zerr *err) {
  if (zr_set(&x->t, x->cur_i, x->cur) != 0)
    return fail(x, err, "NOMEM", "out of memory");
  return 0;
}

/* Makes e (x->work) the current entry, a new last one in the table. */
static int cur_push(zx *x, zerr *err) {
  if (zr_push(&x->t, &x->work) != 0)
    return fail(x, err, "NOMEM", "out of memory");
  x->cur = &x->work;
  x->cur_i = x->t.n - 1;
  return 0;
}

static int parse_local(zx *x, zerr *err) {
  const unsigned char *h = x->hbuf;
  size_t nl = zf_get16(h + 26), xl = zf_get16(h + 28), p = 0, other;
  const unsigned char *ex = h + ZF_LOCAL_FIXED + nl;
  zr_entry *e, ew;
  char nb[ZR_NAMEBUF], nb2[ZR_NAMEBUF];
  zerr why;
  int dup;
  if ((x->lim.max_entries && x->t.n >= x->lim.max_entries) || x->t.n >= UINT32_MAX - 1) {
    zerr_set(err, "UNSAFE_ARCHIVE",
             "the archive has more than %llu entries, the limit (raise it with --max-entries "
             "or the max_entries setting)",
             (unsigned long long)(x->lim.max_entries ? x->lim.max_entries : UINT32_MAX - 1));
    x->failed = *err;
    return -1;
  }
  if (nl > NAMES_MAX - x->name_bytes) {
    zerr_set(err, "UNSAFE_ARCHIVE", "the archive's entry names take more than %u MiB",
             NAMES_MAX >> 20);
    x->failed = *err;
    return -1;
  }
  x->name_bytes += nl;
  e = &x->work;
  memset(e, 0, sizeof *e);
  e->flags = zf_get16(h + 6);
  if (stream_names(x, e, (const char *)h + ZF_LOCAL_FIXED, nl, err) != 0) {
    x->failed = *err;
    return -1;
  }
  e->method = zf_get16(h + 8);
  e->crc = zf_get32(h + 14);
  e->csize = zf_get32(h + 18);
  e->usize = zf_get32(h + 22);
  e->offset = x->pos - ZF_LOCAL_FIXED - nl - xl;
  e->data_delta = (uint32_t)(ZF_LOCAL_FIXED + nl + xl);
  x->data_start = x->pos;
  x->zip64 = 0;
  while (p + 4 <= xl) {
    size_t id = zf_get16(ex + p), len = zf_get16(ex + p + 2);
    if (p + 4 + len > xl)
      break;
    if (id == 0x0001) {
      x->zip64 = 1;
      if (len >= 16 && (e->usize == ZF_MAX32 || e->csize == ZF_MAX32)) {
        e->usize = zf_get64(ex + p + 4);
        e->csize = zf_get64(ex + p + 12);
      }
    }
    p += 4 + len;
  }
  if (cur_push(x, err) != 0)
    return -1;
  /* encrypted, unknown method, directory with data: no way on */
  if (e->flags & 0x41) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' is encrypted", zr_shown(e, nb, sizeof nb));
    x->failed = *err;
    return -1;
  }
  if (e->method != ZF_STORE && e->method != ZF_DEFLATE) {
    zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' uses unsupported compression method %u",
             zr_shown(e, nb, sizeof nb), e->method);
    x->failed = *err;
    return -1;
  }
  if (zr_name_problem(e) == NULL && zr_check_entry(e, &x->lim, err) != 0) {
    x->failed = *err;
    return -1;
  }
  if (e->method == ZF_STORE && (e->flags & FLAG_DESCRIPTOR) && e->csize == 0 && e->usize == 0)
    return fail(x, err, "NOT_STREAMABLE",
                "a stored entry gives its size only after its data; download the archive first");
  if (e->method == ZF_STORE && e->csize != e->usize) {
    zerr_set(err, "INTEGRITY", "stored entry '%s' declares different sizes",
             zr_shown(e, nb, sizeof nb));
    x->failed = *err;
    return -1;
  }
  x->discard = x->pending.code != NULL;
  if (zr_check_entry(e, &x->lim, &why) != 0)
    set_pending(x, &why);
  dup = zr_name_problem(e) ? 0 : seen_add(x, e, x->t.n - 1, &other);
  if (dup < 0)
    return fail(x, err, "NOMEM", "out of memory");
  if (dup) {
    zerr_set(&why, "UNSAFE_ARCHIVE",
             dup == 1 ? "entry '%s' appears twice%.0s" : "entries '%s' and '%s' differ only by case",
             zr_shown(zr_get(&x->t, other, &ew), nb, sizeof nb), zr_shown(e, nb2, sizeof nb2));
    set_pending(x, &why);
  }
  if (!(e->flags & FLAG_DESCRIPTOR) && x->lim.max_size && e->usize > x->lim.max_size - x->total) {
    if (x->lim.space_dir)
      zerr_set(err, "NO_SPACE", "not enough space in %s: entry '%s' declares %llu bytes, %llu are free",
               x->lim.space_dir, zr_shown(e, nb, sizeof nb), (unsigned long long)e->usize,
               (unsigned long long)(x->lim.max_size - x->total));
    else
      zerr_set(err, "UNSAFE_ARCHIVE", "entry '%s' declares %llu bytes, over the limit of %llu",
               zr_shown(e, nb, sizeof nb), (unsigned long long)e->usize,
               (unsigned long long)x->lim.max_size);
    x->failed = *err;
    return -1;
  }
  x->consumed = x->written = 0;
  x->crc = crc32(0L, Z_NULL, 0);
  x->outlen = 0;
  if (e->method == ZF_DEFLATE) {
    if (!x->zinit) {
      memset(&x->z, 0, sizeof x->z);
      if (inflateInit2(&x->z, -15) != Z_OK)
        return fail(x, err, "NOMEM", "out of memory");
      x->zinit = 1;
    } else if (inflateReset(&x->z) != Z_OK) {
      return fail(x, err, "NOMEM", "inflate reset failed");
    }
  }
  if (!x->discard && open_entry(x, err) != 0)
    return -1;
  return x->discard ? 0 : jbegin(x, err);
}

/* ---- end of an entry's data ------------------------------------------------------- */

static int close_entry(zx *x, zerr *err) {
  int rc = flush_out(x, err);
  if (x->fd >= 0) {
    if (close(x->fd) != 0 && rc == 0) {
      zerr_set(err, zr_write_code(errno), "cannot write %s: %s", x->path, strerror(errno));
      x->failed = *err;
      rc = -1;
    }
    x->fd = -1;
  }
  free(x->path);
  x->path = NULL;
  return rc;
}

/* Compares what was streamed with the declared values (local header or descriptor). */
static int check_sizes(zx *x, uint32_t crc, uint64_t csize, uint64_t usize, zerr *err) {
  zr_entry *e = x->cur;
  char nb[ZR_NAMEBUF];
  if (x->written != usize) {
    zerr_set(err, "INTEGRITY", "entry '%s' holds %llu bytes, not the %llu it declares",
             zr_shown(e, nb, sizeof nb), (unsigned long long)x->written,
             (unsigned long long)usize);
  } else if (x->consumed != csize) {
    zerr_set(err, "INTEGRITY", "entry '%s': compressed size %llu, declared %llu",
             zr_shown(e, nb, sizeof nb), (unsigned long long)x->consumed,
             (unsigned long long)csize);
  } else if ((uint32_t)x->crc != crc) {
    zerr_set(err, "INTEGRITY", "entry '%s': CRC mismatch", zr_shown(e, nb, sizeof nb));
  } else {
    e->crc = crc;
    e->csize = csize;
    e->usize = usize;
    if (cur_keep(x, err) != 0)
      return -1;
    return x->discard ? 0 : jend(x, err);
  }
  x->failed = *err;
  return -1;
}

static int data_done(zx *x, zerr *err) {
  zr_entry *e = x->cur;
  if (close_entry(x, err) != 0)
    return -1;
  if (e->flags & FLAG_DESCRIPTOR) {
    x->state = ST_DESC;
    x->hlen = 0;
    return 0;
  }
  if (check_sizes(x, e->crc, e->csize, e->usize, err) != 0)
    return -1;
  x->state = ST_SIG;
  x->hlen = 0;
  return 0;
}

/* ---- entry data ----------------------------------------------------------------------- */

/* direct: write p now (stored data); else it already sits in the output buffer. */
static int emit(zx *x, const unsigned char *p, size_t n, int direct, zerr *err) {
  if (produced(x, n, err) != 0)
    return -1;
  x->crc = zcrc32((uint32_t)x->crc, p, n);
  if (direct && x->fd >= 0)
    return write_all(x, p, n, err);
  return 0;
}

static int stored_data(zx *x, const unsigned char **p, size_t *n, zerr *err) {
  uint64_t left = x->cur->csize - x->consumed;
  size_t take = left < *n ? (size_t)left : *n;
  if (take > 0) {
    x->pos += take;
    x->consumed += take;
    if (emit(x, *p, take, 1, err) != 0)
      return -1;
    *p += take;
    *n -= take;
  }
  if (x->consumed == x->cur->csize)
    return data_done(x, err);
  return 0;
}

static int deflated_data(zx *x, const unsigned char **p, size_t *n, zerr *err) {
  zr_entry *e = x->cur;
  int known = !(e->flags & FLAG_DESCRIPTOR);
  char nb[ZR_NAMEBUF];
  size_t give = *n;
  if (known && (uint64_t)give > e->csize - x->consumed)
    give = (size_t)(e->csize - x->consumed);
  if (give > UINT32_MAX)
    give = UINT32_MAX;
  x->z.next_in = (unsigned char *)*p;
  x->z.avail_in = (uInt)give;
  for (;;) {
    size_t before = x->z.avail_in, k, used;
    int ret;
    x->z.next_out = x->out + x->outlen;
    x->z.avail_out = (uInt)(OUTBUF - x->outlen);
    ret = inflate(&x->z, Z_NO_FLUSH);
    used = before - x->z.avail_in;
    x->pos += used;
    x->consumed += used;
    *p += used;
    *n -= used;
    k = OUTBUF - x->outlen - x->z.avail_out;
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      zerr_set(err, "INTEGRITY", "entry '%s': corrupt compressed data",
               zr_shown(e, nb, sizeof nb));
      x->failed = *err;
      return -1;
    }
    if (k > 0) {
      if (emit(x, x->out + x->outlen, k, 0, err) != 0)
        return -1;
      x->outlen += k;
      if (x->outlen == OUTBUF && flush_out(x, err) != 0)
        return -1;
    }
    if (ret == Z_STREAM_END) {
      if (known && x->consumed < e->csize) {
        zerr_set(&x->failed, "INTEGRITY",
                 "entry '%s': compressed data end before its declared size",
                 zr_shown(e, nb, sizeof nb));
        set_pending(x, &x->failed);
        x->failed.code = NULL;
        x->skip = e->csize - x->consumed;
        if (close_entry(x, err) != 0)
          return -1;
        x->state = ST_SKIP;
        return 0;
      }
      return data_done(x, err);
    }
    if (known && x->consumed == e->csize && k == 0) {
      zerr_set(err, "INTEGRITY", "entry '%s': compressed data are truncated",
               zr_shown(e, nb, sizeof nb));
      x->failed = *err;
      return -1;
    }
    if (x->z.avail_in == 0 && x->z.avail_out > 0)
      return 0; /* wants more input */
    if (used == 0 && k == 0) {
      zerr_set(err, "INTEGRITY", "entry '%s': corrupt compressed data",
               zr_shown(e, nb, sizeof nb));
      x->failed = *err;
      return -1;
    }
  }
}

static int descriptor(zx *x, const unsigned char **p, size_t *n, zerr *err) {
  size_t body = x->zip64 ? 20 : 12, need;
  int r = gather(x, p, n, 4, err);
  if (r <= 0)
    return r;
  need = zf_get32(x->hbuf) == ZF_SIG_DESCRIPTOR ? 4 + body : body;
  r = gather(x, p, n, need, err);
  if (r <= 0)
    return r;
  {
    const unsigned char *d = x->hbuf + (need - body);
    uint64_t cs = x->zip64 ? zf_get64(d + 4) : zf_get32(d + 4);
    uint64_t us = x->zip64 ? zf_get64(d + 12) : zf_get32(d + 8);
    if (check_sizes(x, zf_get32(d), cs, us, err) != 0)
      return -1;
  }
  x->state = ST_SIG;
  x->hlen = 0;
  return 0;
}

/* One directory record against the streamed entry at the same offset: the same stored
 * bytes and, where both names are acceptable, the same name; the same method,
 * encryption, CRC and sizes. The directory's view of the entry (its mode and kind, and
 * the name as the system that made the archive reads it) replaces what the local header
 * gave. Faults are kept for zx_finish, which reports them in its order. */
static int cd_take(zx *x, const unsigned char *r, zerr *err) {
  zr_entry c, se, *s = NULL;
  size_t lo = 0, hi = x->t.n, si = 0;
  char nb[ZR_NAMEBUF];
  zerr why;
  zf_pool_clear(&x->cd_names);
  if (zr_parse_central(r, &x->cd_names, &c, &why) != 0) {
    if (strcmp(why.code, "NOMEM") == 0)
      return fail(x, err, "NOMEM", "out of memory");
    x->cd_bad = why;
    return 0;
  }
  while (lo < hi) { /* the entries came in order of their offsets */
    size_t mid = lo + (hi - lo) / 2;
    uint64_t at = zr_offset_of(&x->t, mid);
    if (at == c.offset) {
      s = (zr_entry *)zr_get(&x->t, mid, &se);
      si = mid;
      break;
    }
    if (at < c.offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (x->cd_differs.code != NULL)
    return 0;
  if (s == NULL || s->listed || c.rawlen != s->rawlen ||
      memcmp(zr_raw(&c), zr_raw(s), c.rawlen) != 0 ||
      (!c.name_bad && !s->name_bad &&
       (c.namelen != s->namelen || memcmp(c.name, s->name, c.namelen) != 0)) ||
      c.method != s->method || ((c.flags ^ s->flags) & 0x41)) {
    zerr_set(&x->cd_differs, "UNSAFE_ARCHIVE",
             "the central directory disagrees with the local header of '%s'",
             zr_shown(s ? s : &c, nb, sizeof nb));
    return 0;
  }
  if (c.crc != s->crc || c.csize != s->csize || c.usize != s->usize) {
    zerr_set(&x->cd_differs, "INTEGRITY",
             "the central directory gives other sizes or CRC for '%s' than its data",
             zr_shown(s, nb, sizeof nb));
    return 0;
  }
  s->listed = 1;
  s->mode = c.mode;
  s->is_dir = c.is_dir;
  s->is_symlink = c.is_symlink;
  if (c.namelen != s->namelen || c.name_bad != s->name_bad || c.dos_names != s->dos_names ||
      memcmp(c.name, s->name, c.namelen) != 0) {
    /* read by the rule of the system the directory names, not the streamed guess */
    const char *name = zf_pool_put_h(&x->t.names, c.name,
                                     c.namelen + (c.raw_apart ? 1u + c.rawlen : 0u), &s->name_h);
    if (name == NULL)
      return fail(x, err, "NOMEM", "out of memory");
    s->name = name;
    s->namelen = c.namelen;
    s->name_bad = c.name_bad;
    s->raw_apart = c.raw_apart;
    s->dos_names = c.dos_names;
  }
  if (zr_set(&x->t, si, s) != 0)
    return fail(x, err, "NOMEM", "out of memory");
  return 0;
}

/* Takes the whole directory records at the front of the tail; what follows the last of
 * them (the end records) stays. After a fault only the last bytes stay, for the end
 * record's place. */
static int cd_drain(zx *x, zerr *err) {
  size_t at = 0;
  while (!x->cd_over && x->cd_bad.code == NULL && x->tlen - at >= 4) {
    const unsigned char *r = x->tail + at;
    size_t len;
    if (zf_get32(r) != ZF_SIG_CENTRAL) {
      x->cd_over = 1;
      break;
    }
    if (x->tlen - at < ZF_CENTRAL_FIXED || x->tlen - at < (len = zr_central_len(r)))
      break;
    if (cd_take(x, r, err) != 0)
      return -1;
    x->cd_records++;
    x->cd_bytes += len;
    at += len;
  }
  if (x->cd_bad.code != NULL && x->tlen - at > TAIL_KEEP)
    at = x->tlen - TAIL_KEEP;
  if (at > 0) {
    memmove(x->tail, x->tail + at, x->tlen - at);
    x->tlen -= at;
    x->tail_start += at;
  }
  return 0;
}

static int tail_add(zx *x, const unsigned char *p, size_t n, zerr *err) {
  while (n > 0) { /* in pieces, so the tail holds little more than one record */
    size_t k = n < TAIL_PIECE ? n : TAIL_PIECE;
    if (k > TAIL_MAX - x->tlen)
      return fail(x, err, "UNSAFE_ARCHIVE", "the central directory is too large");
    if (x->tlen + k > x->tcap) {
      size_t ncap = x->tcap ? x->tcap : 65536;
      unsigned char *g;
      while (ncap < x->tlen + k)
        ncap *= 2;
      g = realloc(x->tail, ncap);
      if (g == NULL)
        return fail(x, err, "NOMEM", "out of memory");
      x->tail = g;
      x->tcap = ncap;
    }
    memcpy(x->tail + x->tlen, p, k);
    x->tlen += k;
    x->pos += k;
    p += k;
    n -= k;
    if (cd_drain(x, err) != 0)
      return -1;
  }
  return 0;
}

int zx_write(zx *x, const unsigned char *p, size_t n, zerr *err) {
  char msg[64];
  if (x->failed.code) {
    *err = x->failed;
    return -1;
  }
  if (x->o.hooks && x->o.hooks->cancelled && x->o.hooks->cancelled(x->o.hooks->ud))
    return fail(x, err, "INTERRUPTED", "interrupted");
  while (n > 0) {
    int r = 0;
    switch (x->state) {
    case ST_SIG: {
      uint32_t sig;
      r = gather(x, &p, &n, 4, err);
      if (r <= 0)
        break;
      sig = zf_get32(x->hbuf);
      if (sig == ZF_SIG_LOCAL) {
        x->state = ST_LOCAL;
      } else if (sig == ZF_SIG_CENTRAL || sig == ZF_SIG_EOCD || sig == ZF_SIG_EOCD64) {
        x->state = ST_TAIL;
        x->tail_start = x->cd_start = x->pos - 4;
        x->pos -= 4;
        r = tail_add(x, x->hbuf, 4, err);
      } else {
        snprintf(msg, sizeof msg, "unexpected bytes at offset %llu: not a zip entry",
                 (unsigned long long)(x->pos - 4));
        r = fail(x, err, "INTEGRITY", msg);
      }
      break;
    }
    case ST_LOCAL:
      r = gather(x, &p, &n, ZF_LOCAL_FIXED, err);
      if (r > 0)
        r = gather(x, &p, &n,
                   ZF_LOCAL_FIXED + (size_t)zf_get16(x->hbuf + 26) + zf_get16(x->hbuf + 28),
                   err);
      if (r > 0) {
        r = parse_local(x, err);
        if (r == 0)
          x->state = ST_DATA;
      }
      break;
    case ST_DATA:
      r = x->cur->method == ZF_STORE ? stored_data(x, &p, &n, err)
                                     : deflated_data(x, &p, &n, err);
      break;
    case ST_DESC:
      r = descriptor(x, &p, &n, err);
      break;
    case ST_SKIP: {
      size_t take = x->skip < n ? (size_t)x->skip : n;
      x->skip -= take;
      x->pos += take;
      p += take;
      n -= take;
      if (x->skip == 0) {
        x->state = ST_SIG;
        x->hlen = 0;
      }
      break;
    }
    case ST_TAIL:
      r = tail_add(x, p, n, err);
      n = 0;
      break;
    }
    if (r < 0) {
      /* nothing stays behind a failure (but an interrupted resumable extraction); only
       * zx_reset starts over */
      if (x->fd >= 0)
        close(x->fd);
      x->fd = -1;
      failed_cleanup(x, err->code);
      return -1;
    }
  }
  /* a stored entry of zero bytes ends without any byte of data */
  if (x->state == ST_DATA && x->cur->method == ZF_STORE && x->consumed == x->cur->csize)
    return stored_data(x, &p, &n, err);
  return 0;
}

/* ---- the end ----------------------------------------------------------------------- */

/* The archive as zr_open sees it: the kept tail, zeros before it (never a signature). */
static int tail_pread(void *ud, void *buf, size_t n, uint64_t off) {
  const zx *x = ud;
  unsigned char *b = buf;
  while (n > 0 && off < x->tail_start) {
    *b++ = 0;
    n--;
    off++;
  }
  if (n == 0)
    return 0;
  if (off - x->tail_start > x->tlen || n > x->tlen - (off - x->tail_start))
    return -1;
  memcpy(b, x->tail + (off - x->tail_start), n);
  return 0;
}

/* The end record must close the input: its comment ends the last byte. */
static int ends_with_eocd(const zx *x) {
  size_t k;
  for (k = 0; k <= 65535 && k + ZF_EOCD_FIXED <= x->tlen; k++) {
    const unsigned char *r = x->tail + x->tlen - ZF_EOCD_FIXED - k;
    if (zf_get32(r) == ZF_SIG_EOCD && zf_get16(r + 20) == k)
      return 1;
  }
  return 0;
}

/* Turns the files of symlink entries into links (checked against the whole directory)
 * and gives executable files their mode; runs after every file was written. */
static int apply_directory(zx *x, const zr_archive *a, zerr *err) {
  mode_t mask = umask(0);
  char nb[ZR_NAMEBUF], target[ZR_SYMLINK_MAX + 1];
  size_t i;
  zr_entry ew;
  umask(mask);
  for (i = 0; i < a->t.n; i++) {
    const zr_entry *e = zr_get(&a->t, i, &ew);
    char *path;
    int rc = 0;
    if (e->is_dir || !(e->is_symlink || (e->mode & 0111)))
      continue;
    path = zr_path_join(x->stage.path, e->name, e->namelen);
    if (path == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    if (e->is_symlink) {
      ssize_t got = -1;
      int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        got = read(fd, target, ZR_SYMLINK_MAX);
        close(fd);
      }
      if (got < 0 || (uint64_t)got != e->usize) {
        zerr_set(err, "IO", "cannot read back symlink '%s'", zr_shown(e, nb, sizeof nb));
        rc = -1;
      } else if (!zr_symlink_ok(a, e, target, (size_t)got)) {
        zerr_set(err, "UNSAFE_ARCHIVE", "symlink '%s' points outside the target or through "
                 "another symlink", zr_shown(e, nb, sizeof nb));
        rc = -1;
      } else {
        target[got] = '\0';
        if (unlink(path) != 0 || symlink(target, path) != 0) {
          zerr_set(err, "IO", "cannot create symlink %s: %s", path, strerror(errno));
          rc = -1;
        }
      }
    } else if (chmod(path, 0755 & ~mask) != 0) {
      zerr_set(err, "IO", "cannot set the mode of %s: %s", path, strerror(errno));
      rc = -1;
    }
    free(path);
    if (rc != 0)
      return -1;
  }
  return 0;
}

int zx_finish(zx *x, size_t *entries, uint64_t *bytes, zerr *err) {
  zr_archive a, view;
  zr_io io;
  uint64_t count = 0;
  int rc;
  if (x->failed.code) {
    *err = x->failed;
    return -1;
  }
  /* the whole archive came and does not hold together: nothing of it is worth keeping */
  if (x->state == ST_SKIP)
    rc = fail(x, err, "UNSAFE_ARCHIVE",
              "an entry's declared data run past the entries into the central directory");
  else if (x->state != ST_TAIL)
    rc = fail(x, err, "INTEGRITY", x->pos == 0 ? "not a zip archive (no bytes)"
                                               : "the archive is truncated");
  else if (!ends_with_eocd(x))
    rc = fail(x, err, "INTEGRITY",
              "no end of central directory record closes the archive (truncated, or "
              "bytes follow it)");
  else if (x->cd_bad.code != NULL)
    rc = fail(x, err, x->cd_bad.code, x->cd_bad.msg);
  else
    rc = 0;
  /* the end records, read as zr_open reads them (zeros before what the tail kept) */
  io.pread = tail_pread;
  io.ud = x;
  io.size = x->tail_start + x->tlen;
  memset(&a, 0, sizeof a);
  if (rc == 0 && zr_open_end(&a, &io, x->lim.max_entries, &count, err) != 0)
    rc = -1;
  else if (rc == 0 && a.cd_offset != x->cd_start)
    rc = fail(x, err, "UNSAFE_ARCHIVE",
              "the central directory does not start where the streamed entries end");
  else if (rc == 0 && (count != x->cd_records || a.cd_size != x->cd_bytes))
    rc = fail(x, err, "INTEGRITY", "central directory is corrupt or truncated");
  zr_close(&a);
  if (rc != 0) {
    x->failed = *err;
    failed_cleanup(x, err->code);
    return -1;
  }
  free(x->hash); /* no entry comes any more: the last checks sort instead */
  x->hash = NULL;
  x->hsize = 0;
  /* the entries as the directory describes them, for the checks that need them all */
  memset(&view, 0, sizeof view);
  view.fd = -1;
  view.t = x->t; /* shared, not owned */
  if (x->pending.code) {
    zerr cd;
    *err = x->pending;
    /* a name read provisionally is judged as zip.extract judges it, from the directory */
    if (x->provisional && zr_check_names(&view, &x->lim, &cd) != 0 &&
        strcmp(cd.code, "UNSAFE_ARCHIVE") == 0)
      *err = cd;
    rc = -1;
  } else if (x->cd_records != x->t.n) {
    zerr_set(err, "UNSAFE_ARCHIVE", "the central directory lists %llu entries, the archive holds %llu",
             (unsigned long long)x->cd_records, (unsigned long long)x->t.n);
    rc = -1;
  } else if (x->cd_differs.code != NULL) {
    *err = x->cd_differs;
    rc = -1;
  }
  if (rc == 0)
    rc = zr_check_names(&view, &x->lim, err);
  if (rc == 0 && x->stage.path == NULL)
    rc = zr_stage_create(&x->stage, err);
  if (rc == 0)
    rc = apply_directory(x, &view, err);
  if (rc == 0 && x->o.hooks && x->o.hooks->cancelled && x->o.hooks->cancelled(x->o.hooks->ud)) {
    zerr_set(err, "INTERRUPTED", "interrupted");
    rc = -1;
  }
  if (rc == 0)
    rc = zr_stage_commit(&x->stage, err);
  if (rc != 0) {
    x->failed = *err;
    failed_cleanup(x, err->code);
    return -1;
  }
  if (x->jfd >= 0) { /* the journal and its directory go with the stage */
    unlink(x->jpath);
    close(x->jfd);
    x->jfd = -1;
    rmdir(x->pdir);
  }
  *entries = x->t.n;
  *bytes = x->total;
  return 0;
}

/* ---- life cycle -------------------------------------------------------------------- */

/* Resets the in-memory state; the stage on disk stays as it is. */
static void forget(zx *x) {
  size_t i;
  if (x->fd >= 0)
    close(x->fd);
  x->fd = -1;
  free(x->path);
  x->path = NULL;
  zf_pool_free(&x->t.names);
  x->t.n = 0;
  x->cur = NULL;
  x->provisional = 0;
  if (x->hash)
    for (i = 0; i < x->hsize; i++)
      x->hash[i] = UINT32_MAX;
  x->state = ST_SIG;
  x->pos = x->total = 0;
  x->hlen = x->tlen = 0;
  x->cd_records = x->cd_bytes = x->name_bytes = 0;
  x->cd_over = 0;
  x->cd_bad.code = x->cd_differs.code = NULL;
  x->outlen = 0;
  x->discard = 0;
  x->failed.code = NULL;
  x->pending.code = NULL;
  free(x->stage.path);
  x->stage.path = NULL;
  free(x->stage.lastdir);
  x->stage.lastdir = NULL;
  x->stage.lastlen = 0;
}

/* forget, and remove the stage. */
static void clear(zx *x) {
  char *path = x->stage.path;
  x->stage.path = NULL;
  forget(x);
  x->stage.path = path;
  zr_stage_discard(&x->stage);
}

/* Removes the stage, the journal and the directory holding them. */
static void drop_partial(zx *x) {
  clear(x);
  if (x->jfd < 0)
    return;
  zr_rm_tree(x->stage.fixed);
  unlink(x->jpath);
  close(x->jfd);
  x->jfd = -1;
  rmdir(x->pdir);
}

/* After a failure: an interrupted resumable extraction keeps what it has for the next
 * run; anything else leaves nothing behind. */
static void failed_cleanup(zx *x, const char *code) {
  if (x->jfd >= 0 && code && strcmp(code, "INTERRUPTED") == 0)
    return;
  if (x->jfd >= 0)
    drop_partial(x);
  else
    zr_stage_discard(&x->stage);
}

/* Makes (or opens) <parent>/.<base>.skafos-partial and locks its journal. */
static int open_partial(zx *x, zerr *err) {
  const zr_stage *s = &x->stage;
  struct stat st;
  size_t len = strlen(s->parent) + strlen(s->base) + 32;
  if ((x->pdir = malloc(len)) == NULL || (x->jpath = malloc(len + 8)) == NULL ||
      (x->stage.fixed = malloc(len + 8)) == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  snprintf(x->pdir, len, "%s/.%s.skafos-partial", s->parent, s->base);
  snprintf(x->jpath, len + 8, "%s/journal", x->pdir);
  snprintf(x->stage.fixed, len + 8, "%s/tree", x->pdir);
  if (mkdir(x->pdir, 0700) != 0) {
    /* one left by an earlier run of ours is reused; anything else is never entered */
    if (errno != EEXIST || lstat(x->pdir, &st) != 0) {
      zerr_set(err, "IO", "cannot create %s for the partial extraction: %s", x->pdir,
               strerror(errno));
      return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
      zerr_set(err, "UNSAFE_PATH",
               "%s %s; skafos keeps its partial extraction there and does not use it: remove it",
               x->pdir,
               S_ISLNK(st.st_mode)       ? "is a symbolic link"
               : !S_ISDIR(st.st_mode)    ? "is not a directory"
               : st.st_uid != geteuid() ? "belongs to another user"
                                         : "is writable by group or others");
      return -1;
    }
  }
  x->jfd = open(x->jpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (x->jfd < 0) {
    zerr_set(err, "IO", "cannot open %s: %s", x->jpath, strerror(errno));
    return -1;
  }
  if (flock(x->jfd, LOCK_EX | LOCK_NB) != 0) {
    close(x->jfd);
    x->jfd = -1;
    zerr_set(err, "BUSY", "another skafos is extracting into %s (it holds %s)", s->clean,
             x->pdir);
    return -1;
  }
  return 0;
}

zx *zx_new(const char *dir, const zx_options *o, zerr *err) {
  zx *x = calloc(1, sizeof *x);
  if (x == NULL || (x->out = malloc(OUTBUF)) == NULL) {
    free(x);
    zerr_set(err, "NOMEM", "out of memory");
    return NULL;
  }
  x->o = *o;
  x->fd = -1;
  x->jfd = -1;
  if (zr_stage_prepare(&x->stage, dir, o->force, err) != 0 ||
      zr_stage_limits(&x->stage, o->max_size, o->max_ratio, o->symlinks_inside, &x->lim,
                      err) != 0 ||
      (o->resumable && open_partial(x, err) != 0)) {
    zx_free(x);
    return NULL;
  }
  x->lim.max_entries = o->max_entries < 0 ? ZR_MAX_ENTRIES : (uint64_t)o->max_entries;
  return x;
}

/* ---- resuming ---------------------------------------------------------------------- */

/* The whole journal; NULL when it is missing, shorter than a header or too long. */
static unsigned char *jread(zx *x, size_t *len) {
  struct stat st;
  unsigned char *b;
  size_t got = 0, size;
  if (fstat(x->jfd, &st) != 0 || st.st_size < 14 || (uint64_t)st.st_size > JOURNAL_MAX)
    return NULL;
  size = (size_t)st.st_size;
  if ((b = malloc(size)) == NULL)
    return NULL;
  while (got < size) {
    ssize_t r = pread(x->jfd, b + got, size - got, (off_t)got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < size) {
    free(b);
    return NULL;
  }
  *len = size;
  return b;
}

/* Size and CRC-32 of a file in the stage; -1 when it cannot be read. */
static int file_crc(zx *x, const char *path, uint64_t *size, uLong *crc) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  uLong c = crc32(0L, Z_NULL, 0);
  uint64_t n = 0;
  if (fd < 0)
    return -1;
  for (;;) {
    ssize_t r = read(fd, x->out, OUTBUF);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      close(fd);
      return -1;
    }
    if (r == 0)
      break;
    c = zcrc32((uint32_t)c, x->out, (size_t)r);
    n += (uint64_t)r;
  }
  close(fd);
  *size = n;
  *crc = c;
  return 0;
}

/* Parses one begin record into a new entry; -1 when it is not a sane one. */
static int replay_begin(zx *x, const unsigned char *q, size_t pl, uint64_t at, zerr *err) {
  zr_entry *e;
  zerr why;
  size_t other;
  uint64_t data;
  if (pl < JB_FIXED)
    return -1;
  if (x->t.n == x->jcap) { /* kept only while replaying: streaming has no use for them */
    void *arr = x->jofs;
    int rc = grow(x, &arr, &x->jcap, sizeof *x->jofs, err);
    x->jofs = arr;
    if (rc != 0)
      return -1;
  }
  e = &x->work;
  memset(e, 0, sizeof *e);
  e->flags = zf_get16(q + 16);
  if (stream_names(x, e, (const char *)q + JB_FIXED, pl - JB_FIXED, err) != 0)
    return -1;
  e->offset = zf_get64(q);
  data = zf_get64(q + 8);
  e->data_delta = data >= e->offset && data - e->offset <= UINT32_MAX ? (uint32_t)(data - e->offset) : 0;
  e->method = zf_get16(q + 18);
  e->crc = zf_get32(q + 20);
  e->csize = zf_get64(q + 24);
  e->usize = zf_get64(q + 32);
  x->zip64 = q[40];
  x->jofs[x->t.n] = at;
  if (cur_push(x, err) != 0)
    return -1;
  x->cur = NULL;
  /* the journal is ours, but names are checked as if they came from the archive */
  if (zr_check_entry(e, &x->lim, &why) != 0 || seen_add(x, e, x->t.n - 1, &other) != 0 ||
      data < e->offset || data - e->offset > UINT32_MAX ||
      (e->method != ZF_STORE && e->method != ZF_DEFLATE)) {
    x->t.n--; /* its name stays in the pool until the extractor goes */
    return -1;
  }
  return 0;
}

/* Forgets the names seen and adds those of the entries kept again. */
static int rehash(zx *x) {
  size_t i, n = x->t.n, other;
  zr_entry ew;
  for (i = 0; i < x->hsize; i++)
    x->hash[i] = UINT32_MAX;
  for (i = 0; i < n; i++) {
    x->t.n = i + 1;
    if (seen_add(x, zr_get(&x->t, i, &ew), i, &other) < 0) {
      x->t.n = n;
      return -1;
    }
  }
  x->t.n = n;
  return 0;
}

/* Drops the entries from index k on (their files go) and the journal after them. */
static void replay_cut(zx *x, size_t k) {
  zr_entry ew;
  while (x->t.n > k) {
    const zr_entry *e = zr_get(&x->t, --x->t.n, &ew);
    char *path = e->is_dir ? NULL : zr_path_join(x->stage.path, e->name, e->namelen);
    if (path)
      unlink(path);
    free(path);
    x->jlen = x->jofs[x->t.n];
  }
}

/* Rebuilds the state the journal describes and returns the archive offset to go on
 * from (0: start over). */
/* The journal offsets go once the replay is over. */
static void replay_done(zx *x) {
  free(x->jofs);
  x->jofs = NULL;
  x->jcap = 0;
}

static int64_t replay(zx *x, char *etag, size_t etaglen, zerr *err) {
  size_t len, p, el, i, open_i = SIZE_MAX;
  unsigned char *b = jread(x, &len);
  struct stat st;
  uint64_t at = 0, fsize;
  uLong fcrc;
  char *path;
  zr_entry ew;
  etag[0] = '\0';
  if (b == NULL)
    return 0;
  el = zf_get16(b + 8);
  if (memcmp(b, JOURNAL_MAGIC, 8) != 0 || el == 0 || el >= etaglen || 14 + el > len ||
      zf_get32(b + 10 + el) != (uint32_t)crc32(0L, b, (uInt)(10 + el)) ||
      lstat(x->stage.fixed, &st) != 0 || !S_ISDIR(st.st_mode) ||
      (x->stage.path = strdup(x->stage.fixed)) == NULL)
    goto none;
  memcpy(etag, b + 10, el);
  etag[el] = '\0';
  x->jlen = p = 14 + el;
  while (p + 9 <= len) {
    size_t pl = zf_get32(b + p + 1);
    const unsigned char *q = b + p + 5;
    if (pl > len - p - 9 || zf_get32(q + pl) != (uint32_t)crc32(0L, b + p, (uInt)(5 + pl)))
      break; /* torn by a kill */
    if (b[p] == 'B' && open_i == SIZE_MAX) {
      if (replay_begin(x, q, pl, p, err) != 0)
        break;
      open_i = x->t.n - 1;
    } else if (b[p] == 'E' && pl == JE_FIXED && open_i != SIZE_MAX) {
      zr_entry *e = (zr_entry *)zr_get(&x->t, open_i, &ew);
      e->crc = zf_get32(q);
      e->csize = zf_get64(q + 4);
      e->usize = zf_get64(q + 12);
      if (zr_set(&x->t, open_i, e) != 0)
        goto oom;
      at = zf_get64(q + 20);
      open_i = SIZE_MAX;
    } else {
      break;
    }
    p += 9 + pl;
    x->jlen = p;
  }
  free(b);
  b = NULL;
  /* every finished file must still hold what was checked when it ended */
  for (i = 0; i < x->t.n && i != open_i; i++) {
    const zr_entry *e = zr_get(&x->t, i, &ew);
    int ok;
    if (e->is_dir)
      continue;
    if ((path = zr_path_join(x->stage.path, e->name, e->namelen)) == NULL)
      goto oom;
    ok = file_crc(x, path, &fsize, &fcrc) == 0 && fsize == e->usize && (uint32_t)fcrc == e->crc;
    free(path);
    if (!ok) {
      at = e->offset;
      replay_cut(x, i);
      open_i = SIZE_MAX;
      break;
    }
    x->total += e->usize;
  }
  if (open_i != SIZE_MAX) {
    zr_entry *e = (zr_entry *)zr_get(&x->t, open_i, &x->work);
    int kept = 0;
    /* a stored file goes on from its last byte; anything else starts again */
    if (e->method == ZF_STORE && !e->is_dir) {
      if ((path = zr_path_join(x->stage.path, e->name, e->namelen)) == NULL)
        goto oom;
      if (file_crc(x, path, &fsize, &fcrc) == 0 && fsize <= e->csize &&
          (x->fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
        x->cur = e;
        x->cur_i = open_i;
        x->path = path;
        x->consumed = x->written = fsize;
        x->crc = fcrc;
        x->data_start = zr_data_offset(e);
        x->total += fsize;
        x->state = ST_DATA;
        at = zr_data_offset(e) + fsize;
        kept = 1;
      } else {
        free(path);
      }
    }
    if (!kept) {
      at = e->offset;
      replay_cut(x, open_i);
    }
  }
  if (x->t.n == 0 || at == 0)
    goto none;
  if (rehash(x) != 0)
    goto oom;
  if (ftruncate(x->jfd, (off_t)x->jlen) != 0) {
    zerr_set(err, "IO", "cannot write %s: %s", x->jpath, strerror(errno));
    replay_done(x);
    return -1;
  }
  x->pos = at;
  x->hlen = 0;
  replay_done(x);
  return (int64_t)at;
oom:
  free(b);
  replay_done(x);
  zerr_set(err, "NOMEM", "out of memory");
  return -1;
none:
  free(b);
  replay_done(x);
  forget(x);
  etag[0] = '\0';
  return 0;
}

int64_t zx_resume_point(zx *x, char *etag, size_t etaglen, zerr *err) {
  etag[0] = '\0';
  if (x->jfd < 0 || x->stage.committed)
    return 0;
  forget(x);
  return replay(x, etag, etaglen, err);
}

int zx_start(zx *x, int64_t offset, const char *etag, zerr *err) {
  if (offset == 0) {
    if (zx_reset(x, err) != 0)
      return -1;
    return x->jfd >= 0 ? jstart(x, etag ? etag : "", err) : 0;
  }
  if (x->jfd < 0 || x->failed.code || (uint64_t)offset != x->pos) {
    zerr_set(err, "RANGE", "cannot continue the extraction at byte %lld",
             (long long)offset);
    return -1;
  }
  return 0;
}

int zx_reset(zx *x, zerr *err) {
  if (x->stage.committed) {
    zerr_set(err, "INVALID_INPUT", "the extractor has already finished");
    return -1;
  }
  clear(x);
  if (x->jfd >= 0) {
    zr_rm_tree(x->stage.fixed);
    if (ftruncate(x->jfd, 0) != 0) {
      zerr_set(err, "IO", "cannot write %s: %s", x->jpath, strerror(errno));
      return -1;
    }
    x->jlen = 0;
    x->jstop = 0;
  }
  return 0;
}

const char *zx_partial_dir(const zx *x) { return x->jfd >= 0 ? x->pdir : NULL; }

void zx_discard(zx *x) {
  if (x != NULL && !x->stage.committed)
    drop_partial(x);
}

void zx_free(zx *x) {
  if (x == NULL)
    return;
  if (x->jfd >= 0 && x->jlen > 0 && x->t.n > 0 && !x->stage.committed) {
    forget(x); /* kept for the next run; closing the journal drops the lock */
    close(x->jfd);
    x->jfd = -1;
  } else if (x->jfd >= 0) {
    drop_partial(x);
  } else {
    clear(x);
  }
  zr_stage_free(&x->stage);
  if (x->zinit)
    inflateEnd(&x->z);
  free(x->stage.fixed);
  free(x->pdir);
  free(x->jpath);
  free(x->jofs);
  zr_table_free(&x->t);
  free(x->hash);
  free(x->hbuf);
  free(x->tail);
  zf_pool_free(&x->cd_names);
  free(x->out);
  free(x);
}
