/*
 * CRC-32 of zip and zlib (reflected polynomial 0xEDB88320), by carry-less multiplication
 * or CRC instructions where the processor has them and by zlib's crc32 everywhere else:
 * the same values.
 */
#ifndef SKAFOS_CRC32X_H
#define SKAFOS_CRC32X_H

#include <stddef.h>
#include <stdint.h>

/* zlib's crc32 with a size_t length: start from 0, feed the data in pieces of any size;
 * each call returns the CRC of everything fed so far. As in zlib, a NULL p returns 0.
 * Safe from any thread. */
uint32_t zcrc32(uint32_t crc, const void *p, size_t n);

/* For tests and benchmarks: the implementations this processor runs, zlib's at index 0
 * and the one zcrc32 uses last; NULL past the end. *name, when asked, gets a short name
 * ("zlib", "pclmulqdq", "vpclmulqdq", "armv8-crc32"). Each has zcrc32's contract. */
typedef uint32_t (*zcrc32_fn)(uint32_t crc, const void *p, size_t n);
zcrc32_fn zcrc32_variant(int i, const char **name);

#endif
