/*
 * Unit tests of the zip record layer: entry-name rules, duplicate detection, DOS times,
 * that every record's computed size is the size written (the stream relies on it), and
 * that fields are little-endian at any address whatever the processor's byte order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zipfmt.h"

#include "check.h"

static void test_names(void) {
  static const char *const good[] = {"a", "a/b.txt", "dir/", "a/b/c/", "..a", "a..", ".hidden",
                                     "a/.b", "é.txt"};
  static const char *const bad[] = {"", "/abs", "C:/x", "c:x", "a\\b", "..", "../x", "a/../b",
                                    "a/..", "./a", "a/./b", "a//b", "//x", "a/b//"};
  size_t i;
  for (i = 0; i < sizeof good / sizeof *good; i++)
    CHECK(zf_check_name(good[i], strlen(good[i])) == NULL);
  for (i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK(zf_check_name(bad[i], strlen(bad[i])) != NULL);
  CHECK(zf_check_name("a\0b", 3) != NULL);
}

typedef struct names {
  const char **p;
  const size_t *len;
} names;

static void name_at(const void *ctx, size_t i, const char **p, size_t *len) {
  const names *n = ctx;
  *p = n->p[i];
  *len = n->len[i];
}

static void test_duplicates(void) {
  const char *p[] = {"b", "A/", "c", "a", "B/x"};
  size_t lens[] = {1, 2, 1, 1, 3}, a = 0, b = 0;
  names n = {p, lens};
  CHECK(zf_find_duplicate(5, name_at, &n, &a, &b) == 2);
  CHECK(a == 1 && b == 3);
  p[1] = "a/";
  CHECK(zf_find_duplicate(5, name_at, &n, &a, &b) == 1); /* "a/" and "a" */
  CHECK(a == 1 && b == 3);
  p[1] = "d";
  lens[1] = 1;
  CHECK(zf_find_duplicate(5, name_at, &n, &a, &b) == 0);
}

static int cmp_u32(const void *ctx, uint32_t a, uint32_t b) {
  const uint32_t *key = ctx;
  return key[a] < key[b] ? -1 : key[a] > key[b];
}

/* the merge sort against a plain check: ordered, a permutation, stable */
static void test_sort_idx(void) {
  size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 4097}, s, i;
  for (s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = sizes[s];
    uint32_t *key = malloc((n + 1) * sizeof *key), *idx = malloc((n + 1) * sizeof *idx);
    unsigned char *seen = calloc(n + 1, 1);
    uint32_t r = 12345;
    for (i = 0; i < n; i++) {
      r = r * 1103515245u + 12345u;
      key[i] = (r >> 16) % 50; /* many equal keys */
      idx[i] = (uint32_t)i;
    }
    CHECK(zf_sort_idx(idx, n, cmp_u32, key) == 0);
    for (i = 0; i < n; i++) {
      CHECK(idx[i] < n && !seen[idx[i]]);
      seen[idx[i]] = 1;
      if (i > 0) {
        CHECK(key[idx[i - 1]] <= key[idx[i]]);
        if (key[idx[i - 1]] == key[idx[i]])
          CHECK(idx[i - 1] < idx[i]);
      }
    }
    free(key);
    free(idx);
    free(seen);
  }
}

static void test_times(void) {
  uint16_t t, d;
  zf_dostime(0, &t, &d);
  CHECK(t == 0 && d == 0x21);
  zf_dostime(1700000000, &t, &d); /* 2023-11-14 22:13:20 */
  CHECK(d == (uint16_t)((43 << 9) | (11 << 5) | 14));
  CHECK(t == (uint16_t)((22 << 11) | (13 << 5) | 10));
  setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  CHECK(zf_default_epoch() == 1700000000);
  setenv("SOURCE_DATE_EPOCH", "garbage", 1);
  CHECK(zf_default_epoch() == 315532800);
  unsetenv("SOURCE_DATE_EPOCH");
  CHECK(zf_norm_mode(0, 0100700) == 0100755);
  CHECK(zf_norm_mode(0, 0100600) == 0100644);
  CHECK(zf_norm_mode(1, 0) == 040755);
}

static void test_sizes(void) {
  unsigned char buf[ZF_HEADER_SLACK + 64];
  zf_entry e;
  uint64_t usizes[] = {0, 5, 0xfffffffeull, 0xffffffffull, 5ull << 32};
  uint64_t offsets[] = {0, 0xfffffffeull, 0xffffffffull, 6ull << 32};
  size_t i, k;
  memset(&e, 0, sizeof e);
  e.name = "some/name.bin";
  e.namelen = strlen(e.name);
  e.mode = 0100644;
  for (i = 0; i < 5; i++)
    for (k = 0; k < 4; k++) {
      int m;
      for (m = 0; m <= 8; m += 8) {
        e.method = (uint16_t)m;
        e.usize = e.csize = usizes[i];
        e.offset = offsets[k];
        e.zip64_local = zf_needs_zip64_local(m, e.usize);
        CHECK(zf_local(buf, &e) == zf_local_size(&e));
        CHECK(zf_central(buf, &e) == zf_central_size(&e));
        CHECK(zf_get32(buf) == ZF_SIG_CENTRAL);
        if (e.offset >= ZF_MAX32 || e.usize >= ZF_MAX32)
          CHECK(zf_get16(buf + 30) > 0 && zf_get16(buf + 6) == 45);
      }
    }
  CHECK(zf_end(buf, 3, 100, 200) == zf_end_size(3, 100, 200));
  CHECK(zf_end_size(3, 100, 200) == ZF_EOCD_FIXED);
  CHECK(zf_end(buf, 70000, 100, 200) == ZF_END_MAX);
  CHECK(zf_get32(buf) == ZF_SIG_EOCD64 && zf_get64(buf + 32) == 70000);
  CHECK(zf_get16(buf + ZF_EOCD64_FIXED + ZF_LOC64_FIXED + 10) == 0xffff);
  CHECK(zf_end_size(1, 5ull << 32, 10) == ZF_END_MAX);
}

/* Zip fields are little-endian and sit at odd offsets: the helpers must write and read
 * exactly these bytes at every alignment, on a big-endian processor too. */
static void test_byte_order(void) {
  static const unsigned char le64[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
  unsigned char buf[24];
  size_t off;
  for (off = 0; off < 8; off++) {
    memset(buf, 0xee, sizeof buf);
    zf_put16(buf + off, 0x0201);
    CHECK(buf[off] == 0x01 && buf[off + 1] == 0x02 && buf[off + 2] == 0xee);
    CHECK(off == 0 || buf[off - 1] == 0xee);
    zf_put32(buf + off, 0x04030201u);
    CHECK(memcmp(buf + off, "\x01\x02\x03\x04", 4) == 0 && buf[off + 4] == 0xee);
    zf_put64(buf + off, 0x0102030405060708ull);
    CHECK(memcmp(buf + off, le64, 8) == 0 && buf[off + 8] == 0xee);
    CHECK(zf_get64(buf + off) == 0x0102030405060708ull);
    CHECK(zf_get32(buf + off) == 0x05060708u && zf_get16(buf + off + 6) == 0x0102);
    memcpy(buf + off + 1, "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", 8);
    CHECK(zf_get16(buf + off + 1) == 0xfeffu);
    CHECK(zf_get32(buf + off + 1) == 0xfcfdfeffu);
    CHECK(zf_get64(buf + off + 1) == 0xf8f9fafbfcfdfeffull);
  }
}

int main(void) {
  test_byte_order();
  test_names();
  test_duplicates();
  test_sort_idx();
  test_times();
  test_sizes();
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
