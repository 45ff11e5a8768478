/*
 * Building zip archives without Lua: the plan (which files go in under which names,
 * directories walked, sorted, checked), the parallel writer that compresses and writes a
 * plan, and the streaming producer of an all-stored archive of exactly known size.
 */
#ifndef SKAFOS_ZIPWRITE_H
#define SKAFOS_ZIPWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "zipfmt.h"

#define ZW_AUTO (-1)
#define ZW_STORE ZF_STORE
#define ZW_DEFLATE ZF_DEFLATE

/* Input blocks for parallel deflate, and the bytes sampled by "auto" on larger files. */
#define ZW_BLOCK (512u * 1024u)
#define ZW_SAMPLE (128u * 1024u)

typedef struct zw_item {
  const char *src;  /* file to read; NULL for a directory entry */
  const char *name; /* archive name; a directory's ends with '/' (both in the plan's pool) */
  uint64_t size;
  uint16_t namelen; /* names are checked to fit the format's 16 bits */
  uint16_t mode;    /* normalised, see zf_norm_mode */
  int8_t method;    /* ZW_AUTO, ZW_STORE or ZW_DEFLATE */
  int8_t level;     /* 0..9, used by ZW_AUTO and ZW_DEFLATE */
} zw_item;

#define ZW_LEFT_SHOWN 10

typedef struct zw_plan {
  zw_item *items;
  size_t n, cap;
  zf_pool strings; /* the items' src and name */
  /* Operating-system litter found by directory walks (see zw_is_litter) is left out
   * unless keep_litter is set (zw_plan_init clears it): left_out counts what was left
   * out, left_names holds the archive names of the first ZW_LEFT_SHOWN of them. */
  int keep_litter;
  size_t left_out;
  char *left_names[ZW_LEFT_SHOWN];
} zw_plan;

void zw_plan_init(zw_plan *p);
void zw_plan_free(zw_plan *p);
/* Whether a file (or, with is_dir, a directory) called `base` is what Finder and
 * Explorer leave behind: .DS_Store, AppleDouble ._* files, Thumbs.db, desktop.ini (these
 * two in any case), and __MACOSX directories. */
int zw_is_litter(const char *base, int is_dir);
/* Adds the file or directory src under `name` (NULL: src's base name; "" for a
 * directory puts its contents at the root). Directories are walked recursively, leaving
 * out litter unless p->keep_litter (src itself is always added); a symlink inside is
 * archived as its target, one leading outside src is an error. */
int zw_plan_add(zw_plan *p, const char *src, const char *name, int method, int level,
                zerr *err);
/* Adds a directory entry without a source. */
int zw_plan_add_dir(zw_plan *p, const char *name, zerr *err);
/* Sorts the items by name and refuses duplicate and case-only duplicate names. */
int zw_plan_sort(zw_plan *p, zerr *err);

/* Opens an item's file for reading front to back; IO when it cannot be opened or its size
 * is no longer the planned one ("changed while being archived"). */
int zw_open_input(const zw_item *it, zerr *err);

typedef struct zw_writer zw_writer;

/* Creates `path` atomically: bytes go to a temporary file beside it, renamed at
 * zw_finish. threads <= 0 means the online cores; mtime < 0 means zf_default_epoch(). */
zw_writer *zw_open(const char *path, int threads, int64_t mtime, zerr *err);
/* Compresses and writes items in order. On failure the archive is rolled back to what
 * it was before the call, so the writer stays usable. */
int zw_add(zw_writer *w, const zw_item *items, size_t n, const zhooks *hooks,
           zerr *err);
/* The items given to zw_add outlive the writer (one plan, written in one call): their
 * names are kept by reference instead of copied. */
void zw_borrow_names(zw_writer *w);
/* Writes the central directory and renames the archive into place. */
int zw_finish(zw_writer *w, zerr *err);
/* Frees the writer; an unfinished archive is deleted. NULL is fine. */
void zw_free(zw_writer *w);

size_t zw_count(const zw_writer *w);
const zf_entry *zw_entry(const zw_writer *w, size_t i);
uint64_t zw_bytes_out(const zw_writer *w);

/* Decides "auto" for an entry whose first bytes are data[0..n) and whose full size is
 * size: returns 1 when it should be deflated at `level`. The writer uses the same rule,
 * so a stream and an archive agree. */
int zw_auto_deflates(const unsigned char *data, size_t n, uint64_t size, int level);

/* Resolves every item to ZW_STORE for a stream: "auto" items are sampled from disk.
 * Returns 0 when all are stored, 1 with *which set when an item would be deflated
 * (method ZW_DEFLATE, or "auto" judging it compressible), -1 on a read error. */
int zw_plan_all_stored(zw_plan *p, size_t *which, zerr *err);

/* ---- streaming ---------------------------------------------------------------------- */
typedef struct zs_stream zs_stream;

/* Prepares a stream of the sorted plan, every item stored (the caller resolved "auto"
 * with zw_auto_deflates beforehand). The exact size is known at once. */
zs_stream *zs_new(const zw_plan *plan, int64_t mtime, zerr *err);
/* The same, taking over the plan's items and names instead of copying them: the plan is
 * left empty (zw_plan_init) whether or not it succeeds. */
zs_stream *zs_take(zw_plan *plan, int64_t mtime, zerr *err);
uint64_t zs_size(const zs_stream *s);
/* Fills up to n bytes; returns the count (0 only at the end) or (size_t)-1 with err
 * set, e.g. when a file changed after zs_new. */
size_t zs_read(zs_stream *s, unsigned char *buf, size_t n, zerr *err);
/* Back to byte 0. */
int zs_reset(zs_stream *s, zerr *err);
void zs_free(zs_stream *s);

#endif
