/*
 * File and archive helpers of the zip writer's C tests: write and read back whole files,
 * and read one entry through minizip (the reference C reader, which checks the CRC when
 * the entry is closed) to compare it with the bytes expected.
 */
#ifndef SKAFOS_TEST_ZIPCHECK_H
#define SKAFOS_TEST_ZIPCHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <minizip/unzip.h>

#include "check.h"

static void put(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return;
  fwrite(p, 1, n, f);
  fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *p;
  long len;
  *n = 0;
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  rewind(f);
  p = malloc((size_t)len + 1);
  *n = fread(p, 1, (size_t)len, f);
  fclose(f);
  return p;
}

/* Reads entry `name` through minizip (which checks the CRC at close) and compares. */
static void check_entry(unzFile uf, const char *name, const unsigned char *want, size_t n) {
  unsigned char *got = malloc(n + 1);
  size_t total = 0;
  int r = -1;
  CHECK(unzLocateFile(uf, name, 1) == UNZ_OK);
  CHECK(unzOpenCurrentFile(uf) == UNZ_OK);
  while ((r = unzReadCurrentFile(uf, got + total, (unsigned)(n + 1 - total))) > 0)
    total += (size_t)r;
  CHECK(r == 0);
  CHECK(total == n && memcmp(got, want, n) == 0);
  CHECK(unzCloseCurrentFile(uf) == UNZ_OK); /* UNZ_CRCERROR on a bad CRC */
  free(got);
}

#endif
