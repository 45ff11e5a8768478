/*
 * Parallel ranged GET (see pget.h): a first request for the object's first bytes learns
 * its size and whether storage answers ranges; the rest is cut into pieces taken in file
 * order by connections that are added for as long as they add throughput.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pget.h"

#define PROBE_SIZE (INT64_C(8) << 20)   /* the first request's range */
#define MIN_PIECE (INT64_C(8) << 20)
#define MAX_PIECE (INT64_C(32) << 20)   /* what the hashing may lag behind, per connection */
#define MIN_SPLIT (INT64_C(4) << 20)    /* a range with less left is not split */
#define RECORD_STEP (INT64_C(16) << 20) /* a range's progress reaches the meta file this often */
#define RAMP_MIN_WINDOW 0.15            /* seconds between looks at the throughput */
#define RAMP_GAIN 1.2                   /* more connections stay only if they add this much */
/* One connection this fast already gives a 2-core machine all it can write and hash: more
 * would only compete for the same cores (loopback, a LAN). A near server (first byte within
 * RAMP_NEAR seconds) needs less: one TCP connection fills a short path, and a first range
 * on a fresh connection of a fresh process comes slower than the rest. */
#define RAMP_FAST_LINK (160.0 * 1048576.0)
#define RAMP_NEAR_LINK (48.0 * 1048576.0)
#define RAMP_NEAR 0.015
#define MAX_TRIES 5             /* attempts per piece before the whole get fails */
#define MAX_RESTARTS 2          /* the object changed under us this often: give up */
#define META_LIMIT (1u << 20)
#define HASH_READ (1u << 20)
#define TICK_INTERVAL 0.1
/* Stream mode: bytes held ahead of the point delivered sit in blocks of this size, taken
 * from a pool that never grows past the window, so the window bounds the memory. */
#define SBLOCK (64u * 1024u)
#define STREAM_MIN_PIECE (INT64_C(256) << 10)
#define STREAM_MAX_PIECE (INT64_C(8) << 20)
#define STREAM_BUFSIZE (64L * 1024L)  /* receive buffer of every connection but the first */

/* ---- the meta file ---------------------------------------------------------------------- */

static int range_cmp(const void *a, const void *b) {
  const pget_range *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts and merges m->done (touching ranges become one). */
static void normalise(pget_meta *m) {
  size_t i, o = 0;
  if (m->ndone == 0)
    return;
  qsort(m->done, m->ndone, sizeof *m->done, range_cmp);
  for (i = 1; i < m->ndone; i++) {
    if (m->done[i].first <= m->done[o].last + 1) {
      if (m->done[i].last > m->done[o].last)
        m->done[o].last = m->done[i].last;
    } else {
      m->done[++o] = m->done[i];
    }
  }
  m->ndone = o + 1;
}

int pget_meta_add(pget_meta *m, int64_t first, int64_t last) {
  pget_range *d = realloc(m->done, (m->ndone + 1) * sizeof *d);
  if (d == NULL)
    return -1;
  m->done = d;
  d[m->ndone].first = first;
  d[m->ndone].last = last;
  m->ndone++;
  normalise(m);
  return 0;
}

void pget_meta_free(pget_meta *m) {
  free(m->done);
  m->done = NULL;
  m->ndone = 0;
}

/* Parses a decimal int64 at *p (no sign); advances *p. -1 when there is none. */
static int parse_num(const char **p, const char *e, int64_t *v) {
  int64_t x = 0;
  const char *s = *p;
  while (*p < e && **p >= '0' && **p <= '9') {
    if (x > (INT64_MAX - 9) / 10)
      return -1;
    x = x * 10 + (*(*p)++ - '0');
  }
  *v = x;
  return *p > s ? 0 : -1;
}

int pget_meta_parse(const char *text, size_t n, pget_meta *m) {
  static const char magic[] = "skafos-ranges 1\n";
  const char *p = text, *e = text + n;
  int have_etag = 0;
  memset(m, 0, sizeof *m);
  m->size = -1;
  if (n < sizeof magic - 1 || memcmp(text, magic, sizeof magic - 1) != 0) {
    /* a bare ETag on one line, without a line break */
    if (n == 0 || n >= sizeof m->etag || memchr(text, '\n', n) || memchr(text, '\r', n) ||
        memchr(text, '\0', n))
      return -1;
    memcpy(m->etag, text, n);
    m->etag[n] = '\0';
    return 0;
  }
  m->ranged = 1;
  p += sizeof magic - 1;
  /* Only whole lines count: a line cut short by a kill ends the file. */
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    if (nl == NULL)
      break;
    if (nl - p > 5 && memcmp(p, "etag ", 5) == 0 && !have_etag) {
      size_t len = (size_t)(nl - p - 5);
      if (len >= sizeof m->etag || memchr(p + 5, '\r', len) || memchr(p + 5, '\0', len))
        goto bad;
      memcpy(m->etag, p + 5, len);
      m->etag[len] = '\0';
      have_etag = 1;
    } else if (nl - p > 5 && memcmp(p, "size ", 5) == 0 && m->size < 0) {
      const char *q = p + 5;
      if (parse_num(&q, nl, &m->size) != 0 || q != nl)
        goto bad;
    } else if (nl - p > 5 && memcmp(p, "done ", 5) == 0 && m->size >= 0) {
      const char *q = p + 5;
      int64_t a, b;
      if (parse_num(&q, nl, &a) != 0 || q >= nl || *q++ != ' ' || parse_num(&q, nl, &b) != 0 ||
          q != nl || a > b || b >= m->size)
        goto bad;
      if (pget_meta_add(m, a, b) != 0)
        goto bad;
    } else {
      goto bad;
    }
    p = nl + 1;
  }
  if (!have_etag || m->etag[0] == '\0' || m->size < 0)
    goto bad;
  return 0;
bad:
  pget_meta_free(m);
  memset(m, 0, sizeof *m);
  m->size = -1;
  return -1;
}

int pget_missing(const pget_meta *m, int64_t size, pget_range **out, size_t *nout) {
  size_t i, k = 0;
  int64_t at = 0;
  pget_range *r = malloc((m->ndone + 1) * sizeof *r);
  *out = NULL;
  *nout = 0;
  if (r == NULL)
    return -1;
  for (i = 0; i < m->ndone && at < size; i++) {
    if (m->done[i].first > at) {
      r[k].first = at;
      r[k].last = (m->done[i].first < size ? m->done[i].first : size) - 1;
      k++;
    }
    if (m->done[i].last + 1 > at)
      at = m->done[i].last + 1;
  }
  if (at < size) {
    r[k].first = at;
    r[k].last = size - 1;
    k++;
  }
  *out = r;
  *nout = k;
  return 0;
}

/* ---- SHA-256 of the part file, in order, as its front fills ------------------------------
 * A thread reads back (from the page cache) what the ranges wrote, up to the point below
 * which every byte is in place, so hashing overlaps the download. */

typedef struct fronthash {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int started, stop, err;
  int fd;
  int64_t ready, hashed;
  EVP_MD_CTX *ctx;
  char *buf;
  pget_write_fn tee; /* the bytes hashed go there too, until it says no */
  void *ud;
} fronthash;

static void *fronthash_main(void *arg) {
  fronthash *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    int64_t from, to;
    while (h->hashed == h->ready && !h->stop && !h->err)
      pthread_cond_wait(&h->cv, &h->mu);
    if (h->err || (h->hashed == h->ready && h->stop))
      break;
    from = h->hashed;
    to = h->ready;
    pthread_mutex_unlock(&h->mu);
    while (from < to) {
      size_t want = (size_t)(to - from < HASH_READ ? to - from : HASH_READ);
      ssize_t got = pread(h->fd, h->buf, want, (off_t)from);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        pthread_mutex_lock(&h->mu);
        h->err = got < 0 ? errno : EIO;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        return NULL;
      }
      EVP_DigestUpdate(h->ctx, h->buf, (size_t)got);
      if (h->tee && h->tee(h->ud, h->buf, (size_t)got) != 0)
        h->tee = NULL;
      from += got;
    }
    pthread_mutex_lock(&h->mu);
    h->hashed = to;
    pthread_cond_broadcast(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static int fronthash_start(fronthash *h, int fd, pget_write_fn tee, void *ud) {
  memset(h, 0, sizeof *h);
  h->fd = fd;
  h->tee = tee;
  h->ud = ud;
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  if ((h->buf = malloc(HASH_READ)) == NULL || (h->ctx = EVP_MD_CTX_new()) == NULL ||
      EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1 ||
      pthread_create(&h->th, NULL, fronthash_main, h) != 0)
    return -1;
  h->started = 1;
  return 0;
}

/* Every byte below `ready` is in the file. */
static void fronthash_advance(fronthash *h, int64_t ready) {
  pthread_mutex_lock(&h->mu);
  if (ready > h->ready) {
    h->ready = ready;
    pthread_cond_broadcast(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
}

/* Waits until every byte below size is hashed; errno-style error or 0. */
static int fronthash_settle(fronthash *h, int64_t size) {
  int err;
  fronthash_advance(h, size);
  pthread_mutex_lock(&h->mu);
  while (h->hashed < size && !h->err)
    pthread_cond_wait(&h->cv, &h->mu);
  err = h->err;
  pthread_mutex_unlock(&h->mu);
  return err;
}

/* Hashes up to size and writes the hex digest; errno-style error or 0. */
static int fronthash_finish(fronthash *h, int64_t size, char *hex) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  int err = fronthash_settle(h, size);
  if (err)
    return err;
  EVP_DigestFinal_ex(h->ctx, d, &len);
  transfer_hex(d, len, hex);
  return 0;
}

static void fronthash_free(fronthash *h) {
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
    h->started = 0;
  }
  EVP_MD_CTX_free(h->ctx);
  free(h->buf);
  h->ctx = NULL;
  h->buf = NULL;
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
}

/* ---- the writer: a thread that puts what arrives into the files --------------------------
 * libcurl's thread only copies each chunk into a slot (with its offset), so receiving and
 * writing into the page cache overlap, as in a single-connection get. Slots are written in
 * the order they were filled: the meta file's lines go through the same queue after the
 * data they describe, and each slot carries the point below which every byte is in the
 * part file once it is written, which is when the hashing may read that far. */

#define WR_SLOTS 16
#define WR_SLOT_SIZE (512u * 1024u)
#define WRITEBACK_STEP (INT64_C(32) << 20)

typedef struct wslot {
  int fd;          /* the part file (pwrite at off) or the meta file (write) */
  int64_t off;
  size_t len;
  int64_t frontier; /* the hashing may read up to here once this slot is written */
  char *buf;
} wslot;

typedef struct writer {
  pthread_mutex_t mu;
  pthread_cond_t data, space;
  pthread_t th;
  int started, stop;
  wslot slot[WR_SLOTS];
  uint64_t head, tail; /* slots handed over, slots written */
  int open;            /* slot head % WR_SLOTS is being filled */
  int part_fd;
  int err;             /* errno of the first failed write; nothing is written after it */
  int64_t unsynced, lo, hi; /* bytes written, and where, since writeback was last started */
  fronthash *fh;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    wslot *sl;
    int err;
    while (w->tail == w->head && !w->stop)
      pthread_cond_wait(&w->data, &w->mu);
    if (w->tail == w->head)
      break;
    sl = &w->slot[w->tail % WR_SLOTS];
    err = w->err;
    pthread_mutex_unlock(&w->mu);
    /* The slot stays put until tail passes it. */
    {
      const char *p = sl->buf;
      size_t left = sl->len;
      int64_t off = sl->off;
      while (left > 0 && err == 0) {
        ssize_t n = sl->fd == w->part_fd ? pwrite(sl->fd, p, left, (off_t)off)
                                         : write(sl->fd, p, left);
        if (n < 0 && errno == EINTR)
          continue;
        if (n <= 0) {
          err = n < 0 ? errno : EIO;
          break;
        }
        p += n;
        left -= (size_t)n;
        off += n;
      }
      if (err == 0 && sl->fd == w->part_fd) {
        if (w->unsynced == 0 || sl->off < w->lo)
          w->lo = sl->off;
        if (w->unsynced == 0 || off > w->hi)
          w->hi = off;
        if ((w->unsynced += (int64_t)sl->len) >= WRITEBACK_STEP) {
          /* start writeback of what was just written, so that the fsync at the end is short */
#ifdef SKAFOS_HAVE_SYNC_FILE_RANGE
          sync_file_range(w->part_fd, (off_t)w->lo, (off_t)(w->hi - w->lo), SYNC_FILE_RANGE_WRITE);
#endif
          w->unsynced = 0;
        }
      }
      if (err == 0 && sl->frontier >= 0)
        fronthash_advance(w->fh, sl->frontier);
    }
    pthread_mutex_lock(&w->mu);
    if (err && !w->err)
      w->err = err;
    w->tail++;
    pthread_cond_broadcast(&w->space);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int writer_start(writer *w, int part_fd, fronthash *fh) {
  int i;
  memset(w, 0, sizeof *w);
  w->part_fd = part_fd;
  w->fh = fh;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->data, NULL);
  pthread_cond_init(&w->space, NULL);
  for (i = 0; i < WR_SLOTS; i++)
    if ((w->slot[i].buf = malloc(WR_SLOT_SIZE)) == NULL)
      return -1;
  if (pthread_create(&w->th, NULL, writer_main, w) != 0)
    return -1;
  w->started = 1;
  return 0;
}

/* Hands the slot being filled to the thread. */
static void writer_publish(writer *w, int64_t frontier) {
  if (!w->open)
    return;
  w->slot[w->head % WR_SLOTS].frontier = frontier;
  w->open = 0;
  pthread_mutex_lock(&w->mu);
  w->head++;
  pthread_cond_broadcast(&w->data);
  pthread_mutex_unlock(&w->mu);
}

/* Opens a new slot for fd at off (waiting while every slot is taken). */
static wslot *writer_take(writer *w, int fd, int64_t off) {
  wslot *sl;
  pthread_mutex_lock(&w->mu);
  while (w->head - w->tail >= WR_SLOTS)
    pthread_cond_wait(&w->space, &w->mu);
  pthread_mutex_unlock(&w->mu);
  sl = &w->slot[w->head % WR_SLOTS];
  sl->fd = fd;
  sl->off = off;
  sl->len = 0;
  sl->frontier = -1;
  w->open = 1;
  return sl;
}

/* Waits until every slot handed over is written; the first write error or 0. */
static int writer_drain(writer *w) {
  int err;
  pthread_mutex_lock(&w->mu);
  while (w->tail != w->head)
    pthread_cond_wait(&w->space, &w->mu);
  err = w->err;
  pthread_mutex_unlock(&w->mu);
  return err;
}

static int writer_error(writer *w) {
  int err;
  pthread_mutex_lock(&w->mu);
  err = w->err;
  pthread_mutex_unlock(&w->mu);
  return err;
}

static void writer_free(writer *w) {
  int i;
  if (w->started) {
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->data);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    w->started = 0;
  }
  for (i = 0; i < WR_SLOTS; i++) {
    free(w->slot[i].buf);
    w->slot[i].buf = NULL;
  }
  pthread_cond_destroy(&w->space);
  pthread_cond_destroy(&w->data);
  pthread_mutex_destroy(&w->mu);
}

/* ---- the transfer ---------------------------------------------------------------------- */

enum { P_TODO, P_ACTIVE, P_DONE };

typedef struct piece {
  int64_t start, end, next; /* [start, end); next: the first byte not yet written */
  int64_t recorded;         /* [start, recorded) is in the meta file */
  int state, tries;
  double not_before;
  /* stream mode: [dlv, next) arrived but waits for the bytes before it, in blk */
  int64_t dlv;
  char **blk;
  size_t nblk, capblk;
} piece;

struct pget;

typedef struct conn {
  struct pget *g;
  CURL *easy;
  struct curl_slist *hdrs;
  int piece; /* index into g->pieces, -1 when idle */
  int probe; /* the first request, which learns the size */
  int in_multi;
  long status;
  char etag[256];
  int64_t cr_first, cr_last, cr_total;
  int accepted; /* the body of this answer goes to the piece */
  int cut;      /* stopped on purpose: its piece was split and it reached the new end */
  int64_t req_end; /* the request asked for bytes up to here (exclusive) */
  int64_t got;  /* body bytes of this answer */
  int paused;   /* stream mode: its bytes would not fit the window */
  double started;
  tbuf errbody;
  char errbuf[CURL_ERROR_SIZE];
  transfer_stash stash;
} conn;

typedef struct pget {
  const pget_conf *c;
  pget_result *r;
  transfer_mux mux;
  conn conns[PGET_MAX_CONNECTIONS];
  int nconns;
  piece *pieces;
  size_t npieces;
  int64_t total;  /* -1 until the probe's answer */
  char etag[256]; /* the object's, for If-Range; "" when storage sent none */
  int single;     /* the server sent the whole object: one connection, no meta */
  int restart;    /* the object changed: start over */
  int handoff;    /* one connection is best: the caller goes on with it */
  int meta_fd;
  fronthash fh;
  writer wr;
  int hashing;
  int64_t kept; /* bytes done before this round */
  /* the ramp: `want` connections, multiplied every window while throughput grows */
  int want, ramped;
  double window, win_start, ttfb;
  int64_t win_bytes;
  double last_rate;
  int64_t probe_size;
  /* stream mode: the object from `from` on goes to the sink in order; pieces[shead] is the
   * first not wholly delivered, and sfront the next byte to deliver */
  int stream;
  int64_t from, sfront, spiece;
  size_t shead;
  char **freeb; /* the pool's free blocks */
  size_t nfree, blocks_used, max_blocks;
  int64_t sbytes; /* bytes held */
} pget;

static void fail(pget *g, const char *code, int retryable, const char *fmt, const char *arg) {
  pget_result *r = g->r;
  if (r->code)
    return;
  r->code = code;
  r->retryable = retryable;
  snprintf(r->msg, sizeof r->msg, fmt, arg);
}

static void fail_errno(pget *g, const char *what, const char *path, int e) {
  char msg[600];
  snprintf(msg, sizeof msg, "cannot %s %s: %s", what, path, strerror(e));
  fail(g, e == ENOSPC || e == EDQUOT ? "NO_SPACE" : "WRITE", 0, "%s", msg);
}

/* ---- meta file writing: our own regular file, opened without following links ---------- */

static int64_t frontier(const pget *g);

static int meta_write(pget *g, const char *s, size_t n) {
  if (g->hashing && n <= WR_SLOT_SIZE) { /* after the data it describes */
    wslot *sl;
    writer_publish(&g->wr, frontier(g));
    sl = writer_take(&g->wr, g->meta_fd, 0);
    memcpy(sl->buf, s, n);
    sl->len = n;
    writer_publish(&g->wr, frontier(g));
    return 0;
  }
  while (n > 0) {
    ssize_t w = write(g->meta_fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      fail_errno(g, "write", g->c->meta, w < 0 ? errno : EIO);
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Starts the meta file afresh (append = 0) or goes on appending to it. */
static int meta_open(pget *g, int append) {
  char msg[600], head[400];
  int unsafe, n;
  g->meta_fd = transfer_open_file(g->c->meta, O_WRONLY | O_CREAT | (append ? O_APPEND : 0),
                                  0644, &unsafe, msg, sizeof msg);
  if (g->meta_fd < 0) {
    if (unsafe)
      fail(g, "UNSAFE_PATH", 0, "%s", msg);
    else
      fail_errno(g, "write", g->c->meta, errno);
    return -1;
  }
  if (append)
    return 0;
  if (ftruncate(g->meta_fd, 0) != 0) {
    fail_errno(g, "write", g->c->meta, errno);
    return -1;
  }
  n = snprintf(head, sizeof head, "skafos-ranges 1\netag %s\nsize %" PRId64 "\n", g->etag,
               g->total);
  return meta_write(g, head, (size_t)n);
}

static int meta_done(pget *g, int64_t first, int64_t last) {
  char line[80];
  int n;
  if (g->meta_fd < 0 || last < first)
    return 0;
  n = snprintf(line, sizeof line, "done %" PRId64 " %" PRId64 "\n", first, last);
  return meta_write(g, line, (size_t)n);
}

static void meta_close(pget *g) {
  if (g->meta_fd >= 0) {
    close(g->meta_fd);
    g->meta_fd = -1;
  }
}

/* ---- pieces ------------------------------------------------------------------------------ */

static int add_piece(pget *g, int64_t start, int64_t end) {
  piece *p = realloc(g->pieces, (g->npieces + 1) * sizeof *p);
  if (p == NULL)
    return -1;
  g->pieces = p;
  p += g->npieces++;
  memset(p, 0, sizeof *p);
  p->start = p->next = p->recorded = p->dlv = start;
  p->end = end;
  p->state = P_TODO;
  return 0;
}

/* Cuts the missing ranges into pieces, in file order: about two per connection, so that
 * few requests wait for a first byte, but no larger than MAX_PIECE, so that the hashing,
 * which goes in order, keeps up (the pieces near the end are split as connections run
 * out of work). */
static int plan(pget *g, const pget_range *miss, size_t nmiss) {
  int64_t left = 0, size;
  size_t i;
  for (i = 0; i < nmiss; i++)
    left += miss[i].last - miss[i].first + 1;
  size = left / (2 * (int64_t)g->c->connections) + 1;
  if (size < MIN_PIECE)
    size = MIN_PIECE;
  if (size > MAX_PIECE)
    size = MAX_PIECE;
  if (g->stream) /* what fits the window with every connection busy */
    size = g->spiece;
  size = (size + 65535) / 65536 * 65536;
  for (i = 0; i < nmiss; i++) {
    int64_t a = miss[i].first, end = miss[i].last + 1;
    while (a < end) {
      int64_t b = end - a > size + size / 2 ? a + size : end; /* no sliver at the end */
      if (add_piece(g, a, b) != 0)
        return -1;
      a = b;
    }
  }
  return 0;
}

/* Gives an idle connection work: the second half of the range with the most bytes still
 * to come (the connection on it stops at the new end). Returns the new piece's index, or
 * -1 when no range is worth splitting. Pieces stay in file order. */
static int split_largest(pget *g) {
  size_t i, best = 0, at;
  int64_t most = 0, mid;
  int k;
  piece *p;
  for (i = 0; i < g->npieces; i++) {
    p = &g->pieces[i];
    if (p->state == P_ACTIVE && p->end - p->next > most) {
      most = p->end - p->next;
      best = i;
    }
  }
  if (most < MIN_SPLIT)
    return -1;
  mid = (g->pieces[best].next + most / 2 + 65535) / 65536 * 65536;
  if (add_piece(g, 0, 0) != 0)
    return -1;
  at = best + 1;
  memmove(&g->pieces[at + 1], &g->pieces[at], (g->npieces - 1 - at) * sizeof *g->pieces);
  for (k = 0; k < g->nconns; k++)
    if (g->conns[k].piece >= (int)at)
      g->conns[k].piece++;
  p = &g->pieces[at];
  memset(p, 0, sizeof *p);
  p->start = p->next = p->recorded = p->dlv = mid;
  p->end = g->pieces[best].end;
  p->state = P_TODO;
  g->pieces[best].end = mid;
  return (int)at;
}

/* Bytes in place: kept from before plus what every piece has written. */
static int64_t done_bytes(const pget *g) {
  int64_t n = g->kept;
  size_t i;
  for (i = 0; i < g->npieces; i++)
    n += g->pieces[i].next - g->pieces[i].start;
  return n;
}

/* The offset below which every byte is in the file: pieces are in file order, and the
 * gaps between them were done before. */
static int64_t frontier(const pget *g) {
  size_t i;
  for (i = 0; i < g->npieces; i++) {
    const piece *p = &g->pieces[i];
    if (p->state != P_DONE)
      return p->next;
  }
  return g->total;
}

/* ---- stream mode: in order to the sink, through a bounded window ------------------------
 * The piece at the point delivered (pieces[shead]) goes straight to the sink as it
 * arrives; the bytes of pieces ahead of it wait in blocks from a pool of max_blocks, and a
 * connection whose bytes would not fit is paused (CURL_WRITEFUNC_PAUSE: libcurl keeps them
 * and reads no more) until the point moves and frees blocks. */

static int deliver(pget *g, const char *p, size_t n) {
  if (g->c->sink_write(g->c->ud, p, n) != 0) {
    fail(g, "SINK", 0, "%s", "the sink refused the bytes");
    return -1;
  }
  g->sfront += (int64_t)n;
  return 0;
}

static int64_t blocks_for(int64_t bytes) { return (bytes + SBLOCK - 1) / SBLOCK; }

/* Blocks more that n bytes held after p's would take. */
static size_t hold_need(const piece *p, size_t n) {
  int64_t len = p->next - p->dlv;
  return (size_t)(blocks_for(len + (int64_t)n) - blocks_for(len));
}

/* Holds n bytes after p's (hold_need of them are free in the pool). -1: no memory. */
static int hold(pget *g, piece *p, const char *data, size_t n) {
  while (n > 0) {
    size_t used = (size_t)((p->next - p->dlv) % SBLOCK), c;
    if (used == 0) {
      char *b;
      if (p->nblk == p->capblk) {
        size_t cap = p->capblk ? 2 * p->capblk : 16;
        char **nb = realloc(p->blk, cap * sizeof *nb);
        if (nb == NULL)
          return -1;
        p->blk = nb;
        p->capblk = cap;
      }
      if ((b = g->nfree > 0 ? g->freeb[--g->nfree] : malloc(SBLOCK)) == NULL)
        return -1;
      p->blk[p->nblk++] = b;
      g->blocks_used++;
    }
    c = SBLOCK - used;
    if (c > n)
      c = n;
    memcpy(p->blk[p->nblk - 1] + used, data, c);
    data += c;
    n -= c;
    p->next += (int64_t)c;
    g->sbytes += (int64_t)c;
  }
  if (g->sbytes > g->r->buffered_peak)
    g->r->buffered_peak = g->sbytes;
  return 0;
}

/* Gives p's blocks back to the pool, delivering what they hold first when `send`. */
static int release(pget *g, piece *p, int send) {
  int64_t left = p->next - p->dlv;
  size_t i;
  int rc = 0;
  for (i = 0; i < p->nblk; i++) {
    size_t c = left < (int64_t)SBLOCK ? (size_t)left : SBLOCK;
    if (send && rc == 0 && deliver(g, p->blk[i], c) != 0)
      rc = -1;
    left -= (int64_t)c;
    if (g->nfree < g->max_blocks) /* always, while the window holds */
      g->freeb[g->nfree++] = p->blk[i];
    else
      free(p->blk[i]);
    g->blocks_used--;
  }
  g->sbytes -= p->next - p->dlv;
  p->nblk = 0;
  if (send)
    p->dlv = p->next;
  else
    p->next = p->dlv; /* forgotten: to be fetched again */
  return rc;
}

/* Delivers what the point has reached: the held bytes of the piece there, and of every
 * piece after it that is complete. */
static void stream_flush(pget *g) {
  while (g->shead < g->npieces && !g->r->code) {
    piece *p = &g->pieces[g->shead];
    if (p->nblk > 0 && release(g, p, 1) != 0)
      return;
    if (p->state != P_DONE || p->dlv != p->end)
      return;
    free(p->blk);
    p->blk = NULL;
    p->capblk = 0;
    g->shead++;
  }
}

/* Lets paused connections go on, nearest the point first: the one at the point always,
 * the others while one receive buffer's worth of blocks is free. */
static void stream_unpause(pget *g) {
  for (;;) {
    conn *best = NULL;
    int i;
    size_t room;
    for (i = 0; i < g->nconns; i++) {
      conn *k = &g->conns[i];
      if (k->paused && k->in_multi && (best == NULL || k->piece < best->piece))
        best = k;
    }
    if (best == NULL)
      return;
    room = (size_t)((best == &g->conns[0] ? TRANSFER_BUFSIZE : STREAM_BUFSIZE) / SBLOCK + 1);
    if (best->piece != (int)g->shead && g->blocks_used + room > g->max_blocks)
      return;
    best->paused = 0;
    /* may call conn_write at once with what libcurl kept, which may pause it again */
    curl_easy_pause(best->easy, CURLPAUSE_CONT);
    if (best->paused || g->r->code)
      return;
  }
}

/* ---- libcurl callbacks: C only, errors stashed in the conn or g->r ----------------------- */

/* The answer's headers are in: decide where its body goes. Returns 0 to abort. */
static int accept_answer(conn *k) {
  pget *g = k->g;
  piece *p = k->piece >= 0 ? &g->pieces[k->piece] : NULL;
  if (k->probe && g->total < 0) {
    curl_off_t cl = -1;
    int64_t want_last = g->from + g->probe_size;
    if (k->status == 200) { /* no ranges here: this body is the whole object */
      curl_easy_getinfo(k->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
      g->single = 1;
      g->total = cl >= 0 ? (int64_t)cl : -1;
      snprintf(g->etag, sizeof g->etag, "%s", k->etag);
      g->from = g->sfront = g->kept = g->r->resumed = 0; /* the whole object, from byte 0 */
      if (add_piece(g, 0, cl >= 0 ? (int64_t)cl : INT64_MAX) != 0)
        return 0;
      k->piece = 0;
      g->pieces[0].state = P_ACTIVE;
      if (g->stream) {
        if (g->c->sink_start(g->c->ud, 0, g->etag) != 0) {
          fail(g, "SINK", 0, "%s", "the sink cannot start");
          return 0;
        }
      } else {
        unlink(g->c->meta); /* nothing to resume by range */
      }
      k->accepted = 1;
      return 1;
    }
    if (k->status == 416 && g->from > 0) {
      g->restart = 1; /* what the sink has does not fit the object: it changed */
      return 0;
    }
    if (k->status == 416 && k->cr_total == 0 && k->cr_first < 0) {
      g->total = 0; /* an empty object has no byte 0 to ask for */
      snprintf(g->etag, sizeof g->etag, "%s", k->etag);
      if (g->stream && g->c->sink_start(g->c->ud, 0, g->etag) != 0) {
        fail(g, "SINK", 0, "%s", "the sink cannot start");
        return 0;
      }
      return 1;
    }
    if (k->status != 206)
      return 1; /* an error answer: its body is kept for the message */
    if (k->cr_first != g->from || k->cr_total < 0 || k->cr_last < 0 ||
        k->cr_last != (k->cr_total < want_last ? k->cr_total : want_last) - 1) {
      transfer_stash_set(&k->stash, "RANGE", "%s",
                         "storage answered the first range with another one");
      return 0;
    }
    if (g->from > 0 && strcmp(k->etag, g->c->stream_etag ? g->c->stream_etag : "") != 0) {
      g->restart = 1; /* a range of another object than the one the sink has */
      return 0;
    }
    g->total = k->cr_total;
    snprintf(g->etag, sizeof g->etag, "%s", k->etag);
    if (add_piece(g, g->from, k->cr_last + 1) != 0)
      return 0;
    if (k->cr_last + 1 < g->total) {
      pget_range rest;
      rest.first = k->cr_last + 1;
      rest.last = g->total - 1;
      if (plan(g, &rest, 1) != 0)
        return 0;
    }
    k->req_end = k->cr_last + 1;
    g->ttfb = transfer_now() - k->started;
    k->piece = 0;
    g->pieces[0].state = P_ACTIVE;
    /* Without an ETag there is no If-Range: the rest comes over this one connection,
     * and there is nothing to resume from. */
    if (g->stream) {
      if (g->c->sink_start(g->c->ud, g->from, g->etag) != 0) {
        fail(g, "SINK", 0, "%s", "the sink cannot start");
        return 0;
      }
    } else if (g->etag[0] && meta_open(g, 0) != 0) {
      return 0;
    }
    k->accepted = 1;
    return 1;
  }
  if (p == NULL)
    return 1;
  if (k->status == 200 || k->status == 416 ||
      (k->status == 206 && ((k->cr_total >= 0 && k->cr_total != g->total) ||
                            (g->etag[0] && k->etag[0] && strcmp(k->etag, g->etag) != 0)))) {
    g->restart = 1; /* If-Range failed, or the size or ETag moved: the object changed */
    return 0;
  }
  if (k->status != 206)
    return 1;
  if (g->ttfb == 0)
    g->ttfb = transfer_now() - k->started;
  if (k->cr_first != p->next || k->cr_last != k->req_end - 1) {
    transfer_stash_set(&k->stash, "RANGE", "%s",
                       "storage answered another range than the one asked for");
    return 0;
  }
  k->accepted = 1;
  return 1;
}

static size_t conn_header(char *data, size_t size, size_t nitems, void *ud) {
  conn *k = ud;
  size_t n = size * nitems, vlen;
  char name[64];
  const char *v;
  int st = transfer_status_line(data, n);
  if (st > 0) {
    k->status = st;
    k->etag[0] = '\0';
    k->cr_first = k->cr_last = k->cr_total = -1;
    k->accepted = 0;
    tbuf_reset(&k->errbody);
    return n;
  }
  if (transfer_header_split(data, n, name, sizeof name, &v, &vlen) == 0) {
    if (strcmp(name, "etag") == 0 && vlen < sizeof k->etag) {
      memcpy(k->etag, v, vlen);
      k->etag[vlen] = '\0';
    } else if (strcmp(name, "content-range") == 0) {
      transfer_content_range(v, vlen, &k->cr_first, &k->cr_last, &k->cr_total);
    }
    return n;
  }
  if (n <= 2 && (data[0] == '\r' || data[0] == '\n') && k->status >= 200)
    return accept_answer(k) ? n : 0;
  return n;
}

static size_t conn_write(char *data, size_t size, size_t nitems, void *ud) {
  conn *k = ud;
  pget *g = k->g;
  size_t n = size * nitems, left = n;
  piece *p;
  if (!k->accepted) {
    if (tbuf_add(&k->errbody, data, n) != 0) {
      transfer_stash_set(&k->stash, "NO_MEMORY", "%s", "out of memory for an error body");
      return 0;
    }
    return n;
  }
  p = &g->pieces[k->piece];
  if ((int64_t)left > p->end - p->next) {
    if (k->req_end <= p->end) {
      transfer_stash_set(&k->stash, "RANGE", "%s",
                         "storage sent more bytes than the range asked for");
      return 0;
    }
    left = (size_t)(p->end - p->next); /* split meanwhile: the rest is another's */
  }
  if (g->stream) {
    if (k->piece == (int)g->shead && p->dlv == p->next) { /* at the point: to the sink */
      if (deliver(g, data, left) != 0)
        return 0;
      p->dlv += (int64_t)left;
      p->next += (int64_t)left;
    } else if (g->blocks_used + hold_need(p, left) > g->max_blocks) {
      k->paused = 1; /* libcurl keeps these bytes and hands them over again */
      return CURL_WRITEFUNC_PAUSE;
    } else if (hold(g, p, data, left) != 0) {
      transfer_stash_set(&k->stash, "NO_MEMORY", "%s", "out of memory for the window");
      return 0;
    }
    k->got += (int64_t)left;
    g->win_bytes += (int64_t)left;
    if (p->next == p->end && k->req_end > p->end) {
      k->cut = 1;
      return 0;
    }
    return n;
  }
  /* Into the writer's slots (a slot continuing at this offset takes more); the bytes
   * count as received (p->next) only once they are in a slot. */
  while (left > 0) {
    wslot *sl = &g->wr.slot[g->wr.head % WR_SLOTS];
    size_t c;
    if (!g->wr.open || sl->fd != g->c->fd || sl->off + (int64_t)sl->len != p->next ||
        sl->len == WR_SLOT_SIZE) {
      writer_publish(&g->wr, frontier(g));
      sl = writer_take(&g->wr, g->c->fd, p->next);
    }
    c = WR_SLOT_SIZE - sl->len;
    if (c > left)
      c = left;
    memcpy(sl->buf + sl->len, data, c);
    sl->len += c;
    data += c;
    left -= c;
    p->next += (int64_t)c;
    k->got += (int64_t)c;
    g->win_bytes += (int64_t)c;
  }
  if (p->next - p->recorded >= RECORD_STEP) {
    if (meta_done(g, p->recorded, p->next - 1) != 0)
      return 0;
    p->recorded = p->next;
  }
  if (p->next == p->end && k->req_end > p->end) {
    k->cut = 1; /* its end moved: stop this request here (the connection goes) */
    return 0;
  }
  return n;
}

/* ---- connections ------------------------------------------------------------------------ */

static struct curl_slist *append(struct curl_slist *l, const char *s) {
  struct curl_slist *n = curl_slist_append(l, s);
  if (n == NULL)
    curl_slist_free_all(l);
  return n;
}

/* Starts connection k on piece i (or the probe when i < 0). Returns 0 or -1 (failed). */
static int conn_start(pget *g, int ki, int i) {
  conn *k = &g->conns[ki];
  const struct curl_slist *h;
  char line[400];
  CURLcode rc;
  if (k->easy == NULL) {
    k->g = g;
    tbuf_init(&k->errbody, 64u * 1024u);
    if ((k->easy = curl_easy_init()) == NULL) {
      fail(g, "NO_MEMORY", 0, "%s", "cannot set up a connection");
      return -1;
    }
  }
  curl_easy_reset(k->easy);
  curl_slist_free_all(k->hdrs);
  k->hdrs = NULL;
  k->piece = i;
  k->probe = i < 0;
  k->status = 0;
  k->accepted = 0;
  k->cut = 0;
  k->got = 0;
  k->req_end = -1;
  k->started = transfer_now();
  k->stash.code = NULL;
  tbuf_reset(&k->errbody);
  for (h = g->c->headers; h; h = h->next)
    if ((k->hdrs = append(k->hdrs, h->data)) == NULL)
      goto oom;
  if (i < 0) {
    snprintf(line, sizeof line, "Range: bytes=%" PRId64 "-%" PRId64, g->from,
             g->from + g->probe_size - 1);
  } else {
    piece *p = &g->pieces[i];
    snprintf(line, sizeof line, "Range: bytes=%" PRId64 "-%" PRId64, p->next, p->end - 1);
    k->req_end = p->end;
    p->state = P_ACTIVE;
    p->tries++;
  }
  if ((k->hdrs = append(k->hdrs, line)) == NULL)
    goto oom;
  if (i >= 0 && g->etag[0]) {
    snprintf(line, sizeof line, "If-Range: %s", g->etag);
    if ((k->hdrs = append(k->hdrs, line)) == NULL)
      goto oom;
  } else if (i < 0 && g->from > 0 && g->c->stream_etag && g->c->stream_etag[0]) {
    snprintf(line, sizeof line, "If-Range: %s", g->c->stream_etag);
    if ((k->hdrs = append(k->hdrs, line)) == NULL)
      goto oom;
  }
  k->paused = 0;
  rc = g->c->setup(g->c->ud, k->easy, k->errbuf);
  if (rc == CURLE_OK && g->stream && ki > 0) /* the window bounds memory, not N buffers */
    rc = curl_easy_setopt(k->easy, CURLOPT_BUFFERSIZE, STREAM_BUFSIZE);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(k->easy, CURLOPT_HEADERFUNCTION, conn_header);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(k->easy, CURLOPT_HEADERDATA, k);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(k->easy, CURLOPT_WRITEFUNCTION, conn_write);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(k->easy, CURLOPT_WRITEDATA, k);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(k->easy, CURLOPT_HTTPHEADER, k->hdrs);
  if (rc != CURLE_OK || transfer_mux_add(&g->mux, k->easy) != CURLM_OK) {
    fail(g, "CURL", 0, "cannot start a request: %s", curl_easy_strerror(rc));
    return -1;
  }
  k->in_multi = 1;
  g->r->requests++;
  return 0;
oom:
  fail(g, "NO_MEMORY", 0, "%s", "out of memory for request headers");
  return -1;
}

static void conn_stop(pget *g, conn *k) {
  if (k->in_multi) {
    transfer_mux_remove(&g->mux, k->easy);
    k->in_multi = 0;
  }
  k->paused = 0;
}

/* A piece's request ended without the piece: try it again later, alone, or give up. */
static void retry_piece(pget *g, piece *p, const char *code, int retryable, const char *msg) {
  double wait;
  /* A whole body (no ranges) cannot go on where it stopped, and an object that one
   * request fetches is the caller's to retry under its policy (which may wait, or ask for
   * a fresh URL), as a single-connection get would be: the next get resumes from the
   * meta file. */
  if (!retryable || p->tries >= MAX_TRIES || g->single || g->npieces == 1) {
    fail(g, code, retryable, "%s", msg);
    return;
  }
  p->state = P_TODO;
  wait = 0.25 * (double)(1 << (p->tries - 1));
  p->not_before = transfer_now() + (wait > 4 ? 4 : wait);
}

/* A request finished (rc). */
static void conn_done(pget *g, conn *k, CURLcode rc) {
  piece *p = k->piece >= 0 ? &g->pieces[k->piece] : NULL;
  char msg[CURL_ERROR_SIZE + 768];
  int retryable = 0;
  conn_stop(g, k);
  k->piece = -1;
  if (g->restart || g->r->code)
    return;
  if (k->cut && p && p->next == p->end)
    rc = CURLE_OK; /* stopped on purpose at its piece's new end */
  if (k->stash.code) {
    if (p)
      p->state = P_TODO;
    fail(g, k->stash.code, 0, "%s", k->stash.msg);
    return;
  }
  if (rc != CURLE_OK) {
    const char *code = transfer_curl_failure(k->easy, rc, k->errbuf, g->c->topts, &retryable,
                                             msg, sizeof msg);
    g->r->curl_code = rc;
    if (p == NULL) { /* the probe failed before its answer: the whole get did */
      fail(g, code, retryable, "%s", msg);
      return;
    }
    retry_piece(g, p, code, retryable, msg);
    return;
  }
  if (p == NULL && k->probe && g->total == 0)
    return; /* an empty object: the probe's 416 said so */
  if (p == NULL || !k->accepted) {
    long st = k->status;
    const char *code = transfer_status_code(st, &retryable);
    curl_off_t ra = 0;
    if (p && retryable && p->tries < MAX_TRIES) {
      snprintf(msg, sizeof msg, "storage answered HTTP %ld", st);
      retry_piece(g, p, code, retryable, msg);
      return;
    }
    /* an answer the caller explains (S3's XML error): hand it over */
    g->r->http_status = st;
    curl_easy_getinfo(k->easy, CURLINFO_RETRY_AFTER, &ra);
    g->r->retry_after = ra;
    tbuf_reset(&g->r->errbody);
    if (k->errbody.n)
      tbuf_add(&g->r->errbody, k->errbody.p, k->errbody.n);
    fail(g, code, retryable, "storage answered HTTP %s", st == 0 ? "nothing" : "an error");
    if (p)
      p->state = P_TODO;
    return;
  }
  if (g->single && g->total < 0) { /* a whole body of unannounced length: it ended here */
    g->total = p->next;
    p->end = p->next;
  }
  if (p->next == p->end) {
    p->state = P_DONE;
    meta_done(g, p->recorded, p->end - 1);
    p->recorded = p->end;
    if (k->probe && !g->ramped && g->want == 1 && g->npieces > 1 && !g->single && g->etag[0]) {
      /* The first range came faster than more connections could be used: the rest goes
       * as a single-connection get, which hashes from memory rather than reading back. */
      double t = transfer_now() - k->started - g->ttfb;
      double rate = t > 0 ? (double)(p->end - p->start) / t : RAMP_FAST_LINK;
      if ((rate >= RAMP_FAST_LINK || (rate >= RAMP_NEAR_LINK && g->ttfb <= RAMP_NEAR)) &&
          g->stream) {
        /* the rest as one range on this one connection (none of it started yet) */
        g->pieces[1].end = g->total;
        g->npieces = 2;
        g->ramped = 1;
      } else if (rate >= RAMP_FAST_LINK || (rate >= RAMP_NEAR_LINK && g->ttfb <= RAMP_NEAR)) {
        g->handoff = 1;
      }
    }
    return;
  }
  snprintf(msg, sizeof msg, "storage sent %" PRId64 " bytes of a %" PRId64 "-byte range",
           k->got, k->got + (p->end - p->next));
  retry_piece(g, p, "TRUNCATED", 1, msg);
}

/* The next piece to start (waiting ones whose time has come), or -1. *wake: the soonest
 * time a waiting one may go. */
static int next_piece(pget *g, double now, double *wake) {
  size_t i;
  for (i = 0; i < g->npieces; i++) {
    piece *p = &g->pieces[i];
    if (p->state != P_TODO)
      continue;
    if (p->not_before <= now)
      return (int)i;
    if (*wake == 0 || p->not_before < *wake)
      *wake = p->not_before;
  }
  return -1;
}

static int all_done(const pget *g) {
  size_t i;
  if (g->total < 0 || (g->stream && g->shead < g->npieces))
    return 0;
  for (i = 0; i < g->npieces; i++)
    if (g->pieces[i].state != P_DONE)
      return 0;
  return 1;
}

static int active_count(const pget *g) {
  int i, n = 0;
  for (i = 0; i < g->nconns; i++)
    n += g->conns[i].in_multi;
  return n;
}

/* Stream mode: the piece at the point must not wait for a connection while all of them
 * fetch pieces ahead (which could fill the window and pause for good): the one furthest
 * ahead gives its connection up, keeping what it holds, and takes its turn again later. */
static void stream_head_first(pget *g, double now, int limit) {
  piece *h;
  int i, far = -1;
  if (g->shead >= g->npieces)
    return;
  h = &g->pieces[g->shead];
  if (h->state != P_TODO || h->not_before > now)
    return;
  for (i = 0; i < limit && i < g->nconns; i++) {
    conn *k = &g->conns[i];
    if (!k->in_multi)
      return; /* a free connection takes it anyway */
    if (k->piece > (int)g->shead && (far < 0 || k->piece > g->conns[far].piece))
      far = i;
  }
  if (far < 0)
    return;
  {
    conn *k = &g->conns[far];
    piece *p = &g->pieces[k->piece];
    conn_stop(g, k);
    p->state = P_TODO;
    p->tries--; /* not its failure */
    k->piece = -1;
    conn_start(g, far, (int)g->shead);
  }
}

/* Tears down the round's requests and pieces. */
static void round_end(pget *g) {
  int i;
  size_t j;
  for (i = 0; i < g->nconns; i++)
    conn_stop(g, &g->conns[i]);
  for (j = 0; j < g->npieces; j++) {
    if (g->pieces[j].nblk)
      release(g, &g->pieces[j], 0);
    free(g->pieces[j].blk);
  }
  if (g->hashing) {
    writer_publish(&g->wr, -1);
    writer_drain(&g->wr);
    writer_free(&g->wr);
    fronthash_free(&g->fh);
    g->hashing = 0;
  }
  free(g->pieces);
  g->pieces = NULL;
  g->npieces = 0;
  meta_close(g);
}

/* The ramp, like a congestion window: once bytes flow, the throughput of each window
 * (long enough for new connections to get their first byte) is compared with that of the
 * one before; the number of connections is multiplied by four while it grows by RAMP_GAIN
 * (1, 4, 16, ... up to the limit: on a link that limits each connection, every step pays
 * about fourfold), and goes back to what it was when it did not. A first range that came
 * faster than RAMP_FAST_LINK stays on its one connection (conn_done). */
static void ramp(pget *g, double now) {
  double rate;
  if (g->ramped || g->single || !g->etag[0] || g->total < 0)
    return;
  if (g->win_start == 0) {
    if (g->win_bytes > 0) { /* the first bytes are in: the first window opens */
      g->window = 2 * g->ttfb + 0.05;
      if (g->window < RAMP_MIN_WINDOW)
        g->window = RAMP_MIN_WINDOW;
      g->win_start = now;
      g->win_bytes = 0;
    }
    return;
  }
  if (now - g->win_start < g->window)
    return;
  rate = (double)g->win_bytes / (now - g->win_start);
  if (g->last_rate == 0 && rate >= RAMP_FAST_LINK) {
    g->ramped = 1; /* stay on one */
  } else if (g->last_rate > 0 && rate < g->last_rate * RAMP_GAIN) {
    g->want /= 2;
    g->ramped = 1;
  } else if (g->want >= g->c->connections) {
    g->ramped = 1;
  } else {
    g->last_rate = rate;
    g->want = g->want * 4 < g->c->connections ? g->want * 4 : g->c->connections;
  }
  g->win_start = now;
  g->win_bytes = 0;
}

/* After a failure: make what arrived durable and note its ranges, for the next run. */
static void keep_progress(pget *g) {
  size_t i;
  if (g->meta_fd < 0 || g->single || !g->hashing)
    return;
  writer_publish(&g->wr, -1);
  if (writer_drain(&g->wr) != 0)
    return; /* what did not reach the file is not claimed */
  fsync(g->c->fd);
  for (i = 0; i < g->npieces; i++) {
    piece *p = &g->pieces[i];
    if (p->state != P_DONE && p->next > p->recorded)
      meta_done(g, p->recorded, p->next - 1);
  }
  writer_publish(&g->wr, -1);
  if (writer_drain(&g->wr) == 0)
    fsync(g->meta_fd);
}

/* One round: from what `resume` says is done (or from nothing), until the object is whole,
 * the get fails, or the object changes (g->restart). */
static int run_round(pget *g, const pget_meta *resume) {
  double next_tick = transfer_now() + TICK_INTERVAL;
  const pget_conf *c = g->c;
  g->total = -1;
  g->single = 0;
  g->restart = 0;
  g->handoff = 0;
  g->kept = 0;
  g->etag[0] = '\0';
  g->want = c->no_ramp ? c->connections : 1;
  g->ramped = c->connections <= 1 || c->no_ramp;
  g->win_start = g->ttfb = g->last_rate = 0;
  g->win_bytes = 0;
  g->sfront = g->kept = g->r->resumed = g->from;
  g->shead = 0;
  if (!g->stream) {
    g->hashing = 1; /* from here round_end stops both threads */
    if (fronthash_start(&g->fh, c->fd, c->tee, c->ud) != 0 ||
        writer_start(&g->wr, c->fd, &g->fh) != 0) {
      fail(g, "NO_MEMORY", 0, "%s", "cannot start the writing and hashing threads");
      return -1;
    }
  }
  if (resume && !g->stream) {
    pget_range *miss;
    size_t nmiss, i;
    g->total = resume->size;
    snprintf(g->etag, sizeof g->etag, "%s", resume->etag);
    if (pget_missing(resume, resume->size, &miss, &nmiss) != 0) {
      fail(g, "NO_MEMORY", 0, "%s", "out of memory");
      return -1;
    }
    g->kept = g->total;
    for (i = 0; i < nmiss; i++)
      g->kept -= miss[i].last - miss[i].first + 1;
    g->r->resumed = g->kept;
    i = (size_t)plan(g, miss, nmiss);
    free(miss);
    if (i != 0) {
      fail(g, "NO_MEMORY", 0, "%s", "out of memory");
      return -1;
    }
    /* Written afresh rather than appended to: a line cut short by a kill would spoil
     * the next one. */
    if (meta_open(g, 0) != 0)
      return -1;
    for (i = 0; i < resume->ndone; i++)
      if (meta_done(g, resume->done[i].first, resume->done[i].last) != 0)
        return -1;
  } else {
    g->nconns = g->nconns < 1 ? 1 : g->nconns;
    if (conn_start(g, 0, -1) != 0)
      return -1;
  }
  for (;;) {
    int i;
    double now = transfer_now(), wake = 0;
    long wait_ms = 100;
    CURL *done_easy;
    CURLcode done_rc;
    /* Idle connections take the next pieces, else half of the largest range to come;
     * new ones open up to what the ramp allows. */
    if (g->total >= 0 && !g->single && !g->r->code && !g->restart) {
      int limit = g->etag[0] ? g->want : 1;
      for (i = 0; i < limit; i++) {
        int pi;
        if (i < g->nconns && g->conns[i].in_multi)
          continue;
        if ((pi = next_piece(g, now, &wake)) < 0 && (pi = split_largest(g)) < 0)
          break;
        if (i >= g->nconns)
          g->nconns = i + 1;
        if (conn_start(g, i, pi) != 0)
          break;
      }
      if (g->stream && !g->r->code)
        stream_head_first(g, now, limit);
    }
    if (active_count(g) > g->r->connections)
      g->r->connections = active_count(g);
    if (transfer_mux_perform(&g->mux) != CURLM_OK)
      fail(g, "CURL", 1, "%s", "the transfer engine failed");
    while (transfer_mux_done(&g->mux, &done_easy, &done_rc)) {
      wait_ms = 0; /* a connection is free: give it work now, not after a poll */
      for (i = 0; i < g->nconns; i++) {
        if (g->conns[i].easy == done_easy && g->conns[i].in_multi) {
          conn_done(g, &g->conns[i], done_rc);
          break;
        }
      }
    }
    if (g->stream) {
      stream_flush(g);
      stream_unpause(g);
    } else {
      /* What arrived goes to the writer now, not when a slot fills. */
      writer_publish(&g->wr, g->total >= 0 ? frontier(g) : -1);
      {
        int e = writer_error(&g->wr);
        if (e)
          fail_errno(g, "write", c->part, e);
      }
    }
    ramp(g, now);
    if (g->r->code || g->restart || g->handoff)
      break;
    if (all_done(g))
      break;
    if (c->topts->interrupted && c->topts->interrupted()) {
      fail(g, "INTERRUPTED", 0, "%s", "interrupted");
      g->r->curl_code = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    if (c->tick && transfer_now() >= next_tick) {
      if (c->tick(c->ud, done_bytes(g), g->total)) {
        fail(g, "ABORTED", 0, "%s", "aborted");
        g->r->curl_code = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      next_tick = transfer_now() + TICK_INTERVAL;
    }
    if (active_count(g) == 0 && wake == 0 && g->total >= 0 && next_piece(g, now, &wake) < 0 &&
        wake == 0) {
      fail(g, "CURL", 1, "%s", "no request is running and none is left to start");
      break;
    }
    if (wake > 0) {
      long w = (long)((wake - now) * 1000) + 1;
      if (w < wait_ms)
        wait_ms = w;
    }
    if (transfer_mux_wait(&g->mux, wait_ms) != CURLM_OK)
      fail(g, "CURL", 1, "%s", "the transfer engine failed");
  }
  if (g->handoff && !g->r->code)
    return 2;
  if (g->restart && !g->r->code)
    return 1;
  if (g->r->code) {
    keep_progress(g);
    return -1;
  }
  return 0;
}

int pget_run(const pget_conf *c, pget_result *r) {
  pget g;
  int restarts = 0, rc, i;
  const pget_meta *resume = c->resume;
  memset(r, 0, sizeof *r);
  tbuf_init(&r->errbody, 64u * 1024u);
  memset(&g, 0, sizeof g);
  g.c = c;
  g.r = r;
  g.meta_fd = -1;
  g.probe_size = PROBE_SIZE;
  if (c->sink_write) {
    int64_t w = c->window > 0 ? c->window : PGET_STREAM_WINDOW;
    g.stream = 1;
    g.from = c->stream_from > 0 ? c->stream_from : 0;
    g.max_blocks = (size_t)(w / SBLOCK < 4 ? 4 : w / SBLOCK);
    r->window = (int64_t)g.max_blocks * SBLOCK;
    /* about what the connections fill while the point crosses one piece (see README) */
    g.spiece = c->piece > 0 ? c->piece : 2 * r->window / (c->connections > 1 ? c->connections : 2);
    if (g.spiece < STREAM_MIN_PIECE)
      g.spiece = STREAM_MIN_PIECE;
    if (g.spiece > STREAM_MAX_PIECE)
      g.spiece = STREAM_MAX_PIECE;
    if (g.probe_size > r->window / 2)
      g.probe_size = r->window / 2;
    resume = NULL;
    if ((g.freeb = calloc(g.max_blocks, sizeof *g.freeb)) == NULL) {
      fail(&g, "NO_MEMORY", 0, "%s", "cannot set up the transfer");
      return -1;
    }
  }
  /* One TCP connection per request: HTTP/2 would put every range on one of them. */
  if (transfer_mux_open(&g.mux, 1) != 0) {
    free(g.freeb);
    fail(&g, "NO_MEMORY", 0, "%s", "cannot set up the transfer");
    return -1;
  }
  if (!g.stream && !resume && ftruncate(c->fd, 0) != 0)
    fail_errno(&g, "write", c->part, errno);
  for (;;) {
    if (r->code)
      break;
    rc = run_round(&g, resume);
    if (rc == 0 && g.stream) {
      if (g.total < 0)
        g.total = g.sfront;
      r->status = g.single ? 200 : 206;
      r->bytes = g.total;
      snprintf(r->etag, sizeof r->etag, "%s", g.etag);
      break;
    }
    if (rc == 0) {
      int e;
      if (g.total < 0)
        g.total = 0;
      writer_publish(&g.wr, -1);
      if ((e = writer_drain(&g.wr)) != 0) {
        fail_errno(&g, "write", c->part, e);
      } else if (ftruncate(c->fd, (off_t)g.total) != 0) {
        fail_errno(&g, "write", c->part, errno);
      } else if ((e = fronthash_finish(&g.fh, g.total, r->sha256)) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "cannot read back %s: %s", c->part, strerror(e));
        fail(&g, "READ", 0, "%s", msg);
      } else {
        r->status = g.single ? 200 : 206;
        r->bytes = g.total;
        snprintf(r->etag, sizeof r->etag, "%s", g.etag);
      }
      break;
    }
    if (rc < 0)
      break;
    if (rc == 2) {
      /* Only the first range was asked for: it alone is in the part. The meta file gets
       * the bare ETag a single-connection get resumes from. */
      char msg[600];
      int e, unsafe, fd;
      int64_t have = g.pieces[0].end;
      writer_publish(&g.wr, -1);
      if ((e = writer_drain(&g.wr)) != 0 || ftruncate(c->fd, (off_t)have) != 0) {
        fail_errno(&g, "write", c->part, e ? e : errno);
        break;
      }
      meta_close(&g);
      fd = transfer_open_file(c->meta, O_WRONLY | O_CREAT, 0644, &unsafe, msg, sizeof msg);
      if (fd < 0 || ftruncate(fd, 0) != 0 ||
          write(fd, g.etag, strlen(g.etag)) != (ssize_t)strlen(g.etag)) {
        if (fd >= 0)
          close(fd);
        if (fd < 0 && unsafe)
          fail(&g, "UNSAFE_PATH", 0, "%s", msg);
        else
          fail_errno(&g, "write", c->meta, errno);
        break;
      }
      close(fd);
      r->handoff = have;
      /* the digest of those bytes goes along, so that they are not read again (with a
       * tee they are: its reader starts over with the single get) */
      if (!c->tee && fronthash_settle(&g.fh, have) == 0 &&
          (r->front_sha = EVP_MD_CTX_new()) != NULL &&
          EVP_MD_CTX_copy_ex(r->front_sha, g.fh.ctx) != 1) {
        EVP_MD_CTX_free(r->front_sha);
        r->front_sha = NULL;
      }
      break;
    }
    /* The object changed: forget everything (the meta file first, so that a kill now
     * leaves no claim on what goes), then once more from the start. */
    round_end(&g);
    if (++restarts > MAX_RESTARTS) {
      fail(&g, "CHANGED", 1, "%s", "the object kept changing during the download");
      break;
    }
    r->restarted = 1;
    if (g.stream) { /* from byte 0: the sink starts over when the answer says so */
      g.from = 0;
      continue;
    }
    unlink(c->meta);
    if (c->tee_reset)
      c->tee_reset(c->ud);
    if (ftruncate(c->fd, 0) != 0) {
      fail_errno(&g, "write", c->part, errno);
      break;
    }
    r->restarted = 1;
    r->resumed = 0;
    resume = NULL;
  }
  round_end(&g);
  for (i = 0; i < g.nconns; i++) {
    conn *k = &g.conns[i];
    if (k->easy)
      curl_easy_cleanup(k->easy);
    curl_slist_free_all(k->hdrs);
    tbuf_free(&k->errbody);
  }
  transfer_mux_close(&g.mux);
  while (g.nfree > 0)
    free(g.freeb[--g.nfree]);
  free(g.freeb);
  return r->code ? -1 : r->handoff > 0 ? 1 : 0;
}
