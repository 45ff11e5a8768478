/*
 * The one-pass producer of an all-stored archive, for uploads without a temporary file.
 * Its exact size is known before the first byte; it emits the very bytes zw_add would
 * write for the same plan with every entry stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "crc32x.h"
#include "zipwrite.h"

/*
 * CRCs go into the local headers, found by a checksum pass over each file before its
 * header is sent, rather than into data descriptors after the data: a stored entry with
 * a data descriptor cannot be extracted by a reader that works from the front of the
 * stream (it cannot find where the data ends), and some refuse it outright.
 *
 * The pass runs ahead of the stream: zs_new starts two threads that checksum the files
 * in plan order, in pieces of at most CRC_PIECE bytes (a big file's pieces in parallel,
 * joined with crc32_combine), while the caller is still busy elsewhere (creating the
 * version, connecting); later files are done while earlier ones are sent. The stream
 * waits for a file's pieces only when it reaches its header, and computes any piece
 * nobody has taken yet itself. The data are checked against the CRC again while they
 * are sent, so a file changed in between fails the read; that file's CRC is then found
 * again by the next attempt (zs_reset), as is any piece that failed. A piece that fails
 * after a reset but was started before it is not reported: it read the old file.
 */

enum { P_LOCAL, P_DATA, P_CENTRAL, P_END, P_DONE };
enum { PIECE_FREE, PIECE_BUSY, PIECE_DONE, PIECE_FAILED };

#define CRC_PIECE (32u << 20)
#define CRC_BUF (256u << 10) /* per reader: stays in L2 between read and checksum */
#define CRC_WORKERS 2
#define NO_PIECE SIZE_MAX

typedef struct crc_piece {
  size_t item;
  uint64_t off, len;
  uint32_t crc;
  int state; /* PIECE_*, under mu */
  unsigned gen; /* the attempt (zs_reset count) it was started in */
} crc_piece;

struct zs_stream {
  zw_item *items;
  zf_pool strings; /* the items' src and name */
  zf_entry *e;
  unsigned char *crc_known;
  size_t n;
  uint64_t size, cd_offset, cd_size;
  int phase;
  size_t idx;
  unsigned char rec[ZF_HEADER_SLACK + 0x10000];
  size_t reclen, recpos;
  int fd;
  uint64_t datapos;
  uint32_t crc;
  unsigned char *crcbuf; /* the stream's own, for pieces it computes itself */
  /* the checksum pass: item i's pieces are [first[i], first[i + 1]) */
  crc_piece *pieces;
  size_t npieces, *first;
  pthread_mutex_t mu;
  pthread_cond_t ready; /* broadcast when a piece is done or failed */
  size_t next;          /* pieces from here on are free and untouched */
  size_t failed;        /* the lowest failed piece whose error is in fail_err */
  zerr fail_err;
  int stalled; /* a piece failed: the workers take no more */
  unsigned gen; /* attempts so far: zs_reset counts them */
  atomic_int closing;
  pthread_t th[CRC_WORKERS];
  int nthreads, sync_ready;
};

void zs_free(zs_stream *s) {
  int k;
  if (s == NULL)
    return;
  atomic_store(&s->closing, 1);
  for (k = 0; k < s->nthreads; k++)
    pthread_join(s->th[k], NULL);
  if (s->sync_ready) {
    pthread_cond_destroy(&s->ready);
    pthread_mutex_destroy(&s->mu);
  }
  if (s->fd >= 0)
    close(s->fd);
  zf_pool_free(&s->strings);
  free(s->items);
  free(s->e);
  free(s->crc_known);
  free(s->crcbuf);
  free(s->pieces);
  free(s->first);
  free(s);
}

/* The CRC of one piece, read into buf (CRC_BUF bytes). Gives up when the stream closes. */
static int piece_crc(zs_stream *s, const crc_piece *pc, unsigned char *buf, uint32_t *out,
                     zerr *err) {
  const zw_item *it = &s->items[pc->item];
  uint64_t off = pc->off, end = pc->off + pc->len;
  uint32_t crc = 0;
  int fd = zw_open_input(it, err);
  if (fd < 0)
    return -1;
  while (off < end) {
    size_t want = end - off < CRC_BUF ? (size_t)(end - off) : CRC_BUF;
    ssize_t r;
    if (atomic_load(&s->closing)) {
      zerr_set(err, "IO", "the zip stream was closed");
      break;
    }
    r = pread(fd, buf, want, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      if (r < 0)
        zerr_set(err, "IO", "cannot read %s: %s", it->src, strerror(errno));
      else
        zerr_set(err, "IO", "%s changed while being archived", it->src);
      break;
    }
    crc = zcrc32(crc, buf, (size_t)r);
    off += (uint64_t)r;
  }
  close(fd);
  *out = crc;
  return off == end ? 0 : -1;
}

/* Computes piece k, which the caller has just marked busy. Called and returns with mu
 * held; the reading happens without it. */
static void run_piece(zs_stream *s, size_t k, unsigned char *buf) {
  crc_piece *pc = &s->pieces[k];
  uint32_t crc = 0;
  zerr err;
  int rc;
  pc->gen = s->gen;
  pthread_mutex_unlock(&s->mu);
  rc = piece_crc(s, pc, buf, &crc, &err);
  pthread_mutex_lock(&s->mu);
  if (rc == 0) {
    pc->crc = crc;
    pc->state = PIECE_DONE;
  } else if (pc->gen != s->gen) {
    pc->state = PIECE_FREE; /* an earlier attempt's: the next look computes it again */
  } else {
    pc->state = PIECE_FAILED;
    s->stalled = 1;
    if (s->failed == NO_PIECE || k < s->failed) {
      s->failed = k;
      s->fail_err = err;
    }
  }
  pthread_cond_broadcast(&s->ready);
}

static void *crc_worker(void *arg) {
  zs_stream *s = arg;
  unsigned char *buf = malloc(CRC_BUF);
  pthread_mutex_lock(&s->mu);
  while (buf && !s->stalled && s->next < s->npieces && !atomic_load(&s->closing)) {
    size_t k = s->next++;
    s->pieces[k].state = PIECE_BUSY;
    run_piece(s, k, buf);
  }
  pthread_mutex_unlock(&s->mu);
  free(buf);
  return NULL;
}

/* Splits every file still to checksum into pieces and starts the workers; without
 * them (no thread could start) the stream computes every piece itself. */
static int start_pass(zs_stream *s) {
  size_t i, k = 0;
  for (i = 0; i < s->n; i++) {
    if (!s->crc_known[i])
      s->npieces += (size_t)((s->items[i].size + CRC_PIECE - 1) / CRC_PIECE);
  }
  s->first = calloc(s->n + 1, sizeof *s->first);
  s->pieces = calloc(s->npieces ? s->npieces : 1, sizeof *s->pieces);
  if (s->first == NULL || s->pieces == NULL)
    return -1;
  for (i = 0; i < s->n; i++) {
    uint64_t off = 0;
    s->first[i] = k;
    while (!s->crc_known[i] && off < s->items[i].size) {
      crc_piece *pc = &s->pieces[k++];
      pc->item = i;
      pc->off = off;
      pc->len = s->items[i].size - off < CRC_PIECE ? s->items[i].size - off : CRC_PIECE;
      off += pc->len;
    }
  }
  s->first[s->n] = k;
  s->failed = NO_PIECE;
  if (pthread_mutex_init(&s->mu, NULL) != 0)
    return -1;
  if (pthread_cond_init(&s->ready, NULL) != 0) {
    pthread_mutex_destroy(&s->mu);
    return -1;
  }
  s->sync_ready = 1;
  while (s->nthreads < CRC_WORKERS && (size_t)s->nthreads < s->npieces &&
         pthread_create(&s->th[s->nthreads], NULL, crc_worker, s) == 0)
    s->nthreads++;
  return 0;
}

zs_stream *zs_new(const zw_plan *plan, int64_t mtime, zerr *err) {
  zw_plan copy;
  zs_stream *s;
  size_t i;
  zw_plan_init(&copy);
  copy.items = malloc((plan->n ? plan->n : 1) * sizeof *copy.items);
  if (copy.items == NULL)
    goto oom;
  copy.cap = plan->n;
  for (i = 0; i < plan->n; i++) {
    zw_item *it = &copy.items[i];
    *it = plan->items[i];
    it->src = it->src ? zf_pool_put(&copy.strings, it->src, strlen(it->src)) : NULL;
    it->name = zf_pool_put(&copy.strings, it->name, it->namelen);
    copy.n++;
    if ((plan->items[i].src && it->src == NULL) || it->name == NULL)
      goto oom;
  }
  s = zs_take(&copy, mtime, err);
  zw_plan_free(&copy);
  return s;
oom:
  zw_plan_free(&copy);
  zerr_set(err, "NOMEM", "out of memory");
  return NULL;
}

zs_stream *zs_take(zw_plan *plan, int64_t mtime, zerr *err) {
  zs_stream *s = calloc(1, sizeof *s);
  uint16_t dt, dd;
  uint64_t off = 0;
  size_t i;
  if (s == NULL) {
    zw_plan_free(plan);
    goto oom;
  }
  s->fd = -1;
  s->n = plan->n;
  s->items = plan->items; /* the stream owns the items and their names from here on */
  s->strings = plan->strings;
  plan->items = NULL;
  memset(&plan->strings, 0, sizeof plan->strings);
  zw_plan_free(plan);
  s->e = calloc(s->n ? s->n : 1, sizeof *s->e);
  s->crc_known = calloc(s->n ? s->n : 1, 1);
  s->crcbuf = malloc(CRC_BUF);
  if ((s->n && s->items == NULL) || s->e == NULL || s->crc_known == NULL || s->crcbuf == NULL)
    goto oom;
  zf_dostime(mtime >= 0 ? mtime : zf_default_epoch(), &dt, &dd);
  for (i = 0; i < s->n; i++) {
    const zw_item *it = &s->items[i];
    zf_entry *e = &s->e[i];
    e->name = it->name;
    e->namelen = it->namelen;
    e->method = ZF_STORE;
    e->dostime = dt;
    e->dosdate = dd;
    e->mode = it->mode;
    e->usize = e->csize = it->size;
    e->offset = off;
    e->zip64_local = zf_needs_zip64_local(ZF_STORE, it->size);
    e->crc = 0;
    s->crc_known[i] = it->src == NULL || it->size == 0;
    off += zf_local_size(e) + it->size;
  }
  s->cd_offset = off;
  for (i = 0; i < s->n; i++)
    off += zf_central_size(&s->e[i]);
  s->cd_size = off - s->cd_offset;
  s->size = off + zf_end_size(s->n, s->cd_offset, s->cd_size);
  if (start_pass(s) != 0)
    goto oom;
  return s;
oom:
  zerr_set(err, "NOMEM", "out of memory");
  zs_free(s);
  return NULL;
}

uint64_t zs_size(const zs_stream *s) { return s->size; }

/* Makes item i's pieces be computed again (mu held). */
static void forget_item(zs_stream *s, size_t i) {
  size_t k;
  for (k = s->first[i]; k < s->first[i + 1]; k++) {
    if (s->pieces[k].state != PIECE_BUSY)
      s->pieces[k].state = PIECE_FREE;
  }
}

int zs_reset(zs_stream *s, zerr *err) {
  size_t k;
  (void)err;
  pthread_mutex_lock(&s->mu);
  s->gen++;
  for (k = 0; k < s->npieces; k++) {
    if (s->pieces[k].state == PIECE_FAILED)
      s->pieces[k].state = PIECE_FREE;
  }
  s->failed = NO_PIECE;
  pthread_mutex_unlock(&s->mu);
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  s->phase = P_LOCAL;
  s->idx = 0;
  s->reclen = s->recpos = 0;
  return 0;
}

/* Item i's CRC from its pieces: waits for those a worker is on, computes those nobody
 * took. A failed piece is reported once, then computed again by the next attempt. */
static int item_crc(zs_stream *s, size_t i, zerr *err) {
  size_t k, a = s->first[i], b = s->first[i + 1];
  uint32_t crc = 0;
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  for (k = a; k < b && rc == 0; k++) {
    crc_piece *pc = &s->pieces[k];
    while (pc->state != PIECE_DONE && rc == 0) {
      if (pc->state == PIECE_FAILED) {
        pc->state = PIECE_FREE;
        if (s->failed == k) {
          *err = s->fail_err;
          s->failed = NO_PIECE;
          rc = -1;
        }
      } else if (pc->state == PIECE_BUSY) {
        pthread_cond_wait(&s->ready, &s->mu);
      } else {
        if (k >= s->next)
          s->next = k + 1; /* the workers take only later pieces */
        pc->state = PIECE_BUSY;
        run_piece(s, k, s->crcbuf);
      }
    }
    if (rc == 0)
      crc = k == a ? pc->crc : (uint32_t)crc32_combine(crc, pc->crc, (z_off_t)pc->len);
  }
  pthread_mutex_unlock(&s->mu);
  if (rc != 0)
    return -1;
  s->e[i].crc = crc;
  s->crc_known[i] = 1;
  return 0;
}

/* Moves to the next record or data piece; returns -1 on failure. */
static int advance(zs_stream *s, zerr *err) {
  switch (s->phase) {
  case P_LOCAL:
    if (s->idx == s->n) {
      s->phase = P_CENTRAL;
      s->idx = 0;
      return 0;
    }
    if (!s->crc_known[s->idx] && item_crc(s, s->idx, err) != 0)
      return -1;
    s->reclen = zf_local(s->rec, &s->e[s->idx]);
    s->recpos = 0;
    if (s->items[s->idx].size > 0) {
      s->fd = zw_open_input(&s->items[s->idx], err);
      if (s->fd < 0)
        return -1;
      s->phase = P_DATA;
      s->datapos = 0;
      s->crc = 0;
    } else {
      s->idx++;
    }
    return 0;
  case P_DATA: /* the data were sent in full (checked by the caller) */
    close(s->fd);
    s->fd = -1;
    if (s->crc != s->e[s->idx].crc) {
      zerr_set(err, "IO", "%s changed while being archived", s->items[s->idx].src);
      pthread_mutex_lock(&s->mu);
      forget_item(s, s->idx);
      s->crc_known[s->idx] = 0;
      pthread_mutex_unlock(&s->mu);
      return -1;
    }
    s->idx++;
    s->phase = P_LOCAL;
    return 0;
  case P_CENTRAL:
    if (s->idx == s->n) {
      s->reclen = zf_end(s->rec, s->n, s->cd_offset, s->cd_size);
      s->recpos = 0;
      s->phase = P_END;
      return 0;
    }
    s->reclen = zf_central(s->rec, &s->e[s->idx++]);
    s->recpos = 0;
    return 0;
  default:
    s->phase = P_DONE;
    return 0;
  }
}

size_t zs_read(zs_stream *s, unsigned char *buf, size_t n, zerr *err) {
  size_t got = 0;
  while (got < n && s->phase != P_DONE) {
    if (s->recpos < s->reclen) {
      size_t k = s->reclen - s->recpos;
      if (k > n - got)
        k = n - got;
      memcpy(buf + got, s->rec + s->recpos, k);
      s->recpos += k;
      got += k;
      continue;
    }
    if (s->phase == P_DATA && s->datapos < s->items[s->idx].size) {
      uint64_t left = s->items[s->idx].size - s->datapos;
      size_t want = left < (uint64_t)(n - got) ? (size_t)left : n - got;
      ssize_t r = read(s->fd, buf + got, want);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0) {
        zerr_set(err, "IO", "cannot read %s: %s", s->items[s->idx].src,
                 r < 0 ? strerror(errno) : "it changed while being archived");
        return (size_t)-1;
      }
      s->crc = zcrc32(s->crc, buf + got, (size_t)r);
      s->datapos += (uint64_t)r;
      got += (size_t)r;
      continue;
    }
    if (advance(s, err) != 0)
      return (size_t)-1;
  }
  return got;
}
