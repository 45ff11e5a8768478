/*
 * CRC-32 by the processor: on x86, 16-byte blocks folded with carry-less multiplication
 * (PCLMULQDQ, or VPCLMULQDQ on four blocks at once); on 64-bit ARM, the ARMv8 CRC32
 * instructions. Chosen once at run time; anything else gets zlib's crc32.
 */
#include <pthread.h>
#include <string.h>

#include <zlib.h>

#include "crc32x.h"

static uint32_t crc_zlib(uint32_t crc, const void *p, size_t n) {
  return (uint32_t)crc32_z(crc, p, n);
}

/* CMake's checks (cmake/features.cmake) say the compiler can emit the instructions. */
#if defined(SKAFOS_HAVE_X86_CLMUL) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_CLMUL 1
#include <immintrin.h>

/*
 * The arithmetic. Bit i of a 128-bit register loaded from 16 message bytes (little
 * endian, so bit 0 is the low bit of the first byte, the first bit the CRC sees) is the
 * coefficient of x^(127-i); bit i of a 64-bit half is that of x^(63-i). With these
 * "reflected" readings, clmul(a, b) of two 64-bit halves is x * a(x) * b(x) as a 128-bit
 * register, and a 32-bit constant c = rev32(g) in the low half of b reads as x^32 * g(x).
 * So clmul(a, rev32(x^e mod P)) is congruent to a(x) * x^(e+33) modulo P.
 *
 * Folding a block A forward by d bits, onto the block that starts d bits later: A is
 * lo(x) * x^64 + hi(x) (lo: the first 8 bytes), and A * x^d mod P is congruent to
 *   clmul(lo, rev32(x^(d+31) mod P)) ^ clmul(hi, rev32(x^(d-33) mod P)),
 * a register of at most 127 bits that is XORed into the later block. The message's CRC
 * only depends on the message modulo P, so the last block left after folding has the
 * CRC of everything before it. The starting CRC is XORed into the first four bytes
 * (complemented, as zlib does), and the last block goes through zlib from the starting
 * value 0xffffffff, which undoes the complement: the result is zlib's CRC of the data.
 *
 * rev32(x^e mod P) is computed by multiplying by x e times in the reflected form (a
 * right shift, reduced by the polynomial when x^32 appears), the way a bitwise CRC does.
 */
static uint32_t xpow_mod(unsigned e) {
  uint32_t v = 0x80000000u; /* x^0 */
  while (e--)
    v = (v >> 1) ^ (0xedb88320u & (0u - (v & 1u)));
  return v;
}

/* Fold distances in bits; each constant pair is {lo multiplier, hi multiplier}. */
enum { K128, K256, K384, K512, K1024, K1536, K2048, NK };
static const unsigned fold_bits[NK] = {128, 256, 384, 512, 1024, 1536, 2048};
static uint64_t fold_k[NK][2];

#define CLMUL __attribute__((target("pclmul,sse4.1")))
#define VCLMUL __attribute__((target("pclmul,sse4.1,avx2,avx512f,vpclmulqdq")))

CLMUL static inline __m128i kload(int d) { return _mm_loadu_si128((const __m128i *)fold_k[d]); }

CLMUL static inline __m128i fold(__m128i x, __m128i k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

CLMUL static inline __m128i load(const unsigned char *p) {
  return _mm_loadu_si128((const __m128i *)p);
}

/* x holds the blocks before p; folds in the remaining whole blocks, then hands the
 * last block and the n % 16 tail bytes to zlib. */
CLMUL static uint32_t finish(__m128i x, const unsigned char *p, size_t n) {
  const __m128i k = kload(K128);
  unsigned char last[16];
  uint32_t crc;
  for (; n >= 16; p += 16, n -= 16)
    x = _mm_xor_si128(fold(x, k), load(p));
  _mm_storeu_si128((__m128i *)last, x);
  crc = (uint32_t)crc32_z(0xffffffffUL, last, 16);
  return n ? (uint32_t)crc32_z(crc, p, n) : crc;
}

/* n >= 64: four blocks in flight, 64 bytes a round. */
CLMUL static uint32_t crc_pclmul_body(uint32_t crc, const unsigned char *p, size_t n) {
  const __m128i k = kload(K512);
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128((int)~crc));
  __m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
    x0 = _mm_xor_si128(fold(x0, k), load(p));
    x1 = _mm_xor_si128(fold(x1, k), load(p + 16));
    x2 = _mm_xor_si128(fold(x2, k), load(p + 32));
    x3 = _mm_xor_si128(fold(x3, k), load(p + 48));
  }
  x0 = _mm_xor_si128(_mm_xor_si128(fold(x0, kload(K384)), fold(x1, kload(K256))),
                     _mm_xor_si128(fold(x2, kload(K128)), x3));
  return finish(x0, p, n);
}

VCLMUL static inline __m512i kload4(int d) { return _mm512_broadcast_i32x4(kload(d)); }

VCLMUL static inline __m512i fold4(__m512i x, __m512i k) {
  return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00),
                          _mm512_clmulepi64_epi128(x, k, 0x11));
}

VCLMUL static inline __m512i load4(const unsigned char *p) { return _mm512_loadu_si512(p); }

/* n >= 256: four registers of four blocks, 256 bytes a round. */
VCLMUL static uint32_t crc_vpclmul_body(uint32_t crc, const unsigned char *p, size_t n) {
  __m512i k = kload4(K2048);
  __m512i z0 = _mm512_xor_si512(load4(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
  __m512i z1 = load4(p + 64), z2 = load4(p + 128), z3 = load4(p + 192);
  __m128i x;
  for (p += 256, n -= 256; n >= 256; p += 256, n -= 256) {
    z0 = _mm512_xor_si512(fold4(z0, k), load4(p));
    z1 = _mm512_xor_si512(fold4(z1, k), load4(p + 64));
    z2 = _mm512_xor_si512(fold4(z2, k), load4(p + 128));
    z3 = _mm512_xor_si512(fold4(z3, k), load4(p + 192));
  }
  z0 = _mm512_xor_si512(_mm512_xor_si512(fold4(z0, kload4(K1536)), fold4(z1, kload4(K1024))),
                        _mm512_xor_si512(fold4(z2, kload4(K512)), z3));
  for (k = kload4(K512); n >= 64; p += 64, n -= 64)
    z0 = _mm512_xor_si512(fold4(z0, k), load4(p));
  x = _mm_xor_si128(_mm_xor_si128(fold(_mm512_castsi512_si128(z0), kload(K384)),
                                  fold(_mm512_extracti32x4_epi32(z0, 1), kload(K256))),
                    _mm_xor_si128(fold(_mm512_extracti32x4_epi32(z0, 2), kload(K128)),
                                  _mm512_extracti32x4_epi32(z0, 3)));
  return finish(x, p, n);
}

static uint32_t crc_pclmul(uint32_t crc, const void *p, size_t n) {
  if (p == NULL || n < 64)
    return crc_zlib(crc, p, n);
  return crc_pclmul_body(crc, p, n);
}

static uint32_t crc_vpclmul(uint32_t crc, const void *p, size_t n) {
  if (p == NULL || n < 64)
    return crc_zlib(crc, p, n);
  return n < 256 ? crc_pclmul_body(crc, p, n) : crc_vpclmul_body(crc, p, n);
}
#endif

#if defined(SKAFOS_HAVE_ARM_CRC32) && defined(__aarch64__) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_ARM_CRC32 1
#include <arm_acle.h>
#if defined(SKAFOS_HAVE_GETAUXVAL_HWCAP_CRC32)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(SKAFOS_HAVE_SYSCTLBYNAME)
#include <sys/types.h>
#include <sys/sysctl.h>
#endif

#if defined(__ARM_FEATURE_CRC32)
#define ARMCRC
#elif defined(__clang__)
#define ARMCRC __attribute__((target("crc")))
#else
#define ARMCRC __attribute__((target("+crc")))
#endif

/*
 * The CRC32B/H/W/X instructions compute zlib's polynomial, reflected, without the
 * complement before and after: zlib's crc32(c, data) is ~raw(~c, data). A word loaded
 * little-endian (memcpy: no unaligned access is assumed) holds the message bytes in the
 * order CRC32X consumes them. Leading bytes go one at a time up to an 8-byte boundary.
 */
ARMCRC static uint32_t crc_armv8(uint32_t crc, const void *buf, size_t n) {
  const unsigned char *p = buf;
  uint32_t c;
  uint64_t w[4];
  if (p == NULL)
    return 0;
  c = ~crc;
  for (; n > 0 && ((uintptr_t)p & 7) != 0; p++, n--)
    c = __crc32b(c, *p);
  for (; n >= 32; p += 32, n -= 32) {
    memcpy(w, p, 32);
    c = __crc32d(c, w[0]);
    c = __crc32d(c, w[1]);
    c = __crc32d(c, w[2]);
    c = __crc32d(c, w[3]);
  }
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(w, p, 8);
    c = __crc32d(c, w[0]);
  }
  for (; n > 0; p++, n--)
    c = __crc32b(c, *p);
  return ~c;
}

/* Whether this processor runs the instructions, as the system reports it. */
static int arm_has_crc32(void) {
#if defined(SKAFOS_HAVE_GETAUXVAL_HWCAP_CRC32)
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#elif defined(SKAFOS_HAVE_SYSCTLBYNAME)
  int on = 0;
  size_t len = sizeof on;
  return sysctlbyname("hw.optional.armv8_crc32", &on, &len, NULL, 0) == 0 && on != 0;
#elif defined(__ARM_FEATURE_CRC32)
  return 1; /* compiled for processors that all have them */
#else
  return 0;
#endif
}
#endif

static struct {
  zcrc32_fn fn;
  const char *name;
} variants[3] = {{crc_zlib, "zlib"}};
static int nvariants = 1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
#ifdef HAVE_CLMUL
  int i;
  for (i = 0; i < NK; i++) {
    fold_k[i][0] = xpow_mod(fold_bits[i] + 31);
    fold_k[i][1] = xpow_mod(fold_bits[i] - 33);
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) {
    variants[nvariants].fn = crc_pclmul;
    variants[nvariants++].name = "pclmulqdq";
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq")) {
      variants[nvariants].fn = crc_vpclmul;
      variants[nvariants++].name = "vpclmulqdq";
    }
  }
#endif
#ifdef HAVE_ARM_CRC32
  if (arm_has_crc32()) {
    variants[nvariants].fn = crc_armv8;
    variants[nvariants++].name = "armv8-crc32";
  }
#endif
}

zcrc32_fn zcrc32_variant(int i, const char **name) {
  pthread_once(&once, choose);
  if (i < 0 || i >= nvariants)
    return NULL;
  if (name)
    *name = variants[i].name;
  return variants[i].fn;
}

uint32_t zcrc32(uint32_t crc, const void *p, size_t n) {
  if (n < 64)
    return crc_zlib(crc, p, n);
  pthread_once(&once, choose);
  return variants[nvariants - 1].fn(crc, p, n);
}
