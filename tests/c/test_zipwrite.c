/*
 * The writer's pipeline at its edges: whole entries batched into one job around the
 * batch limits and next to multi-block files, the same bytes whatever the thread count,
 * and files that vanish or change size between the plan and the write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <minizip/unzip.h>

#include "zipwrite.h"

#include "zipcheck.h"

static char dir[] = "/tmp/test_zipwrite.XXXXXX";

/* Deterministic bytes: text deflates, the rest does not. */
static unsigned char *make_data(size_t n, int text, uint64_t seed) {
  unsigned char *p = malloc(n ? n : 1);
  uint64_t x = 88172645463325252ull ^ seed;
  size_t i;
  for (i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = text ? (unsigned char)("tensor shape label bias\n"[(i / 5 + (x & 3)) % 24])
                : (unsigned char)x;
  }
  return p;
}

/* Sizes around the batch limit (128 KiB), the block size and the 64 entries a batch
 * takes; every tenth file incompressible. */
#define NFILES 160
static size_t size_of(int i) {
  static const size_t edges[] = {0,           1,           4095,         131071,
                                 131072,      131073,      ZW_BLOCK - 1, ZW_BLOCK,
                                 ZW_BLOCK + 1, 3 * ZW_BLOCK + 7};
  if (i < (int)(sizeof edges / sizeof edges[0]))
    return edges[i];
  return (size_t)(i * 37 % 5000);
}

static int make_archive(const char *zip, int threads, int method, zerr *err) {
  zw_plan plan;
  zw_writer *w;
  char src[160];
  int rc;
  zw_plan_init(&plan);
  snprintf(src, sizeof src, "%s/tree", dir);
  rc = zw_plan_add(&plan, src, NULL, method, 6, err);
  if (rc == 0)
    rc = zw_plan_sort(&plan, err);
  w = rc == 0 ? zw_open(zip, threads, 0, err) : NULL;
  if (w == NULL)
    rc = -1;
  if (rc == 0)
    rc = zw_add(w, plan.items, plan.n, NULL, err);
  if (rc == 0)
    rc = zw_finish(w, err);
  zw_free(w);
  zw_plan_free(&plan);
  return rc;
}

static void test_batches(void) {
  unsigned char *data[NFILES];
  char path[200], zip1[160], zip3[160];
  unsigned char *a, *b;
  size_t na, nb;
  zerr err;
  int i;
  unzFile uf;
  snprintf(path, sizeof path, "%s/tree", dir);
  CHECK(mkdir(path, 0755) == 0);
  snprintf(path, sizeof path, "%s/tree/sub", dir);
  CHECK(mkdir(path, 0755) == 0);
  for (i = 0; i < NFILES; i++) {
    data[i] = make_data(size_of(i), i % 10 != 3, (uint64_t)i);
    snprintf(path, sizeof path, "%s/tree/%sf%03d", dir, i % 7 == 0 ? "sub/" : "", i);
    put(path, data[i], size_of(i));
  }
  snprintf(zip1, sizeof zip1, "%s/one.zip", dir);
  snprintf(zip3, sizeof zip3, "%s/three.zip", dir);
  for (i = 0; i < 2; i++) { /* auto, then deflate everything */
    int method = i == 0 ? ZW_AUTO : ZW_DEFLATE, k;
    CHECK(make_archive(zip1, 1, method, &err) == 0);
    CHECK(make_archive(zip3, 3, method, &err) == 0);
    a = slurp(zip1, &na);
    b = slurp(zip3, &nb);
    CHECK(a != NULL && b != NULL && na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    uf = unzOpen64(zip3);
    CHECK(uf != NULL);
    if (uf == NULL)
      continue;
    {
      unz_global_info64 gi;
      CHECK(unzGetGlobalInfo64(uf, &gi) == UNZ_OK && gi.number_entry == NFILES + 2);
    }
    for (k = 0; k < NFILES; k++) {
      char name[64];
      snprintf(name, sizeof name, "tree/%sf%03d", k % 7 == 0 ? "sub/" : "", k);
      check_entry(uf, name, data[k], size_of(k));
    }
    CHECK(unzLocateFile(uf, "tree/sub/", 1) == UNZ_OK);
    unzClose(uf);
  }
  for (i = 0; i < NFILES; i++)
    free(data[i]);
}

/* Plans one file, changes it, then writes: the add fails naming the file and the writer
 * takes the next add as if the failed one never happened. */
static void test_changed(size_t size, int how) {
  char src[160], ok[160], zip[160];
  unsigned char *d = make_data(size, 1, size), *ok_data = make_data(1000, 1, 7);
  zw_plan plan, plan2;
  zw_writer *w;
  zerr err;
  unzFile uf;
  snprintf(src, sizeof src, "%s/changing.bin", dir);
  snprintf(ok, sizeof ok, "%s/ok.txt", dir);
  snprintf(zip, sizeof zip, "%s/changed.zip", dir);
  put(src, d, size);
  put(ok, ok_data, 1000);
  zw_plan_init(&plan);
  zw_plan_init(&plan2);
  CHECK(zw_plan_add(&plan, src, "changing.bin", ZW_AUTO, 6, &err) == 0);
  CHECK(zw_plan_add(&plan2, ok, "ok.txt", ZW_AUTO, 6, &err) == 0);
  if (how == 0)
    CHECK(truncate(src, (off_t)(size / 2)) == 0);
  else
    CHECK(unlink(src) == 0);
  w = zw_open(zip, 2, 0, &err);
  CHECK(w != NULL);
  if (w != NULL) {
    memset(&err, 0, sizeof err);
    CHECK(zw_add(w, plan.items, plan.n, NULL, &err) == -1);
    CHECK(strstr(err.msg, "changing.bin") != NULL);
    CHECK(strstr(err.msg, how == 0 ? "changed while being archived"
                                   : "No such file or directory") != NULL);
    CHECK(zw_count(w) == 0);
    CHECK(zw_add(w, plan2.items, plan2.n, NULL, &err) == 0);
    CHECK(zw_finish(w, &err) == 0);
    zw_free(w);
    uf = unzOpen64(zip);
    CHECK(uf != NULL);
    if (uf) {
      unz_global_info64 gi;
      CHECK(unzGetGlobalInfo64(uf, &gi) == UNZ_OK && gi.number_entry == 1);
      check_entry(uf, "ok.txt", ok_data, 1000);
      unzClose(uf);
    }
  }
  zw_plan_free(&plan);
  zw_plan_free(&plan2);
  unlink(src);
  unlink(ok);
  unlink(zip);
  free(d);
  free(ok_data);
}

int main(void) {
  char cmd[200];
  if (mkdtemp(dir) == NULL)
    return 1;
  test_batches();
  test_changed(5000, 0);             /* a whole entry, read by a worker */
  test_changed(5000, 1);
  test_changed(2 * ZW_BLOCK + 1, 0); /* a large file, opened by the writing thread */
  test_changed(2 * ZW_BLOCK + 1, 1);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
