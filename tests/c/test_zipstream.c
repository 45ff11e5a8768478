/*
 * The one-pass stream against the writer: with files checksummed in several pieces and
 * many small ones, closed while the checksum pass runs, and read again after a file
 * that changed under the pass is put back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zipwrite.h"

#include "check.h"

#define SMALL 120

static char dir[] = "/tmp/test_zipstream.XXXXXX";

static unsigned char *make_data(size_t n, uint64_t x) {
  unsigned char *p = malloc(n ? n : 1);
  size_t i;
  for (i = 0; p && i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = (unsigned char)x;
  }
  return p;
}

static void put(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    CHECK(fwrite(p, 1, n, f) == n);
    CHECK(fclose(f) == 0);
  }
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *p;
  long len;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)len + 1)) == NULL) {
    if (f)
      fclose(f);
    return NULL;
  }
  *n = fread(p, 1, (size_t)len, f);
  fclose(f);
  return p;
}

/* The whole stream in reads of `step` bytes; NULL (err set) when a read fails. */
static unsigned char *drain(zs_stream *s, size_t step, size_t *n, zerr *err) {
  unsigned char *buf = malloc(zs_size(s) + 1);
  size_t got = 0, r;
  if (buf == NULL)
    return NULL;
  while ((r = zs_read(s, buf + got, step, err)) > 0 && r != (size_t)-1)
    got += r;
  if (r == (size_t)-1) {
    free(buf);
    return NULL;
  }
  *n = got;
  return buf;
}

int main(void) {
  /* more than two checksum pieces (32 MiB each), not a multiple of anything */
  size_t bign = (size_t)(70u << 20) + 4099, n = 0, wantn = 0, i;
  unsigned char *big = make_data(bign, 88172645463325252ull), *want, *got;
  char path[160], p_store[128];
  zw_plan plan;
  zw_writer *w;
  zs_stream *s;
  zerr err;
  if (big == NULL || mkdtemp(dir) == NULL)
    return 1;
  zw_plan_init(&plan);
  snprintf(path, sizeof path, "%s/big.bin", dir);
  put(path, big, bign);
  CHECK(zw_plan_add(&plan, path, "big.bin", ZW_STORE, 0, &err) == 0);
  for (i = 0; i < SMALL; i++) {
    size_t len = (i * 7919) % 20000;
    unsigned char *d = make_data(len, i + 1);
    char name[32];
    snprintf(name, sizeof name, "small/%03zu.bin", i);
    snprintf(path, sizeof path, "%s/%03zu.bin", dir, i);
    put(path, d, len);
    free(d);
    CHECK(zw_plan_add(&plan, path, name, ZW_STORE, 0, &err) == 0);
  }
  CHECK(zw_plan_add_dir(&plan, "small/empty", &err) == 0);
  CHECK(zw_plan_sort(&plan, &err) == 0);
  snprintf(p_store, sizeof p_store, "%s/store.zip", dir);
  w = zw_open(p_store, 2, -1, &err);
  CHECK(w && zw_add(w, plan.items, plan.n, NULL, &err) == 0 && zw_finish(w, &err) == 0);
  zw_free(w);
  want = slurp(p_store, &wantn);
  CHECK(want != NULL);

  /* the stream equals the stored archive, read in odd sizes, again after a reset */
  s = zs_new(&plan, -1, &err);
  CHECK(s != NULL && zs_size(s) == wantn);
  if (s && want) {
    got = drain(s, 65537, &n, &err);
    CHECK(got != NULL && n == wantn && memcmp(got, want, wantn) == 0);
    free(got);
    CHECK(zs_reset(s, &err) == 0);
    got = drain(s, 1000003, &n, &err);
    CHECK(got != NULL && n == wantn && memcmp(got, want, wantn) == 0);
    free(got);
  }
  zs_free(s);

  /* closed at once, with the checksum pass running: nothing leaks or hangs */
  s = zs_new(&plan, -1, &err);
  CHECK(s != NULL);
  zs_free(s);

  /* a file cut short before the pass reads it fails the read; put back, the next
   * attempt (a reset, as a retried upload does) gives the archive */
  snprintf(path, sizeof path, "%s/big.bin", dir);
  put(path, big, bign / 2);
  s = zs_new(&plan, -1, &err);
  CHECK(s != NULL);
  if (s && want) {
    got = drain(s, 65536, &n, &err);
    CHECK(got == NULL && strstr(err.msg, "changed while being archived") != NULL);
    put(path, big, bign);
    CHECK(zs_reset(s, &err) == 0);
    got = drain(s, 65536, &n, &err);
    CHECK(got != NULL && n == wantn && memcmp(got, want, wantn) == 0);
    free(got);
  }
  zs_free(s);

  /* changed after its checksum, same size: the read fails at the end of the file; the
   * next attempt checksums it again and gives the archive of the new contents */
  s = zs_new(&plan, -1, &err);
  CHECK(s != NULL);
  if (s && want) {
    unsigned char *want2;
    size_t want2n = 0;
    got = drain(s, 65536, &n, &err); /* every CRC is known now */
    CHECK(got != NULL && n == wantn && memcmp(got, want, wantn) == 0);
    free(got);
    big[bign / 3] ^= 0x5a;
    put(path, big, bign);
    CHECK(zs_reset(s, &err) == 0);
    got = drain(s, 65536, &n, &err);
    CHECK(got == NULL && strstr(err.msg, "changed while being archived") != NULL);
    CHECK(zs_reset(s, &err) == 0);
    got = drain(s, 65536, &n, &err);
    w = zw_open(p_store, 2, -1, &err);
    CHECK(w && zw_add(w, plan.items, plan.n, NULL, &err) == 0 && zw_finish(w, &err) == 0);
    zw_free(w);
    want2 = slurp(p_store, &want2n);
    CHECK(want2 != NULL && want2n == wantn && memcmp(want2, want, wantn) != 0);
    CHECK(got != NULL && want2 != NULL && n == want2n && memcmp(got, want2, n) == 0);
    free(got);
    free(want2);
  }
  zs_free(s);

  for (i = 0; i < SMALL; i++) {
    snprintf(path, sizeof path, "%s/%03zu.bin", dir, i);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/big.bin", dir);
  unlink(path);
  unlink(p_store);
  rmdir(dir);
  zw_plan_free(&plan);
  free(want);
  free(big);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
