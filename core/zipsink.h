/*
 * Extracting a zip archive while it arrives: a sequential parser of local headers, entry
 * data and data descriptors that writes into a staging directory, then checks the central
 * directory against what was streamed before renaming the stage into place.
 */
#ifndef SKAFOS_ZIPSINK_H
#define SKAFOS_ZIPSINK_H

#include <stddef.h>
#include <stdint.h>

#include "zipfmt.h"

typedef struct zx_options {
  int64_t max_size;  /* < 0: the free space beside the target */
  int64_t max_ratio; /* < 0: 1000; 0: unlimited; counted on the bytes consumed so far */
  int64_t max_entries; /* < 0: ZR_MAX_ENTRIES; 0: unlimited */
  int symlinks_inside;
  int force; /* replace an existing non-empty target */
  int resumable; /* keep the stage and a journal in <parent>/.<base>.skafos-partial so an
                  * interrupted extraction can go on later (zx_resume_point, zx_start) */
  const zhooks *hooks; /* only `cancelled` is used (polled per block) */
} zx_options;

typedef struct zx zx;

/* Checks the target (EXISTS unless force; INVALID_INPUT for a bad name) and makes its
 * missing parents; the staging directory is made when the first entry arrives. */
zx *zx_new(const char *dir, const zx_options *o, zerr *err);

/* Feeds the next n bytes of the archive. Every failure is sticky until zx_reset: later
 * calls return the same error. Codes: INTEGRITY, UNSAFE_ARCHIVE, NOT_STREAMABLE (a stored
 * entry whose sizes come only after its data), IO, NOMEM, INTERRUPTED. Some unsafe
 * entries (names, duplicates) are only remembered: nothing more is written, the parse
 * goes on so a damaged archive still says INTEGRITY, and zx_finish reports them. */
int zx_write(zx *x, const unsigned char *p, size_t n, zerr *err);

/* Removes everything written so far and starts over at byte 0. */
int zx_reset(zx *x, zerr *err);

/* The end of the input: checks the central directory and end records against the
 * streamed entries (same count, names, offsets, methods, sizes, CRCs; nothing after the
 * end record), then the rules that need the whole directory (case-only duplicates,
 * entries under files, symlinks and their targets), makes the symlinks and executable
 * modes, and renames the stage to the target. On failure nothing is left behind. */
int zx_finish(zx *x, size_t *entries, uint64_t *bytes, zerr *err);

/* Resumable extractors only (else both behave as for a fresh start). zx_resume_point
 * rebuilds the state an earlier extractor left (this one after a failed download, or
 * another process after a kill): every finished entry's file is checked against its CRC
 * again, a stored entry goes on from its last byte, a deflated one starts again. It
 * returns the archive offset to continue from (0: from the start) and the ETag the bytes
 * came from (etag, etaglen bytes; "" when none), or -1 with err set. zx_start announces
 * the bytes about to come: offset 0 starts afresh for the object with this ETag
 * (removing anything kept), a positive offset must be the resume point. */
int64_t zx_resume_point(zx *x, char *etag, size_t etaglen, zerr *err);
int zx_start(zx *x, int64_t offset, const char *etag, zerr *err);

/* The directory a resumable extractor keeps its partial work in, else NULL. */
const char *zx_partial_dir(const zx *x);

/* Removes everything written so far, also what a resumable extractor would keep. */
void zx_discard(zx *x);

/* Frees x; a stage never finished is removed with the parents made for it, except that
 * a resumable extractor keeps its partial work when there is any (until zx_discard or a
 * finish). An interrupted resumable extractor (INTERRUPTED) keeps it too; any other
 * failure removes it. */
void zx_free(zx *x);

#endif
