/*
 * Parallel deflate: a pool of threads that compress (or only checksum) blocks of input
 * handed to them in order, pigz-style, so one large entry split into blocks still forms
 * a single valid raw deflate stream once the outputs are concatenated in order.
 */
#ifndef SKAFOS_PDEFLATE_H
#define SKAFOS_PDEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

/* One block of work. The submitter owns every buffer and must not touch `out` or the
 * results until pd_wait returned for the job; `in` and `dict` are only read. */
typedef struct pd_job {
  const unsigned char *in;
  size_t inlen;
  const unsigned char *dict; /* the 32 KiB before `in` in the same entry, or NULL */
  size_t dictlen;
  int level;      /* 0..9 deflate level; -1 computes the CRC only (stored data) */
  int finish;     /* last block of its entry: Z_FINISH, else Z_SYNC_FLUSH */
  int auto_store; /* whole-entry block under "auto": keep it stored when deflate does
                     not save at least PD_AUTO_SAVING percent */
  unsigned char *out;
  size_t outcap;  /* at least pd_out_bound(inlen) */
  /* results */
  size_t outlen;
  uint32_t crc;
  int stored; /* the entry's bytes are `in` itself (level -1 or the auto fallback) */
  int err;    /* a zlib error code, 0 when fine */
  /* Optional, run by the worker before the block is compressed, to fill `in` (and
   * `dict`; a submitter that needs more context embeds the job in its own struct): a
   * nonzero return (an errno value, or -1) lands in `ioerr` and the block is skipped. */
  int (*load)(struct pd_job *j);
  int ioerr;
  /* The next job of a batch: the worker that takes this job runs the chain in order, so
   * many small blocks cost one hand-off. Only the head is submitted and waited for. */
  struct pd_job *more;
  /* pool bookkeeping */
  int done;
  struct pd_job *next;
} pd_job;

typedef struct pd_pool pd_pool;

#define PD_AUTO_SAVING 3

/* Worst-case output of one block of inlen bytes, flush markers included. */
size_t pd_out_bound(size_t inlen);

/* Whether deflating `in` bytes into `out` bytes is worth it under "auto". */
int pd_worth_deflating(uint64_t in, uint64_t out);

/* Runs one job in the calling thread with a caller-owned stream state; *level holds the
 * level strm was initialised with (-2 before the first call). Sets j->err on failure. */
void pd_run(z_stream *strm, int *level, pd_job *j);
/* Releases what pd_run allocated in strm. */
void pd_end(z_stream *strm, int *level);

/* Starts `threads` workers (at least 1). Returns NULL when no thread could start. */
pd_pool *pd_new(int threads);
/* Queues j and the batch chained from it by `more`. */
void pd_submit(pd_pool *p, pd_job *j);
/* Blocks until j (and its batch) is done. */
void pd_wait(pd_pool *p, pd_job *j);
/* Stops the workers after the queued jobs and frees the pool. NULL is fine. */
void pd_free(pd_pool *p);

#endif
