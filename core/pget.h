/*
 * Lua-free parallel ranged GET for skafos.s3.get: one object split into byte ranges over
 * several connections on one libcurl multi handle, each range written at its offset of the
 * part file and retried alone, the whole object's SHA-256 computed in order as the ranges
 * before it complete, and the completed ranges kept in the part's meta file for a resume.
 */
#ifndef SKAFOS_PGET_H
#define SKAFOS_PGET_H

#include <stdint.h>

#include "transfer.h"

#define PGET_MAX_CONNECTIONS 32

/* ---- the meta file ----------------------------------------------------------------------
 * Next to <dest>.part, <dest>.part.etag says what the part holds. A single-connection get
 * writes the bare ETag there (its part is the object's first bytes); a ranged get writes
 *
 *   skafos-ranges 1
 *   etag "<the ETag as storage sent it>"
 *   size <object size>
 *   done <first> <last>          (one line per completed range, inclusive, appended)
 *
 * A line counts only once its newline is written, so a run killed while appending loses
 * at most that range. */

typedef struct pget_range {
  int64_t first, last; /* inclusive */
} pget_range;

typedef struct pget_meta {
  char etag[256]; /* raw, as in the ETag header; "" when unknown */
  int64_t size;   /* -1 when unknown */
  pget_range *done; /* sorted, merged */
  size_t ndone;
  int ranged; /* 1: the ranged format; 0: a bare ETag (the part is a prefix) */
} pget_meta;

/* Parses the meta file's text (n bytes). Returns 0 and fills m (pget_meta_free it), or -1
 * when the text is neither format (m is then empty). A bare ETag gives ranged = 0,
 * size = -1 and no ranges: the caller knows the part's length. */
int pget_meta_parse(const char *text, size_t n, pget_meta *m);
void pget_meta_free(pget_meta *m);

/* Adds [first, last] to m's done ranges, keeping them sorted and merged. -1: no memory. */
int pget_meta_add(pget_meta *m, int64_t first, int64_t last);

/* The ranges of [0, size) not in m's done ranges, into *out (malloc'd, *nout of them).
 * Returns 0 or -1 when out of memory. */
int pget_missing(const pget_meta *m, int64_t size, pget_range **out, size_t *nout);

/* ---- the transfer -------------------------------------------------------------------- */

/* Sets the options every request of the get shares (the caller's transfer_setup, share,
 * URL, extra headers are added by pget) on a fresh easy handle. errbuf: CURL_ERROR_SIZE. */
typedef CURLcode (*pget_setup_fn)(void *ud, CURL *easy, char *errbuf);

/* Between libcurl calls, never inside one: done bytes of total (-1 unknown). Nonzero
 * aborts (the caller says why). */
typedef int (*pget_tick_fn)(void *ud, int64_t done, int64_t total);

/* Stream mode: bytes handed over in the object's order (never from inside a libcurl
 * callback's reentry; C only). start: before the first byte of a round, offset 0 for the
 * whole object (forget everything, it has this ETag) or the resume offset asked for.
 * write: the next n bytes. Nonzero from either fails the get with code "SINK" (the
 * caller keeps why). */
typedef int (*pget_start_fn)(void *ud, int64_t offset, const char *etag);
typedef int (*pget_write_fn)(void *ud, const char *p, size_t n);

/* The reorder window of stream mode when none is given: what arrives ahead of the point
 * delivered is held in memory up to this, whatever the number of connections. */
#define PGET_STREAM_WINDOW (INT64_C(12) << 20)

typedef struct pget_conf {
  const char *url;
  const char *part, *meta;          /* paths, for messages and the meta file */
  int fd;                           /* the part file, open read-write, ours */
  int connections;                  /* 1 .. PGET_MAX_CONNECTIONS */
  int no_ramp;                      /* open them all at once instead of growing to them */
  const pget_meta *resume;          /* what an earlier run kept, or NULL */
  int64_t resume_prefix;            /* with a bare-ETag meta: the part's length */
  const struct curl_slist *headers; /* the caller's, copied into every request */
  const transfer_opts *topts;
  pget_setup_fn setup;
  pget_tick_fn tick;
  void *ud;
  /* Stream mode, when sink_write is set: no part or meta file (fd, part, meta, resume
   * unused), nothing recorded for a later run. The ranges fetched ahead of the point
   * delivered wait in memory, `window` bytes at most (0: PGET_STREAM_WINDOW); a
   * connection whose bytes would not fit is paused until the point moves. stream_from > 0
   * asks for the object from there, If-Range stream_etag (a 200 starts it from 0). */
  pget_start_fn sink_start;
  pget_write_fn sink_write;
  int64_t window;
  int64_t stream_from;
  const char *stream_etag;
  int64_t piece; /* stream mode: the range size (0: from the window and connections) */
  /* File mode: every byte of the object also goes to tee, in order from the first, on the
   * hashing thread as the front of the part file fills (C only; nonzero: call no more,
   * the caller keeps why). tee_reset (main thread) before the object starts over. */
  pget_write_fn tee;
  void (*tee_reset)(void *ud);
} pget_conf;

typedef struct pget_result {
  /* on success */
  long status;        /* 206, or 200 when the server sent the whole object */
  int64_t bytes;      /* the object's size */
  int64_t resumed;    /* bytes kept from an earlier run */
  int restarted;      /* the object changed meanwhile: the download started over */
  int connections;    /* the most connections used at once */
  int64_t requests;   /* ranges requested (retries included) */
  int64_t handoff;    /* with the return value 1: the part's length */
  void *front_sha;    /* with the return value 1 and no tee: the SHA-256 state (an
                         EVP_MD_CTX, the caller's to free) of those bytes, or NULL */
  char etag[256];     /* raw */
  char sha256[65];    /* not in stream mode */
  int64_t buffered_peak; /* stream mode: the most bytes held ahead of the point delivered */
  int64_t window;        /* stream mode: the bound it kept to */
  /* on failure: code and msg, and for an HTTP error answer also its status, the start of
   * its body (tbuf_free it) and Retry-After */
  const char *code;
  char msg[CURL_ERROR_SIZE + 768];
  int retryable;
  long http_status;
  tbuf errbody;
  int64_t retry_after;
  CURLcode curl_code;
} pget_result;

/* Runs the get. In stream mode: 0 once every byte went to sink_write in order, or -1 (a
 * one-connection handoff is internal). Otherwise: returns 0 with r's success fields set and the part file complete (not
 * synced, not renamed), or -1 with r->code set; what was received stays in the part
 * file and its ranges in the meta file, for the next run. Returns 1 when the first range
 * came so fast that one connection is best (r->handoff bytes are in the part, and the
 * meta file holds the bare ETag): the caller goes on as a single-connection get, from
 * there. */
int pget_run(const pget_conf *c, pget_result *r);

#endif
