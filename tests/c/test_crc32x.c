/*
 * Unit tests of zcrc32: every implementation this processor runs gives zlib's crc32 for
 * every length from 0 to past 5000, multi-MiB buffers, misaligned starts and any split;
 * the processor's fast path is among them whenever the build and the processor have one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "crc32x.h"

#if defined(SKAFOS_HAVE_ARM_CRC32) && defined(SKAFOS_HAVE_GETAUXVAL_HWCAP_CRC32) && \
    defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "check.h"

#define BIG (5u * 1024u * 1024u + 77u)

/* xorshift64*: the same bytes on every run, so a failure can be replayed. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1du;
}

static uint32_t ref(uint32_t crc, const unsigned char *p, size_t n) {
  return (uint32_t)crc32_z(crc, p, n);
}

/* A copy at every offset 0..63 from a 64-byte boundary, so the loads see each alignment
 * and the bytes just past the end belong to no one (ASan would notice a read there). */
static void test_lengths(zcrc32_fn f, const char *name, const unsigned char *data) {
  size_t n;
  int bad = 0;
  for (n = 0; n <= 5000 && !bad; n++) {
    size_t off = (size_t)(next() % 64);
    unsigned char *buf = malloc(n + 64);
    uint32_t seed = (n % 3 == 0) ? 0 : (uint32_t)next();
    CHECK(buf != NULL);
    if (buf == NULL)
      return;
    memcpy(buf + off, data + n, n);
    if (f(seed, buf + off, n) != ref(seed, data + n, n)) {
      fprintf(stderr, "%s: length %zu at offset %zu differs from zlib\n", name, n, off);
      bad = 1;
    }
    free(buf);
  }
  CHECK(!bad);
}

static void test_big(zcrc32_fn f, const char *name, const unsigned char *data) {
  static const size_t lens[] = {BIG, 4u << 20, (3u << 20) + 1, (2u << 20) - 17};
  size_t i;
  for (i = 0; i < sizeof lens / sizeof *lens; i++) {
    size_t off = i * 7 % 64;
    if (f(0, data + off, lens[i] - off) != ref(0, data + off, lens[i] - off)) {
      fprintf(stderr, "%s: %zu bytes differ from zlib\n", name, lens[i] - off);
      failures++;
    }
  }
}

/* The CRC of a buffer fed in random pieces, small and large, is the whole buffer's. */
static void test_splits(zcrc32_fn f, const char *name, const unsigned char *data) {
  uint32_t whole = ref(0, data, BIG);
  int round;
  for (round = 0; round < 40; round++) {
    size_t pos = 0;
    uint32_t crc = 0;
    while (pos < BIG) {
      uint64_t r = next();
      size_t max = (r & 3) == 0 ? 300000 : (r & 3) == 1 ? 5000 : (r & 3) == 2 ? 300 : 20;
      size_t piece = (size_t)((r >> 8) % (max + 1));
      if (piece > BIG - pos)
        piece = BIG - pos;
      crc = f(crc, data + pos, piece);
      pos += piece;
    }
    if (crc != whole) {
      fprintf(stderr, "%s: split round %d differs from zlib\n", name, round);
      failures++;
      return;
    }
  }
}

static const char *name_of(int k) {
  const char *name = "";
  zcrc32_variant(k, &name);
  return name;
}

static void test_contract(zcrc32_fn f) {
  static const unsigned char check[] = "123456789";
  CHECK(f(0, check, 9) == 0xcbf43926u); /* the standard check value */
  CHECK(f(0x1234, NULL, 0) == 0);        /* zlib's "initial value" call */
  CHECK(f(0xcbf43926u, check, 0) == 0xcbf43926u);
  CHECK(f(0, check, 4) != f(0, check, 5));
}

/* The name of the fast path this processor must get from this build, or NULL for none:
 * what the system says the processor has, asked here independently of crc32x.c. */
static const char *expected_fast_path(void) {
#if defined(SKAFOS_HAVE_X86_CLMUL) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq")
               ? "vpclmulqdq"
               : "pclmulqdq";
#endif
#if defined(SKAFOS_HAVE_ARM_CRC32) && defined(SKAFOS_HAVE_GETAUXVAL_HWCAP_CRC32) && \
    defined(__aarch64__)
  if (getauxval(AT_HWCAP) & HWCAP_CRC32)
    return "armv8-crc32";
#endif
  return NULL;
}

int main(void) {
  unsigned char *data = malloc(BIG + 5001);
  const char *name = NULL;
  zcrc32_fn f;
  size_t i;
  int k, count = 0;
  if (data == NULL)
    return 2;
  for (i = 0; i < BIG + 5001; i++)
    data[i] = (unsigned char)(next() >> 56);
  for (k = 0; (f = zcrc32_variant(k, &name)) != NULL; k++) {
    int before = failures;
    test_contract(f);
    test_lengths(f, name, data);
    test_big(f, name, data);
    test_splits(f, name, data);
    printf("zcrc32 %s: %s\n", name, failures == before ? "ok" : "FAILED");
    count++;
  }
  CHECK(count >= 1);
  /* zcrc32 uses the last one: the fast path, or zlib's when there is none */
  {
    const char *want = expected_fast_path(), *last = NULL;
    zcrc32_variant(count - 1, &last);
    printf("zcrc32 uses %s\n", last ? last : "?");
    CHECK(last != NULL && strcmp(last, want ? want : "zlib") == 0);
    CHECK(strcmp(name_of(0), "zlib") == 0);
  }
  test_contract(zcrc32);
  CHECK(zcrc32(0, data, BIG) == ref(0, data, BIG));
  free(data);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  return 0;
}
