/*
 * Reading zip archives defensively: the central directory parser, the structural and
 * safety checks extraction needs (names, duplicates, overlaps, sizes), entry data checked
 * against its declared size and CRC, and extraction through a staging directory.
 */
#ifndef SKAFOS_ZIPREAD_H
#define SKAFOS_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "zipfmt.h"

/* An entry as the checks and the extraction work on it. Names: the stored bytes (zr_raw)
 * and what they stand for under zf_read_name's rule (name: UTF-8, '/' between
 * components, no "." component; "" for the archive's root, "./"). When that rule refuses
 * the name, name_bad is set and name is the stored name as text, for messages. Archives
 * keep their entries packed (zr_slot, zr_table) and give out this form one at a time. */
typedef struct zr_entry {
  const char *name; /* NUL-terminated; namelen counts any NUL inside; in a zf_pool */
  uint64_t csize, usize;
  uint64_t offset;     /* of the local header */
  uint32_t namelen;
  uint32_t crc;
  uint32_t data_delta; /* the data starts at offset + data_delta (zr_data_offset) */
  uint32_t name_h;     /* name's handle in its pool */
  uint16_t rawlen;
  uint16_t mode; /* Unix mode when the archive recorded one, else 0 */
  uint16_t flags, method;
  unsigned is_dir : 1, is_symlink : 1;
  unsigned name_bad : 1;  /* zf_read_name refused the stored bytes */
  unsigned raw_apart : 1; /* the stored bytes differ from name and follow it in the pool */
  unsigned dos_names : 1; /* a backslash separates components (zr_entry_names' dos) */
  unsigned listed : 1;    /* the streaming extractor met its directory record */
} zr_entry;

/* How a table keeps an entry: 32 bytes, its name apart in the table's pool, so that a
 * million-entry archive is read in well under 100 MiB. An entry whose sizes or offset do
 * not fit 32 bits, whose method is neither store nor deflate or whose name is 256 KiB or
 * longer is wide: those values are in the table's zr_wide record number csize. */
typedef struct zr_slot {
  uint64_t namelen : 18, data_delta : 18, flags : 16, deflated : 1, is_dir : 1,
      is_symlink : 1, name_bad : 1, raw_apart : 1, dos_names : 1, listed : 1, wide : 1;
  uint32_t name; /* handle */
  uint32_t crc;
  uint32_t csize, usize, offset;
  uint16_t rawlen, mode;
} zr_slot;

typedef struct zr_wide {
  uint64_t csize, usize, offset;
  uint32_t namelen, data_delta;
  uint16_t method;
} zr_wide;

typedef struct zr_table {
  zr_slot *s;
  size_t n, cap;
  zr_wide *w;
  size_t nw, wcap;
  zf_pool names;
} zr_table;

/* Entry i in its working form, written to *e; returns e. */
const zr_entry *zr_get(const zr_table *t, size_t i, zr_entry *e);
/* Keeps e (its name already in t->names, as zr_entry_names puts it) as entry i < t->n.
 * -1 when out of memory. */
int zr_set(zr_table *t, size_t i, const zr_entry *e);
/* Room for exactly n entries in all (0 or -1 when out of memory). */
int zr_table_reserve(zr_table *t, size_t n);
/* Keeps e as a new last entry, growing the table as needed. -1: out of memory. */
int zr_push(zr_table *t, const zr_entry *e);
void zr_table_free(zr_table *t);

/* What sorts and searches read of entry i, without unpacking it. */
static inline const char *zr_name_of(const zr_table *t, size_t i) {
  return zf_pool_at(&t->names, t->s[i].name);
}
static inline uint32_t zr_namelen_of(const zr_table *t, size_t i) {
  return t->s[i].wide ? t->w[t->s[i].csize].namelen : (uint32_t)t->s[i].namelen;
}
static inline uint64_t zr_offset_of(const zr_table *t, size_t i) {
  return t->s[i].wide ? t->w[t->s[i].csize].offset : t->s[i].offset;
}

/* The stored name bytes (rawlen of them, NUL-terminated). */
static inline const char *zr_raw(const zr_entry *e) {
  return e->raw_apart ? e->name + e->namelen + 1 : e->name;
}
static inline uint64_t zr_data_offset(const zr_entry *e) { return e->offset + e->data_delta; }

/* Where the archive bytes come from: a file or, for the fuzzer, memory. pread returns 0
 * when all n bytes at off were read, -1 otherwise. */
typedef struct zr_io {
  int (*pread)(void *ud, void *buf, size_t n, uint64_t off);
  void *ud;
  uint64_t size;
} zr_io;

typedef struct zr_archive {
  zr_io io;
  int fd; /* when opened by zr_open_file */
  zr_table t; /* the entries, t.n of them */
  uint64_t cd_offset, cd_size;
  uint64_t end; /* where the end of central directory record, with its comment, ends */
} zr_archive;

/* The default limit on the number of entries (zr_open's max_entries, 0 = none). */
#define ZR_MAX_ENTRIES 1000000u

/* Parses the end records and the central directory. Failures: INTEGRITY (not a zip,
 * truncated, inconsistent) or UNSAFE_ARCHIVE (multi-disk, absurd sizes, more than
 * max_entries entries when it is not 0: refused before the directory is read). */
int zr_open(zr_archive *a, const zr_io *io, uint64_t max_entries, zerr *err);
int zr_open_file(zr_archive *a, const char *path, uint64_t max_entries, zerr *err);
/* zr_open's first half: the end records only (a->cd_offset, cd_size, end; *count
 * entries), with the same checks; no entry is read. */
int zr_open_end(zr_archive *a, const zr_io *io, uint64_t max_entries, uint64_t *count,
                zerr *err);
/* One central directory record at r (its signature checked by the caller): the whole
 * record is zr_central_len(r) bytes. zr_parse_central fills e (names in pool) as zr_open
 * does; INTEGRITY or UNSAFE_ARCHIVE otherwise. */
size_t zr_central_len(const unsigned char *r);
int zr_parse_central(const unsigned char *r, zf_pool *pool, zr_entry *e, zerr *err);
void zr_close(zr_archive *a);

typedef struct zr_limits {
  uint64_t max_size;  /* total bytes written; 0 = unlimited */
  uint64_t max_entries; /* the streaming extractor's count of entries; 0 = unlimited */
  const char *space_dir; /* set when max_size is the free space of this directory */
  uint64_t max_ratio; /* bytes written / archive size; 0 = unlimited */
  int symlinks_inside;
  /* max_ratio counts the bytes written against the archive bytes read so far (up to the
   * compressed data consumed), as the streaming extractor does, not the archive size */
  int ratio_so_far;
  /* When set, what only extraction refuses (names, duplicates, entries under a file or
   * symlink, symlinks and their targets, malformed directory and symlink entries) is not
   * a failure: the first such message is kept here (code UNSAFE_ARCHIVE) and the checks
   * go on. Damage, encryption, unknown methods, overlaps and the limits still fail. */
  zerr *unsafe;
} zr_limits;

/* Every check that needs no entry data: names, duplicates (also by case), entries under
 * a file or symlink, symlinks when not allowed, methods, encryption, local headers
 * against the central directory, overlapping data, declared total over max_size.
 * Fills data_offset. */
int zr_check(zr_archive *a, const zr_limits *lim, zerr *err);

/* After zr_check: what the streaming extractor needs besides, reading the archive front
 * to back. Entries lie back to back from byte 0 and the central directory right after
 * them; local headers (or data descriptors) give the central directory's CRC and sizes;
 * nothing follows the end record. INTEGRITY otherwise. Checks stop at the first stored
 * entry whose sizes follow its data: such an archive is downloaded before extraction and
 * read from the file, where these do not matter. */
int zr_check_stream(zr_archive *a, zerr *err);

/* Receives entry data; nonzero stops the read with err set by the sink. */
typedef int (*zr_sink)(void *ud, const unsigned char *p, size_t n, zerr *err);

/* Running totals over one extraction, for the limits. */
typedef struct zr_progress {
  uint64_t written, total;
  uint64_t reported;
  const zhooks *hooks;
} zr_progress;

/* Streams entry i (after zr_check) to sink: refuses more or fewer bytes than declared,
 * CRC mismatches, truncated or trailing compressed data (INTEGRITY) and the limits
 * (UNSAFE_ARCHIVE), counted on the bytes produced. */
int zr_read_entry(zr_archive *a, size_t i, zr_sink sink, void *ud, const zr_limits *lim,
                  zr_progress *pr, zerr *err);

/* Reads every entry of an open archive (after zr_check) without writing anything,
 * checking sizes and CRCs and, when lim->symlinks_inside, symlink targets as extraction
 * does. *bytes gets the total uncompressed size. */
int zr_verify(zr_archive *a, const zr_limits *lim, const zhooks *hooks, uint64_t *bytes,
              zerr *err);

typedef struct zr_options {
  int64_t max_size;  /* < 0: the free space of the target filesystem */
  int64_t max_ratio; /* < 0: 1000; 0: unlimited */
  int64_t max_entries; /* < 0: ZR_MAX_ENTRIES; 0: unlimited */
  int symlinks_inside;
  int force; /* replace an existing non-empty dir */
  const zhooks *hooks;
  /* results */
  uint64_t written;
  size_t entries;
} zr_options;

/* Extracts into a fresh staging directory beside dir, renamed to dir once every entry
 * passed; on failure nothing is left behind. dir may exist only if empty (or force). */
int zr_extract(const char *path, const char *dir, zr_options *o, zerr *err);

/* ---- pieces shared with the streaming extractor (zipsink.c) ---------------------- */

#define ZR_NAMEBUF 300
#define ZR_SYMLINK_MAX 4096

/* A printable copy of an entry name for messages. */
const char *zr_shown(const zr_entry *e, char *buf, size_t len);

/* Sets e's names, kept in pool, from the stored bytes raw[0..rawlen) (at most 65535;
 * e->flags gives the UTF-8 flag; dos: a backslash separates components) and is_dir when
 * the name ends with a separator. NOMEM is the only failure. */
int zr_entry_names(zr_entry *e, zf_pool *pool, const char *raw, size_t rawlen, int dos,
                   zerr *err);

/* Why e's name cannot be extracted, or NULL: zf_read_name's reason, else zf_check_name
 * of the name unless it is the root. */
const char *zr_name_problem(const zr_entry *e);

/* The checks of one entry alone: name, encryption, method, symlink kind and size,
 * directory form. */
int zr_check_entry(const zr_entry *e, const zr_limits *lim, zerr *err);

/* zr_check_entry for every entry, then duplicates (also by case) and entries under a
 * file or symlink (with lim->unsafe, the first unsafe entry is kept there instead). */
int zr_check_names(zr_archive *a, const zr_limits *lim, zerr *err);

/* Whether symlink e of a (target t of tlen bytes) stays inside without passing through
 * another symlink of a. */
int zr_symlink_ok(const zr_archive *a, const zr_entry *e, const char *t, size_t tlen);

char *zr_path_join(const char *a, const char *b, size_t blen);
/* The error code of a failed write: NO_SPACE for a full disk or quota, else IO. */
const char *zr_write_code(int errnum);
void zr_rm_tree(const char *path);

/* The target directory and its staging directory. prepare checks the target (EXISTS
 * unless force) and makes its missing parents; create makes a fresh staging directory
 * (discarding any previous one); commit renames it into place (moving an existing
 * target aside and removing it); free removes a stage never committed and the parents
 * made for it. */
typedef struct zr_stage {
  char *clean, *parent, *path; /* target, its parent, the staging directory (or NULL) */
  const char *base;            /* inside clean */
  char **made;                 /* parents made by prepare */
  size_t nmade;
  char *lastdir; /* the last directory made in the stage, relative */
  size_t lastlen;
  char *buf;
  size_t bufsize;
  int lockfd;    /* holds a lock on a temporary stage while it lives (see sweep) */
  char *fixed;   /* when set, create makes the stage at this path instead of a fresh
                  * temporary name (a resumable extraction owns and frees it) */
  int exists, committed;
} zr_stage;

int zr_stage_prepare(zr_stage *s, const char *dir, int force, zerr *err);
/* Limits with the defaults filled in: max_size < 0 is the free space beside the
 * target; max_ratio < 0 is 1000. */
int zr_stage_limits(const zr_stage *s, int64_t max_size, int64_t max_ratio,
                    int symlinks_inside, zr_limits *lim, zerr *err);
int zr_stage_create(zr_stage *s, zerr *err);
void zr_stage_discard(zr_stage *s);
/* mkdir -p of rel[0..len) inside the stage. */
int zr_stage_mkdirs(zr_stage *s, const char *rel, size_t len, zerr *err);
int zr_stage_commit(zr_stage *s, zerr *err);
void zr_stage_free(zr_stage *s);

#endif
