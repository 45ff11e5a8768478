/*
 * The pool behind parallel deflate. Each non-final block is deflated as its own raw
 * stream primed with the previous 32 KiB (deflateSetDictionary) and ended with
 * Z_SYNC_FLUSH, so it stops on a byte boundary without a final-block bit; the last block
 * ends with Z_FINISH. Concatenated in order they form one deflate stream (pigz's method);
 * the CRCs of the blocks are joined by the caller with crc32_combine.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crc32x.h"
#include "pdeflate.h"

struct pd_pool {
  pthread_mutex_t lock;
  pthread_cond_t work; /* signalled when a job is queued or the pool stops */
  pthread_cond_t done; /* broadcast when any job completes */
  pd_job *head, *tail;
  int stop;
  int nthreads;
  pthread_t *threads;
};

size_t pd_out_bound(size_t inlen) {
  /* Stored-block fallback costs 5 bytes per 16 KiB at worst; add the sync marker and
   * the end-of-stream bits with a wide margin. */
  return inlen + (inlen >> 11) + 5 * (inlen / 16383 + 1) + 64;
}

int pd_worth_deflating(uint64_t in, uint64_t out) {
  return in > 0 && out * 100 < in * (100 - PD_AUTO_SAVING);
}

void pd_end(z_stream *strm, int *level) {
  if (*level >= 0)
    deflateEnd(strm);
  *level = -2;
}

void pd_run(z_stream *strm, int *level, pd_job *j) {
  int ret;
  j->err = 0;
  j->stored = 0;
  { /* crc32 takes uInt lengths */
    size_t off = 0;
    uLong c = crc32(0L, Z_NULL, 0);
    while (off < j->inlen) {
      size_t n = j->inlen - off > (1u << 30) ? (1u << 30) : j->inlen - off;
      c = zcrc32((uint32_t)c, j->in + off, n);
      off += n;
    }
    j->crc = (uint32_t)c;
  }
  if (j->level < 0) {
    j->stored = 1;
    j->outlen = j->inlen;
    return;
  }
  if (*level != j->level) {
    pd_end(strm, level);
    memset(strm, 0, sizeof *strm);
    if (deflateInit2(strm, j->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      j->err = Z_MEM_ERROR;
      return;
    }
    *level = j->level;
  } else if (deflateReset(strm) != Z_OK) {
    j->err = Z_STREAM_ERROR;
    return;
  }
  if (j->dict != NULL && j->dictlen > 0 &&
      deflateSetDictionary(strm, j->dict, (uInt)j->dictlen) != Z_OK) {
    j->err = Z_STREAM_ERROR;
    return;
  }
  strm->next_in = (Bytef *)(uintptr_t)j->in; /* zlib does not write through next_in */
  strm->avail_in = (uInt)j->inlen;
  strm->next_out = j->out;
  strm->avail_out = (uInt)j->outcap;
  ret = deflate(strm, j->finish ? Z_FINISH : Z_SYNC_FLUSH);
  if ((j->finish ? ret != Z_STREAM_END : ret != Z_OK) || strm->avail_in != 0 ||
      strm->avail_out == 0) {
    j->err = ret == Z_OK || ret == Z_STREAM_END ? Z_BUF_ERROR : ret;
    return;
  }
  j->outlen = j->outcap - strm->avail_out;
  if (j->auto_store && !pd_worth_deflating(j->inlen, j->outlen)) {
    j->stored = 1;
    j->outlen = j->inlen;
  }
}

static void *worker(void *arg) {
  pd_pool *p = arg;
  z_stream strm;
  int level = -2;
  memset(&strm, 0, sizeof strm);
  pthread_mutex_lock(&p->lock);
  for (;;) {
    pd_job *j, *k;
    while (p->head == NULL && !p->stop)
      pthread_cond_wait(&p->work, &p->lock);
    if (p->head == NULL)
      break; /* stopping and nothing queued */
    j = p->head;
    p->head = j->next;
    if (p->head == NULL)
      p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    for (k = j; k != NULL; k = k->more) {
      k->ioerr = k->load ? k->load(k) : 0;
      if (k->ioerr == 0)
        pd_run(&strm, &level, k);
    }
    pthread_mutex_lock(&p->lock);
    j->done = 1;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->lock);
  pd_end(&strm, &level);
  return NULL;
}

pd_pool *pd_new(int threads) {
  pd_pool *p = calloc(1, sizeof *p);
  int i;
  if (p == NULL)
    return NULL;
  if (threads < 1)
    threads = 1;
  p->threads = calloc((size_t)threads, sizeof *p->threads);
  if (p->threads == NULL) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  for (i = 0; i < threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
      break;
    p->nthreads++;
  }
  if (p->nthreads == 0) {
    pd_free(p);
    return NULL;
  }
  return p;
}

void pd_submit(pd_pool *p, pd_job *j) {
  j->done = 0;
  j->next = NULL;
  pthread_mutex_lock(&p->lock);
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
}

void pd_wait(pd_pool *p, pd_job *j) {
  pthread_mutex_lock(&p->lock);
  while (!j->done)
    pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

void pd_free(pd_pool *p) {
  int i;
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p->threads);
  free(p);
}
