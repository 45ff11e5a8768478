/*
 * The archive writer: plans (directory walks, names, order), and the pipeline that reads
 * inputs in blocks, has the pdeflate pool compress them, and writes results in order.
 * Our own record writer instead of minizip's zipOpenNewFileInZip4_64/raw mode: see below.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <zlib.h>

#include "pdeflate.h"
#include "zipwrite.h"

/*
 * Why not minizip for the bytes: its zipCloseFileInZipRaw64 always seeks back to patch
 * the local header, it decides zip64 per entry from a flag instead of from the sizes,
 * and it cannot tell the size of an archive before writing it. skafos needs the same
 * records from three producers (an archive file, a one-pass stream whose exact length
 * is sent as Content-Length before any byte, and size computation), so the records are
 * built in one place (zipfmt.c) and every producer uses them. minizip remains the
 * reference reader our tests check the output with.
 */

/* ---- plans ------------------------------------------------------------------------ */

void zw_plan_init(zw_plan *p) { memset(p, 0, sizeof *p); }

void zw_plan_free(zw_plan *p) {
  size_t i;
  zf_pool_free(&p->strings);
  free(p->items);
  for (i = 0; i < ZW_LEFT_SHOWN; i++)
    free(p->left_names[i]);
  zw_plan_init(p);
}

int zw_is_litter(const char *base, int is_dir) {
  if (is_dir)
    return strcmp(base, "__MACOSX") == 0;
  return strcmp(base, ".DS_Store") == 0 || (base[0] == '.' && base[1] == '_' && base[2]) ||
         strcasecmp(base, "Thumbs.db") == 0 || strcasecmp(base, "desktop.ini") == 0;
}

/* Counts an entry left out, keeping the ZW_LEFT_SHOWN first names in name order (not
 * the order directories list them in, so a dry run always shows the same ones). */
static int left_out(zw_plan *p, const char *name, int is_dir, zerr *err) {
  size_t len = strlen(name), kept = p->left_out < ZW_LEFT_SHOWN ? p->left_out : ZW_LEFT_SHOWN, i;
  char *copy = malloc(len + 2);
  if (copy == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  memcpy(copy, name, len);
  copy[len] = is_dir ? '/' : '\0';
  copy[len + 1] = '\0';
  p->left_out++;
  for (i = kept; i > 0 && strcmp(p->left_names[i - 1], copy) > 0; i--) {
  }
  if (i == ZW_LEFT_SHOWN) {
    free(copy);
    return 0;
  }
  if (kept == ZW_LEFT_SHOWN)
    free(p->left_names[--kept]);
  memmove(p->left_names + i + 1, p->left_names + i, (kept - i) * sizeof *p->left_names);
  p->left_names[i] = copy;
  return 0;
}

static int plan_push(zw_plan *p, const char *src, const char *name, size_t namelen,
                     uint64_t size, uint32_t mode, int method, int level, zerr *err) {
  zw_item *it;
  const char *why = zf_check_name(name, namelen);
  if (why != NULL) {
    zerr_set(err, "INVALID_INPUT", "cannot archive '%.*s': %s", (int)namelen, name, why);
    return -1;
  }
  if (p->n == p->cap) {
    /* grows by half: a plan of a million files wastes less than doubling would */
    size_t cap = p->cap ? p->cap + p->cap / 2 : 16;
    zw_item *items = realloc(p->items, cap * sizeof *items);
    if (items == NULL)
      goto oom;
    p->items = items;
    p->cap = cap;
  }
  it = &p->items[p->n];
  memset(it, 0, sizeof *it);
  if (src != NULL) {
    size_t srclen = strlen(src);
    if ((it->src = zf_pool_put(&p->strings, src, srclen)) == NULL)
      goto oom;
    /* the name is most often the tail of the path: kept once */
    if (srclen >= namelen && memcmp(src + srclen - namelen, name, namelen) == 0)
      it->name = it->src + srclen - namelen;
  }
  if (it->name == NULL && (it->name = zf_pool_put(&p->strings, name, namelen)) == NULL)
    goto oom;
  it->namelen = namelen;
  it->size = size;
  it->mode = mode;
  it->method = size == 0 ? ZW_STORE : method; /* empty files are always stored */
  it->level = level;
  p->n++;
  return 0;
oom:
  zerr_set(err, "NOMEM", "out of memory");
  return -1;
}

int zw_plan_add_dir(zw_plan *p, const char *name, zerr *err) {
  size_t len = strlen(name);
  char *n;
  int rc;
  if (len > 0 && name[len - 1] == '/')
    return plan_push(p, NULL, name, len, 0, zf_norm_mode(1, 0), ZW_STORE, 0, err);
  n = malloc(len + 2);
  if (n == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  memcpy(n, name, len);
  n[len] = '/';
  n[len + 1] = '\0';
  rc = plan_push(p, NULL, n, len + 1, 0, zf_norm_mode(1, 0), ZW_STORE, 0, err);
  free(n);
  return rc;
}

/* The real directories on the way down, to refuse a symlink back to one of them. */
typedef struct walk_frame {
  const char *real;
  const struct walk_frame *up;
} walk_frame;

static int path_inside(const char *root, const char *path) {
  size_t n = strlen(root);
  if (strcmp(root, "/") == 0)
    return 1;
  return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static char *join(const char *a, const char *b, char sep) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);
  if (s == NULL)
    return NULL;
  memcpy(s, a, la);
  if (la > 0 && sep)
    s[la++] = sep;
  memcpy(s + la, b, lb + 1);
  return s;
}

static int walk(zw_plan *p, const char *root, const char *dir, const char *prefix,
                const walk_frame *up, int depth, int method, int level, zerr *err) {
  DIR *d;
  struct dirent *de;
  walk_frame here;
  char *dreal;
  int rc = 0;
  if (depth > 256) {
    zerr_set(err, "INVALID_INPUT", "directory tree too deep at %s", dir);
    return -1;
  }
  dreal = realpath(dir, NULL);
  d = dreal ? opendir(dir) : NULL;
  if (d == NULL) {
    zerr_set(err, "INVALID_INPUT", "cannot read directory %s: %s", dir, strerror(errno));
    free(dreal);
    return -1;
  }
  here.real = dreal;
  here.up = up;
  while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
    char *path, *name;
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    path = join(dir, de->d_name, '/');
    name = join(prefix, de->d_name, '/');
    if (path == NULL || name == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      rc = -1;
    } else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      zerr_set(err, "IO", "cannot read %s: %s", path, strerror(errno));
      rc = -1;
    } else if (!p->keep_litter && zw_is_litter(de->d_name, S_ISDIR(st.st_mode))) {
      /* by name alone: a link called .DS_Store is litter wherever it points */
      rc = left_out(p, name, S_ISDIR(st.st_mode), err);
    } else {
      char *real = NULL;
      if (S_ISLNK(st.st_mode)) {
        real = realpath(path, NULL);
        if (real == NULL) {
          zerr_set(err, "INVALID_INPUT", "symlink %s is broken: %s", path, strerror(errno));
          rc = -1;
        } else if (!path_inside(root, real)) {
          zerr_set(err, "INVALID_INPUT", "symlink %s points outside %s (to %s)", path, root,
                   real);
          rc = -1;
        } else if (stat(path, &st) != 0) {
          zerr_set(err, "IO", "cannot read %s: %s", path, strerror(errno));
          rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
          const walk_frame *f;
          for (f = &here; f != NULL; f = f->up)
            if (strcmp(f->real, real) == 0) {
              zerr_set(err, "INVALID_INPUT", "symlink %s loops back to %s", path, real);
              rc = -1;
              break;
            }
        }
      }
      if (rc == 0) {
        /* an unreadable file is found now, before anything is archived or sent */
        if (S_ISREG(st.st_mode) && faccessat(dirfd(d), de->d_name, R_OK, 0) != 0) {
          zerr_set(err, "INVALID_INPUT", "cannot read %s: %s", path, strerror(errno));
          rc = -1;
        } else if (S_ISREG(st.st_mode))
          rc = plan_push(p, path, name, strlen(name), (uint64_t)st.st_size,
                         zf_norm_mode(0, st.st_mode), method, level, err);
        else if (S_ISDIR(st.st_mode)) {
          rc = zw_plan_add_dir(p, name, err);
          if (rc == 0)
            rc = walk(p, root, path, name, &here, depth + 1, method, level, err);
        } else {
          zerr_set(err, "INVALID_INPUT", "%s is not a regular file or directory", path);
          rc = -1;
        }
      }
      free(real);
    }
    free(path);
    free(name);
  }
  if (rc == 0 && errno != 0) {
    zerr_set(err, "IO", "cannot read directory %s: %s", dir, strerror(errno));
    rc = -1;
  }
  closedir(d);
  free(dreal);
  return rc;
}

/* The last component of src, ignoring trailing slashes; falls back to the real path's
 * for ".", ".." and "/" so `zip.create(out, {"."})` names the directory. */
static char *base_name(const char *src) {
  size_t end = strlen(src), start;
  char *real, *r;
  while (end > 1 && src[end - 1] == '/')
    end--;
  start = end;
  while (start > 0 && src[start - 1] != '/')
    start--;
  if (end - start > 0 && !(end - start == 1 && src[start] == '.') &&
      !(end - start == 2 && src[start] == '.' && src[start + 1] == '.') &&
      src[start] != '/')
    return strndup(src + start, end - start);
  real = realpath(src, NULL);
  if (real == NULL)
    return NULL;
  r = strrchr(real, '/');
  r = strdup(r && r[1] ? r + 1 : real);
  free(real);
  return r;
}

int zw_plan_add(zw_plan *p, const char *src, const char *name, int method, int level,
                zerr *err) {
  struct stat st;
  char *owned = NULL, *root;
  int rc;
  if (stat(src, &st) != 0) {
    zerr_set(err, "INVALID_INPUT", "cannot read %s: %s", src, strerror(errno));
    return -1;
  }
  if (name == NULL) {
    name = owned = base_name(src);
    if (name == NULL) {
      zerr_set(err, "INVALID_INPUT", "cannot name %s: %s", src, strerror(errno));
      return -1;
    }
  }
  if (S_ISREG(st.st_mode)) {
    rc = plan_push(p, src, name, strlen(name), (uint64_t)st.st_size,
                   zf_norm_mode(0, st.st_mode), method, level, err);
  } else if (S_ISDIR(st.st_mode)) {
    size_t len = strlen(name);
    char *prefix = strdup(name);
    if (prefix == NULL) {
      free(owned);
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    while (len > 0 && prefix[len - 1] == '/')
      prefix[--len] = '\0';
    rc = len > 0 ? zw_plan_add_dir(p, prefix, err) : 0;
    root = rc == 0 ? realpath(src, NULL) : NULL;
    if (rc == 0 && root == NULL) {
      zerr_set(err, "INVALID_INPUT", "cannot read %s: %s", src, strerror(errno));
      rc = -1;
    }
    if (rc == 0)
      rc = walk(p, root, src, prefix, NULL, 0, method, level, err);
    free(root);
    free(prefix);
  } else {
    zerr_set(err, "INVALID_INPUT", "%s is not a regular file or directory", src);
    rc = -1;
  }
  free(owned);
  return rc;
}

static int cmp_item(const void *a, const void *b) {
  return strcmp(((const zw_item *)a)->name, ((const zw_item *)b)->name);
}

static void item_name_at(const void *ctx, size_t i, const char **p, size_t *len) {
  const zw_item *it = (const zw_item *)ctx + i;
  *p = it->name;
  *len = it->namelen;
}

int zw_plan_sort(zw_plan *p, zerr *err) {
  size_t a, b;
  int dup;
  if (p->n == 0)
    return 0;
  if (p->cap > p->n) { /* the walk is over: give back what growth left unused */
    zw_item *fit = realloc(p->items, p->n * sizeof *fit);
    if (fit != NULL) {
      p->items = fit;
      p->cap = p->n;
    }
  }
  qsort(p->items, p->n, sizeof *p->items, cmp_item);
  dup = zf_find_duplicate(p->n, item_name_at, p->items, &a, &b);
  if (dup < 0)
    zerr_set(err, "NOMEM", "out of memory");
  else if (dup == 1)
    zerr_set(err, "INVALID_INPUT", "two entries would be named '%s'", p->items[a].name);
  else if (dup == 2)
    zerr_set(err, "INVALID_INPUT", "entry names '%s' and '%s' differ only by case",
             p->items[a].name, p->items[b].name);
  return dup == 0 ? 0 : -1;
}

/* ---- auto ------------------------------------------------------------------------- */

int zw_auto_deflates(const unsigned char *data, size_t n, uint64_t size, int level) {
  z_stream strm;
  int cur = -2;
  pd_job j;
  int deflates;
  size_t len = size <= ZW_BLOCK ? (size_t)size : (n < ZW_SAMPLE ? n : ZW_SAMPLE);
  if (size == 0)
    return 0;
  if (len > n)
    len = n;
  memset(&strm, 0, sizeof strm);
  memset(&j, 0, sizeof j);
  j.in = data;
  j.inlen = len;
  /* a whole small entry is judged at its own level, exactly as the writer's pool will
   * compress it; a larger one by a fast level-1 pass over its start */
  j.level = size <= ZW_BLOCK ? level : 1;
  j.finish = 1;
  j.outcap = pd_out_bound(len);
  j.out = malloc(j.outcap);
  if (j.out == NULL)
    return 1; /* cannot tell: deflating is the safe answer for a stream */
  pd_run(&strm, &cur, &j);
  pd_end(&strm, &cur);
  deflates = j.err == 0 && pd_worth_deflating(len, j.outlen);
  free(j.out);
  return deflates;
}

/* Reads n bytes at offset at (fewer only at the end of the file) into buf. */
static int read_full_at(int fd, unsigned char *buf, size_t n, uint64_t at, size_t *got) {
  size_t total = 0;
  while (total < n) {
    ssize_t r = pread(fd, buf + total, n - total, (off_t)(at + total));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    total += (size_t)r;
  }
  *got = total;
  return 0;
}

static int level_of(int level) { return level < 0 ? 6 : level > 9 ? 9 : level; }

int zw_plan_all_stored(zw_plan *p, size_t *which, zerr *err) {
  unsigned char *buf = NULL;
  size_t i;
  int rc = 0;
  for (i = 0; i < p->n && rc == 0; i++) {
    zw_item *it = &p->items[i];
    size_t want, got = 0;
    int fd;
    if (it->method == ZW_STORE || it->src == NULL || it->size == 0) {
      it->method = ZW_STORE;
      continue;
    }
    if (it->method == ZW_DEFLATE) {
      *which = i;
      rc = 1;
      break;
    }
    want = it->size <= ZW_BLOCK ? (size_t)it->size : ZW_SAMPLE;
    if (buf == NULL && (buf = malloc(ZW_BLOCK)) == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    fd = open(it->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read_full_at(fd, buf, want, 0, &got) != 0 || got != want) {
      zerr_set(err, "IO", "cannot read %s: %s", it->src,
               fd >= 0 && got != want ? "it changed while being archived" : strerror(errno));
      rc = -1;
    } else if (zw_auto_deflates(buf, want, it->size, level_of(it->level))) {
      *which = i;
      rc = 1;
    } else {
      it->method = ZW_STORE;
    }
    if (fd >= 0)
      close(fd);
  }
  free(buf);
  return rc;
}

/* ---- buffered output -------------------------------------------------------------- */

#define OUTBUF (1u << 20)

typedef struct outbuf {
  int fd;
  unsigned char *buf;
  size_t used;
  uint64_t flushed; /* bytes already in the file; buf holds the ones after */
} outbuf;

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int out_flush(outbuf *o) {
  if (o->used > 0 && write_all(o->fd, o->buf, o->used) != 0)
    return -1;
  o->flushed += o->used;
  o->used = 0;
  return 0;
}

static uint64_t out_pos(const outbuf *o) { return o->flushed + o->used; }

/* Writes a then b with as few system calls as the kernel allows. */
static int write2(int fd, const unsigned char *a, size_t na, const unsigned char *b,
                  size_t nb) {
  while (na + nb > 0) {
    struct iovec iov[2];
    int k = 0;
    ssize_t w;
    if (na > 0) {
      iov[k].iov_base = (void *)(uintptr_t)a;
      iov[k++].iov_len = na;
    }
    if (nb > 0) {
      iov[k].iov_base = (void *)(uintptr_t)b;
      iov[k++].iov_len = nb;
    }
    w = writev(fd, iov, k);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if ((size_t)w >= na) {
      b += (size_t)w - na;
      nb -= (size_t)w - na;
      na = 0;
    } else {
      a += w;
      na -= (size_t)w;
    }
  }
  return 0;
}

static int out_write(outbuf *o, const unsigned char *p, size_t n) {
  if (n >= OUTBUF / 2) { /* large blocks go straight to the file, behind what is buffered */
    if (write2(o->fd, o->buf, o->used, p, n) != 0)
      return -1;
    o->flushed += o->used + n;
    o->used = 0;
    return 0;
  }
  if (n > OUTBUF - o->used && out_flush(o) != 0)
    return -1;
  memcpy(o->buf + o->used, p, n);
  o->used += n;
  return 0;
}

/* Rewrites bytes already written; a record is never split by a flush. */
static int out_patch(outbuf *o, uint64_t at, const unsigned char *p, size_t n) {
  if (at >= o->flushed) {
    memcpy(o->buf + (at - o->flushed), p, n);
    return 0;
  }
  return pwrite(o->fd, p, n, (off_t)at) == (ssize_t)n ? 0 : -1;
}

/* ---- the writer ------------------------------------------------------------------- */

/* Whole entries up to ZW_BATCH bytes share a slot, at most ZW_PARTS of them: one
 * hand-off to the pool for many small files instead of one each. */
#define ZW_BATCH (128u * 1024u)
#define ZW_PARTS 64
#define ZW_DICT 32768u

/* One block of one entry: a whole entry of at most ZW_BLOCK bytes, or a ZW_BLOCK piece
 * of a larger one. The worker that runs it reads its bytes (load_block), so reading,
 * checksumming and compressing all happen off the thread that writes the archive. */
typedef struct blk {
  pd_job job;         /* first member: load_block gets &job */
  size_t item;        /* index into the batch */
  const char *src;    /* NULL for a directory */
  int fd;             /* a large file opened by zw_add, or -1: the loader opens src */
  uint64_t off, size; /* of the piece in the file; the size of the whole file */
  unsigned char *buf; /* the loader's destination: job.dictlen bytes, then the block */
  int first, last;
} blk;

typedef struct slot {
  blk blks[ZW_PARTS]; /* blks[0].job is submitted; the rest hang off it by `more` */
  size_t nblk;
  unsigned char *in, *out;
  size_t inused, outused;
  int fd; /* a large file, closed once its last block is done */
  int submitted;
} slot;

/* Names already in the archive, hashed case-folded, for duplicate checks across adds. */
typedef struct nameset {
  uint32_t *idx; /* entry index + 1; 0 is empty */
  size_t cap, n;
} nameset;

struct zw_writer {
  char *path, *tmp;
  outbuf out;
  int threads;
  uint16_t dostime, dosdate;
  int finished, broken;
  zf_entry *entries;
  size_t n, cap;
  zf_pool strings;  /* the entries' names, unless borrowed */
  int borrow_names; /* see zw_borrow_names */
  nameset names;
  pd_pool *pool;
  slot *slots;
  size_t nslots;
  unsigned char *samplebuf; /* the start of a large file under "auto" */
};

static size_t name_hash(const char *s, size_t n) {
  size_t h = 1469598103934665603ull, i;
  if (n > 0 && s[n - 1] == '/')
    n--;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 1099511628211ull;
  }
  return h;
}

/* 0 when name is new, else 1 (same name) or 2 (same but for case) with *other set. */
static int nameset_find(const zw_writer *w, const char *name, size_t len, size_t *other) {
  const nameset *s = &w->names;
  size_t i, k;
  if (s->cap == 0)
    return 0;
  for (i = name_hash(name, len) & (s->cap - 1); s->idx[i] != 0; i = (i + 1) & (s->cap - 1)) {
    const zf_entry *e = &w->entries[s->idx[i] - 1];
    size_t a = len, b = e->namelen;
    if (a > 0 && name[a - 1] == '/')
      a--;
    if (b > 0 && e->name[b - 1] == '/')
      b--;
    if (a != b)
      continue;
    for (k = 0; k < a; k++) {
      unsigned char x = (unsigned char)name[k], y = (unsigned char)e->name[k];
      if (x != y && !((x | 32) == (y | 32) && (x | 32) >= 'a' && (x | 32) <= 'z'))
        break;
    }
    if (k < a)
      continue;
    *other = s->idx[i] - 1;
    return memcmp(name, e->name, a) == 0 ? 1 : 2;
  }
  return 0;
}

static int nameset_insert(zw_writer *w, size_t entry) {
  nameset *s = &w->names;
  size_t i;
  if (entry >= UINT32_MAX - 1)
    return -1;
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024, k;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (idx == NULL)
      return -1;
    for (k = 0; k < s->cap; k++)
      if (s->idx[k]) {
        const zf_entry *e = &w->entries[s->idx[k] - 1];
        for (i = name_hash(e->name, e->namelen) & (cap - 1); idx[i]; i = (i + 1) & (cap - 1)) {
        }
        idx[i] = s->idx[k];
      }
    free(s->idx);
    s->idx = idx;
    s->cap = cap;
  }
  for (i = name_hash(w->entries[entry].name, w->entries[entry].namelen) & (s->cap - 1);
       s->idx[i]; i = (i + 1) & (s->cap - 1)) {
  }
  s->idx[i] = (uint32_t)(entry + 1);
  s->n++;
  return 0;
}

static int online_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int zw_open_input(const zw_item *it, zerr *err) {
  struct stat st;
  int fd = open(it->src, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    zerr_set(err, "IO", "cannot read %s: %s", it->src, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != it->size) {
    zerr_set(err, "IO", "%s changed while being archived", it->src);
    close(fd);
    return -1;
  }
#ifdef SKAFOS_HAVE_POSIX_FADVISE
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  return fd;
}

zw_writer *zw_open(const char *path, int threads, int64_t mtime, zerr *err) {
  zw_writer *w = calloc(1, sizeof *w);
  mode_t mask;
  if (w == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return NULL;
  }
  w->out.fd = -1;
  w->threads = threads > 0 ? (threads > 64 ? 64 : threads) : online_cores();
  zf_dostime(mtime >= 0 ? mtime : zf_default_epoch(), &w->dostime, &w->dosdate);
  w->path = strdup(path);
  w->tmp = malloc(strlen(path) + 16);
  w->out.buf = malloc(OUTBUF);
  if (w->path == NULL || w->tmp == NULL || w->out.buf == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    zw_free(w);
    return NULL;
  }
  sprintf(w->tmp, "%s.tmp-XXXXXX", path);
  w->out.fd = mkstemp(w->tmp);
  if (w->out.fd < 0) {
    zerr_set(err, "IO", "cannot create %s: %s", path, strerror(errno));
    w->tmp[0] = '\0';
    zw_free(w);
    return NULL;
  }
  mask = umask(0);
  umask(mask);
  fchmod(w->out.fd, 0666 & ~mask);
  return w;
}

/* Waits for every submitted block, then closes the files they read; needed before
 * buffers are reused or freed. Slots are waited for first: a file's descriptor belongs
 * to its last block, which may sit before earlier ones in the array. */
static void drain(zw_writer *w) {
  size_t i;
  for (i = 0; i < w->nslots; i++)
    if (w->slots[i].submitted) {
      pd_wait(w->pool, &w->slots[i].blks[0].job);
      w->slots[i].submitted = 0;
    }
  for (i = 0; i < w->nslots; i++)
    if (w->slots[i].fd >= 0) {
      close(w->slots[i].fd);
      w->slots[i].fd = -1;
    }
}

static void free_pipeline(zw_writer *w) {
  size_t i;
  if (w->pool) {
    drain(w);
    pd_free(w->pool);
    w->pool = NULL;
  }
  for (i = 0; i < w->nslots; i++) {
    free(w->slots[i].in);
    free(w->slots[i].out);
  }
  free(w->slots);
  w->slots = NULL;
  w->nslots = 0;
  free(w->samplebuf);
  w->samplebuf = NULL;
}

static int start_pipeline(zw_writer *w, zerr *err) {
  /* about 1 MiB per slot: enough blocks in flight to keep every thread busy, capped so
   * the writer stays far below 64 MiB on any machine */
  size_t i, n = (size_t)w->threads * 3 + 2 > 40 ? 40 : (size_t)w->threads * 3 + 2;
  if (w->pool)
    return 0;
  w->slots = calloc(n, sizeof *w->slots);
  w->samplebuf = malloc(ZW_SAMPLE);
  if (w->slots == NULL || w->samplebuf == NULL)
    goto oom;
  w->nslots = n;
  for (i = 0; i < n; i++) {
    w->slots[i].fd = -1;
    w->slots[i].in = malloc(ZW_DICT + ZW_BLOCK);
    w->slots[i].out = malloc(pd_out_bound(ZW_BLOCK));
    if (w->slots[i].in == NULL || w->slots[i].out == NULL)
      goto oom;
  }
  w->pool = pd_new(w->threads);
  if (w->pool == NULL) {
    zerr_set(err, "IO", "cannot start compression threads");
    free_pipeline(w);
    return -1;
  }
  return 0;
oom:
  free_pipeline(w);
  zerr_set(err, "NOMEM", "out of memory");
  return -1;
}

/* The run of one zw_add call: state of the entry being written out. */
typedef struct run {
  zw_writer *w;
  const zw_item *items;
  const zhooks *hooks;
  zf_entry cur;
  uLong crc;
  uint64_t done, total, reported;
  int final_reported;
  size_t head, used; /* ring of slots: oldest in flight, and how many */
  slot *batch;       /* the newest slot while it still takes whole entries, or NULL */
} run;

static int record_entry(run *r, zerr *err) {
  zw_writer *w = r->w;
  zf_entry *e;
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap + w->cap / 2 : 64;
    zf_entry *entries = realloc(w->entries, cap * sizeof *entries);
    if (entries == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    w->entries = entries;
    w->cap = cap;
  }
  e = &w->entries[w->n];
  *e = r->cur;
  e->name = w->borrow_names ? r->cur.name
                            : zf_pool_put(&w->strings, r->cur.name, r->cur.namelen);
  if (e->name == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  w->n++;
  return 0;
}

/* Writes one block out: its entry's local header first (final at once for a
 * single-block entry, else patched after the last block) and its central record once
 * the entry's last block is out. */
static int retire_blk(run *r, const blk *b, zerr *err) {
  zw_writer *w = r->w;
  const zw_item *it = &r->items[b->item];
  const pd_job *j = &b->job;
  unsigned char hdr[ZF_HEADER_SLACK + 0x10000];
  if (j->ioerr != 0) {
    zerr_set(err, "IO", "cannot read %s: %s", it->src,
             j->ioerr < 0 ? "it changed while being archived" : strerror(j->ioerr));
    return -1;
  }
  if (j->err != 0) {
    zerr_set(err, "IO", "compressing %s failed (zlib error %d)", it->src, j->err);
    return -1;
  }
  if (b->first) {
    memset(&r->cur, 0, sizeof r->cur);
    r->cur.name = it->name;
    r->cur.namelen = it->namelen;
    r->cur.method = j->stored ? ZF_STORE : ZF_DEFLATE;
    r->cur.dostime = w->dostime;
    r->cur.dosdate = w->dosdate;
    r->cur.mode = it->mode;
    r->cur.usize = it->size;
    r->cur.offset = out_pos(&w->out);
    r->cur.zip64_local = zf_needs_zip64_local(r->cur.method, it->size);
    r->crc = crc32(0L, Z_NULL, 0);
  }
  if (j->inlen > 0 || j->outlen > 0) {
    r->crc = b->first ? j->crc : crc32_combine(r->crc, j->crc, (z_off_t)j->inlen);
    r->cur.csize += j->outlen;
    r->done += j->inlen;
  }
  if (b->last) {
    r->cur.crc = (uint32_t)r->crc;
    if (!r->cur.zip64_local && r->cur.csize >= ZF_MAX32) {
      zerr_set(err, "IO", "%s grew past 4 GiB when compressed", it->name);
      return -1;
    }
  }
  /* a multi-block entry's header is a placeholder of the final length until its end */
  if (b->first && out_write(&w->out, hdr, zf_local(hdr, &r->cur)) != 0)
    goto ioerr;
  if (j->outlen > 0 && out_write(&w->out, j->stored ? j->in : j->out, j->outlen) != 0)
    goto ioerr;
  if (b->last) {
    if (!b->first && out_patch(&w->out, r->cur.offset, hdr, zf_local(hdr, &r->cur)) != 0)
      goto ioerr;
    if (record_entry(r, err) != 0)
      return -1;
  }
  if (r->hooks && r->hooks->progress &&
      (r->done - r->reported >= (1u << 20) || (r->done == r->total && !r->final_reported))) {
    r->reported = r->done;
    r->final_reported = r->done == r->total;
    if (r->hooks->progress(r->hooks->ud, r->done, r->total) != 0) {
      zerr_set(err, "ABORTED", "stopped by the progress callback");
      return -1;
    }
  }
  return 0;
ioerr:
  zerr_set(err, "IO", "cannot write %s: %s", w->path, strerror(errno));
  return -1;
}

/* Writes out the oldest slot in flight, once its blocks are done. */
static int retire(run *r, zerr *err) {
  zw_writer *w = r->w;
  slot *s = &w->slots[r->head];
  size_t i;
  if (s->submitted) {
    pd_wait(w->pool, &s->blks[0].job);
    s->submitted = 0;
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  r->head = (r->head + 1) % w->nslots;
  r->used--;
  for (i = 0; i < s->nblk; i++)
    if (retire_blk(r, &s->blks[i], err) != 0)
      return -1;
  return 0;
}

static void submit(zw_writer *w, slot *s) {
  pd_submit(w->pool, &s->blks[0].job);
  s->submitted = 1;
}

/* A free slot, retiring the oldest when all are in flight. An open batch is handed to
 * the pool first: it must not wait for slots that come after it. */
static slot *acquire(run *r, zerr *err) {
  zw_writer *w = r->w;
  slot *s;
  if (r->batch != NULL) {
    submit(w, r->batch);
    r->batch = NULL;
  }
  if (r->used == w->nslots && retire(r, err) != 0)
    return NULL;
  s = &w->slots[(r->head + r->used) % w->nslots];
  r->used++;
  s->nblk = 0;
  s->inused = s->outused = 0;
  s->fd = -1;
  s->submitted = 0;
  return s;
}

/* pd_job.load, in a worker: reads the block (after the dictionary it is primed with).
 * Returns 0, an errno value, or -1 when the file is not the size it was planned at. */
static int load_block(pd_job *j) {
  blk *b = (blk *)(void *)j;
  size_t want = j->dictlen + j->inlen, got = 0;
  struct stat st;
  int fd, rc = 0;
  if (b->fd >= 0) {
    if (read_full_at(b->fd, b->buf, want, b->off - j->dictlen, &got) != 0)
      return errno ? errno : EIO;
  } else {
    if (b->src == NULL)
      return 0; /* a directory */
    fd = open(b->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return errno ? errno : EIO;
    if (fstat(fd, &st) != 0)
      rc = errno ? errno : EIO;
    else if ((uint64_t)st.st_size != b->size)
      rc = -1;
    else if (read_full_at(fd, b->buf, want, 0, &got) != 0)
      rc = errno ? errno : EIO;
    close(fd);
    if (rc != 0)
      return rc;
  }
  if (got != want)
    return -1;
  j->dict = j->dictlen ? b->buf : NULL;
  j->in = b->buf + j->dictlen;
  return 0;
}

/* Fills in the job of b for `inlen` bytes at `level` (-1: stored) into out[0..outcap). */
static void set_job(blk *b, size_t inlen, int level, unsigned char *out, size_t outcap) {
  pd_job *j = &b->job;
  memset(j, 0, sizeof *j);
  j->inlen = inlen;
  j->level = level;
  j->finish = b->last;
  j->out = out;
  j->outcap = outcap;
  j->load = load_block;
}

/* A whole entry of at most ZW_BLOCK bytes (or a directory), added to the open batch. */
static int add_whole(run *r, size_t idx, zerr *err) {
  const zw_item *it = &r->items[idx];
  size_t size = it->src ? (size_t)it->size : 0, bound = size ? pd_out_bound(size) : 0;
  slot *s = r->batch;
  blk *b;
  int level = size == 0 || it->method == ZW_STORE ? -1 : level_of(it->level);
  if (s != NULL && (s->nblk == ZW_PARTS || s->inused + size > ZW_BATCH ||
                    s->outused + bound > pd_out_bound(ZW_BLOCK))) {
    submit(r->w, s);
    r->batch = s = NULL;
  }
  if (s == NULL) {
    if ((s = acquire(r, err)) == NULL)
      return -1;
    r->batch = s;
  }
  b = &s->blks[s->nblk];
  b->item = idx;
  b->src = it->src;
  b->fd = -1;
  b->off = 0;
  b->size = it->size;
  b->buf = s->in + s->inused;
  b->first = b->last = 1;
  set_job(b, size, level, s->out + s->outused, bound);
  b->job.auto_store = level >= 0 && it->method == ZW_AUTO; /* the pool decides */
  if (s->nblk > 0)
    s->blks[s->nblk - 1].job.more = &b->job;
  s->nblk++;
  s->inused += size;
  s->outused += bound;
  return 0;
}

static int add_item(run *r, size_t idx, zerr *err) {
  zw_writer *w = r->w;
  const zw_item *it = &r->items[idx];
  uint64_t off = 0;
  int fd, method = it->method, level = level_of(it->level);
  if (r->hooks && r->hooks->cancelled && r->hooks->cancelled(r->hooks->ud)) {
    zerr_set(err, "INTERRUPTED", "interrupted");
    return -1;
  }
  if (it->src == NULL || it->size <= ZW_BLOCK)
    return add_whole(r, idx, err);
  if ((fd = zw_open_input(it, err)) < 0)
    return -1;
  if (method == ZW_AUTO) {
    size_t got = 0;
    if (read_full_at(fd, w->samplebuf, ZW_SAMPLE, 0, &got) != 0 || got != ZW_SAMPLE) {
      zerr_set(err, "IO", "cannot read %s: %s", it->src,
               got != ZW_SAMPLE ? "it changed while being archived" : strerror(errno));
      close(fd);
      return -1;
    }
    method = zw_auto_deflates(w->samplebuf, got, it->size, level) ? ZW_DEFLATE : ZW_STORE;
  }
#ifdef SKAFOS_HAVE_FALLOCATE
  /* A stored file grows the archive by its size: reserved in one call, the writes that
   * follow skip the file system's block-by-block allocation (ext4: a third faster).
   * Best effort; the size of the archive does not change. */
  if (method == ZW_STORE)
    (void)fallocate(w->out.fd, FALLOC_FL_KEEP_SIZE, (off_t)out_pos(&w->out),
                    (off_t)(it->size + it->namelen + ZF_HEADER_SLACK));
#endif
  while (off < it->size) {
    size_t want = it->size - off > ZW_BLOCK ? ZW_BLOCK : (size_t)(it->size - off);
    slot *s;
    blk *b;
    if (r->hooks && r->hooks->cancelled && r->hooks->cancelled(r->hooks->ud)) {
      zerr_set(err, "INTERRUPTED", "interrupted");
      goto fail;
    }
    if ((s = acquire(r, err)) == NULL)
      goto fail;
    b = &s->blks[0];
    s->nblk = 1;
    b->item = idx;
    b->src = it->src;
    b->fd = fd;
    b->off = off;
    b->size = it->size;
    b->buf = s->in;
    b->first = off == 0;
    b->last = off + want == it->size;
    set_job(b, want, method == ZW_STORE ? -1 : level, s->out, pd_out_bound(ZW_BLOCK));
    if (!b->first && method != ZW_STORE)
      b->job.dictlen = ZW_DICT; /* primed with the 32 KiB before, read again */
    if (b->last)
      s->fd = fd; /* closed once this last block is done */
    submit(w, s);
    off += want;
  }
  return 0;
fail:
  drain(w); /* blocks in flight still read fd */
  close(fd);
  return -1;
}

int zw_add(zw_writer *w, const zw_item *items, size_t n, const zhooks *hooks,
           zerr *err) {
  run r;
  size_t i, start_n = w->n, other, a, b;
  uint64_t start_pos = out_pos(&w->out);
  int rc = 0;
  if (w->finished || w->broken) {
    zerr_set(err, "INVALID_INPUT", "the archive is %s", w->finished ? "closed" : "broken");
    return -1;
  }
  /* room for every entry at once: no growth slack on a large archive */
  if (w->cap - w->n < n) {
    zf_entry *entries = realloc(w->entries, (w->n + n) * sizeof *entries);
    if (entries == NULL) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
    w->entries = entries;
    w->cap = w->n + n;
  }
  /* the set of names written so far is built only when a second call needs it: an
   * archive written in one call never holds it */
  for (i = w->names.n; i < w->n; i++)
    if (nameset_insert(w, i) != 0) {
      zerr_set(err, "NOMEM", "out of memory");
      return -1;
    }
  /* names: valid, unique within the batch and against what is already written */
  for (i = 0; i < n; i++) {
    const char *why = zf_check_name(items[i].name, items[i].namelen);
    int dup = why ? 0 : nameset_find(w, items[i].name, items[i].namelen, &other);
    if (why) {
      zerr_set(err, "INVALID_INPUT", "cannot archive '%s': %s", items[i].name, why);
      return -1;
    }
    if (dup) {
      zerr_set(err, "INVALID_INPUT", dup == 1 ? "the archive already has '%s'%.0s"
                                              : "'%s' differs only by case from '%s'",
               items[i].name, w->entries[other].name);
      return -1;
    }
  }
  if (n > 1) {
    int dup = zf_find_duplicate(n, item_name_at, items, &a, &b);
    if (dup != 0) {
      if (dup < 0)
        zerr_set(err, "NOMEM", "out of memory");
      else
        zerr_set(err, "INVALID_INPUT", dup == 1 ? "two entries would be named '%s'%.0s"
                                                : "'%s' and '%s' differ only by case",
                 items[a].name, items[b].name);
      return -1;
    }
  }
  if (start_pipeline(w, err) != 0)
    return -1;
  memset(&r, 0, sizeof r);
  r.w = w;
  r.items = items;
  r.hooks = hooks;
  for (i = 0; i < n; i++)
    r.total += items[i].size;
  for (i = 0; i < n && rc == 0; i++)
    rc = add_item(&r, i, err);
  if (rc == 0 && r.batch != NULL)
    submit(w, r.batch);
  while (rc == 0 && r.used > 0)
    rc = retire(&r, err);
  if (rc == 0)
    return 0;
  /* roll back to the state before this call */
  drain(w);
  w->n = start_n; /* their names stay in the pool until the writer goes */
  if (start_pos >= w->out.flushed) {
    w->out.used = (size_t)(start_pos - w->out.flushed);
  } else if (ftruncate(w->out.fd, (off_t)start_pos) != 0 ||
             lseek(w->out.fd, (off_t)start_pos, SEEK_SET) < 0) {
    w->broken = 1;
  } else {
    w->out.used = 0;
    w->out.flushed = start_pos;
  }
  return -1;
}

int zw_finish(zw_writer *w, zerr *err) {
  unsigned char *rec;
  uint64_t cd_offset, cd_size;
  size_t i;
  if (w->finished)
    return 0;
  if (w->broken) {
    zerr_set(err, "IO", "cannot finish %s after a failed write", w->path);
    return -1;
  }
  free_pipeline(w);
  rec = malloc(ZF_HEADER_SLACK + 0x10000);
  if (rec == NULL) {
    zerr_set(err, "NOMEM", "out of memory");
    return -1;
  }
  cd_offset = out_pos(&w->out);
  for (i = 0; i < w->n; i++)
    if (out_write(&w->out, rec, zf_central(rec, &w->entries[i])) != 0)
      goto ioerr;
  cd_size = out_pos(&w->out) - cd_offset;
  if (out_write(&w->out, rec, zf_end(rec, w->n, cd_offset, cd_size)) != 0 ||
      out_flush(&w->out) != 0)
    goto ioerr;
  if (close(w->out.fd) != 0) {
    w->out.fd = -1;
    goto ioerr;
  }
  w->out.fd = -1;
  if (rename(w->tmp, w->path) != 0)
    goto ioerr;
  w->tmp[0] = '\0';
  w->finished = 1;
  free(rec);
  return 0;
ioerr:
  free(rec);
  zerr_set(err, "IO", "cannot write %s: %s", w->path, strerror(errno));
  w->broken = 1;
  return -1;
}

void zw_free(zw_writer *w) {
  if (w == NULL)
    return;
  free_pipeline(w);
  if (w->out.fd >= 0)
    close(w->out.fd);
  if (w->tmp && w->tmp[0])
    unlink(w->tmp);
  zf_pool_free(&w->strings);
  free(w->entries);
  free(w->names.idx);
  free(w->out.buf);
  free(w->path);
  free(w->tmp);
  free(w);
}

void zw_borrow_names(zw_writer *w) { w->borrow_names = 1; }

size_t zw_count(const zw_writer *w) { return w->n; }
const zf_entry *zw_entry(const zw_writer *w, size_t i) { return &w->entries[i]; }
uint64_t zw_bytes_out(const zw_writer *w) { return out_pos(&w->out); }
