/*
 * The zip format as skafos writes and checks it: header records built byte for byte,
 * DOS timestamps, entry-name rules, and duplicate detection. No I/O and no Lua here, so
 * the writer, the streaming reader and the extractor share one definition of the bytes.
 */
#ifndef SKAFOS_ZIPFMT_H
#define SKAFOS_ZIPFMT_H

#include <stddef.h>
#include <stdint.h>

#define ZF_SIG_LOCAL 0x04034b50u
#define ZF_SIG_CENTRAL 0x02014b50u
#define ZF_SIG_EOCD 0x06054b50u
#define ZF_SIG_EOCD64 0x06064b50u
#define ZF_SIG_LOC64 0x07064b50u
#define ZF_SIG_DESCRIPTOR 0x08074b50u

#define ZF_LOCAL_FIXED 30
#define ZF_CENTRAL_FIXED 46
#define ZF_EOCD_FIXED 22
#define ZF_EOCD64_FIXED 56
#define ZF_LOC64_FIXED 20

#define ZF_MAX32 0xffffffffu
#define ZF_MAX16 0xffffu

#define ZF_FLAG_UTF8 0x0800 /* general purpose bit 11: the name is UTF-8 */

#define ZF_STORE 0
#define ZF_DEFLATE 8

/* A deflated entry this large gets a zip64 local header up front: its compressed size
 * is unknown when the header is written, and deflate's worst-case expansion of such an
 * input stays far below the 16 MiB of headroom left under 4 GiB. */
#define ZF_DEFLATE_ZIP64_AT 0xff000000u

/* Largest record zf_local/zf_central write, beyond the name. */
#define ZF_HEADER_SLACK 96
/* Largest output of zf_end. */
#define ZF_END_MAX (ZF_EOCD64_FIXED + ZF_LOC64_FIXED + ZF_EOCD_FIXED)

/* An operational failure: code is a static string ("IO", "INVALID_INPUT", ...). */
typedef struct zerr {
  const char *code;
  char msg[512];
} zerr;

void zerr_set(zerr *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Callbacks of long operations; both optional. */
typedef struct zhooks {
  /* Return nonzero to stop (the operation then fails with code "ABORTED"). */
  int (*progress)(void *ud, uint64_t done, uint64_t total);
  int (*cancelled)(void *ud); /* polled between blocks; nonzero stops with INTERRUPTED */
  void *ud;
} zhooks;

/* One entry as written. mode holds the file type bits and the normalised permissions. */
/* One entry as the writer keeps it until the central directory: 48 bytes, as a writer
 * keeps one per entry (a name is at most 65535 bytes, a Unix mode 16 bits). */
typedef struct zf_entry {
  const char *name;
  uint64_t usize, csize;
  uint64_t offset; /* of the local header */
  uint32_t crc;
  uint16_t namelen;
  uint16_t method;
  uint16_t dostime, dosdate;
  uint16_t mode;
  uint8_t zip64_local; /* the local header carries a zip64 extra field */
} zf_entry;

/* Strings kept together for as long as a plan, writer or archive lives: one allocation
 * per 64 KiB instead of one per name, so a million names cost their bytes and little
 * more. Strings never move; zf_pool_free releases them all. A string is found again from
 * a 32-bit handle, which is what an archive reader keeps instead of an 8-byte pointer.
 * All zero is an empty pool. */
typedef struct zf_pool {
  char **chunk;      /* 64 KiB chunks taking short strings, in order */
  char **big;        /* strings too long to share a chunk, one allocation each */
  uint32_t n, cap;   /* chunks */
  uint32_t nbig, bigcap;
  size_t used;       /* bytes taken in the last chunk */
} zf_pool;

/* A copy of s[0..n), NUL-terminated, or NULL when out of memory. */
char *zf_pool_put(zf_pool *p, const char *s, size_t n);
/* zf_pool_put, and the copy's handle in *h (zf_pool_at(p, *h) gives it back). NULL when
 * out of memory or when the pool holds 2 GiB of short strings or 2^31 long ones. */
char *zf_pool_put_h(zf_pool *p, const char *s, size_t n, uint32_t *h);
/* The string of handle h. */
static inline const char *zf_pool_at(const zf_pool *p, uint32_t h) {
  return h & 0x80000000u ? p->big[h & 0x7fffffffu] : p->chunk[h >> 16] + (h & 0xffffu);
}
void zf_pool_free(zf_pool *p);
/* Forgets every string but keeps the first chunk, for a pool used as scratch. */
void zf_pool_clear(zf_pool *p);

/* Whether the local header of an entry of this method and uncompressed size needs zip64. */
int zf_needs_zip64_local(int method, uint64_t usize);

/* Size of, and bytes of, the local header (including the name). */
size_t zf_local_size(const zf_entry *e);
size_t zf_local(unsigned char *buf, const zf_entry *e);

/* Same for the central directory record. */
size_t zf_central_size(const zf_entry *e);
size_t zf_central(unsigned char *buf, const zf_entry *e);

/* End records (zip64 end record and locator when needed, then the classic one). */
size_t zf_end_size(uint64_t count, uint64_t cd_offset, uint64_t cd_size);
size_t zf_end(unsigned char *buf, uint64_t count, uint64_t cd_offset, uint64_t cd_size);

/* DOS date and time of a Unix time (UTC), clamped to 1980..2107. */
void zf_dostime(int64_t t, uint16_t *dostime, uint16_t *dosdate);

/* The timestamp every entry gets: $SOURCE_DATE_EPOCH when set and valid, else
 * 1980-01-01T00:00:00Z. */
int64_t zf_default_epoch(void);

/* Normalised Unix mode: directories 040755, files 0100755 when any execute bit is set
 * on disk, else 0100644. */
uint32_t zf_norm_mode(int is_dir, uint32_t disk_mode);

/* NULL when the name is acceptable, else a short reason ("absolute name", ...). A name
 * ending with '/' is a directory; no other empty, "." or ".." component is allowed,
 * nor a backslash, a NUL byte, a drive letter or a leading '/'. */
const char *zf_check_name(const char *name, size_t len);

/* Whether an archive whose "version made by" is made_by came from a DOS or Windows file
 * system (APPNOTE 4.4.2: MS-DOS/FAT 0, OS/2 HPFS 6, Windows NTFS 10, VFAT 14), whose
 * tools may write a backslash between the components of a name. */
int zf_made_on_dos(uint16_t made_by);

/* Whether s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points
 * past U+10FFFF). */
int zf_utf8_valid(const char *s, size_t len);

/* The name a stored entry name stands for, by one rule: decoded as UTF-8 when it is
 * valid UTF-8, else as CP437 (refused when the entry's UTF-8 flag says it is UTF-8);
 * a backslash read as a separator when dos, else refused; "." components followed by '/'
 * dropped ("./" alone leaves "", the archive's root); then zf_check_name. *out gets a
 * NUL-terminated malloc'd copy of the name (*outlen bytes) and *why NULL; or, when the
 * name is refused, *why the reason and *out the stored name decoded for messages.
 * Returns -1 only when out of memory. */
int zf_read_name(const char *raw, size_t len, int utf8_flag, int dos, char **out,
                 size_t *outlen, const char **why);

/* Sorts idx[0..n) by cmp (stable), with a buffer of n indexes: 4 bytes an entry where a
 * sort of pointers or records takes 8 to 24. Returns -1 when out of memory. */
typedef int (*zf_idx_cmp)(const void *ctx, uint32_t a, uint32_t b);
int zf_sort_idx(uint32_t *idx, size_t n, zf_idx_cmp cmp, const void *ctx);

/* Name i of a collection: *p (not necessarily NUL-terminated) and *len bytes. */
typedef void (*zf_name_at)(const void *ctx, size_t i, const char **p, size_t *len);

/* Finds two of the n names that are equal, or equal once ASCII case is folded, ignoring
 * one trailing '/'. Returns 0 when all differ, else 1 (exact duplicate) or 2 (case-only)
 * with the indexes in *a < *b. Returns -1 when out of memory (or n > UINT32_MAX). */
int zf_find_duplicate(size_t n, zf_name_at at, const void *ctx, size_t *a, size_t *b);

/* Little-endian field access. */
static inline void zf_put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static inline void zf_put32(unsigned char *p, uint32_t v) {
  zf_put16(p, (uint16_t)v);
  zf_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void zf_put64(unsigned char *p, uint64_t v) {
  zf_put32(p, (uint32_t)v);
  zf_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t zf_get16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t zf_get32(const unsigned char *p) {
  return (uint32_t)zf_get16(p) | ((uint32_t)zf_get16(p + 2) << 16);
}
static inline uint64_t zf_get64(const unsigned char *p) {
  return (uint64_t)zf_get32(p) | ((uint64_t)zf_get32(p + 4) << 32);
}

#endif
