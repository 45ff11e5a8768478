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
  int symlinks_inside;
  int force; /* replace an existing non-empty target */
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

/* Frees x; a stage never finished is removed with the parents made for it. */
void zx_free(zx *x);

#endif
