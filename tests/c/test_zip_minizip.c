/*
 * The writer's archives as minizip (the reference C reader) sees them: parallel deflate
 * blocks form one valid stream with the right CRC, stored and directory entries come
 * back intact, and the one-pass stream equals the stored archive byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <minizip/unzip.h>

#include "zipread.h"
#include "zipwrite.h"

#include "zipcheck.h"

static char dir[] = "/tmp/test_zip_minizip.XXXXXX";

static unsigned char *make_data(size_t n, int text) {
  unsigned char *p = malloc(n);
  uint64_t x = 88172645463325252ull;
  size_t i;
  for (i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = text ? (unsigned char)("model weights and labels\n"[(i / 3 + (x & 3)) % 25])
                : (unsigned char)x;
  }
  return p;
}

int main(void) {
  size_t bign = 5 * ZW_BLOCK + 12345, rn = 300000, n1, n2;
  unsigned char *big = make_data(bign, 1), *rnd = make_data(rn, 0), *a, *b;
  char p_big[128], p_rnd[128], p_zip[128], p_store[128];
  zw_plan plan;
  zw_writer *w;
  zerr err;
  unzFile uf;
  zs_stream *s;
  size_t which;
  if (mkdtemp(dir) == NULL)
    return 1;
  snprintf(p_big, sizeof p_big, "%s/big.txt", dir);
  snprintf(p_rnd, sizeof p_rnd, "%s/rnd.bin", dir);
  snprintf(p_zip, sizeof p_zip, "%s/out.zip", dir);
  snprintf(p_store, sizeof p_store, "%s/store.zip", dir);
  put(p_big, big, bign);
  put(p_rnd, rnd, rn);

  zw_plan_init(&plan);
  CHECK(zw_plan_add(&plan, p_big, "data/big.txt", ZW_AUTO, 6, &err) == 0);
  CHECK(zw_plan_add(&plan, p_rnd, "data/rnd.bin", ZW_AUTO, 6, &err) == 0);
  CHECK(zw_plan_add_dir(&plan, "data/empty", &err) == 0);
  CHECK(zw_plan_sort(&plan, &err) == 0);
  w = zw_open(p_zip, 2, -1, &err);
  CHECK(w != NULL);
  CHECK(zw_add(w, plan.items, plan.n, NULL, &err) == 0);
  CHECK(zw_count(w) == 3);
  CHECK(zw_entry(w, 0)->method == ZF_DEFLATE); /* data/big.txt */
  CHECK(zw_entry(w, 2)->method == ZF_STORE);   /* data/rnd.bin */
  CHECK(zw_finish(w, &err) == 0);
  zw_free(w);

  uf = unzOpen64(p_zip);
  CHECK(uf != NULL);
  if (uf) {
    unz_global_info64 gi;
    CHECK(unzGetGlobalInfo64(uf, &gi) == UNZ_OK && gi.number_entry == 3);
    check_entry(uf, "data/big.txt", big, bign);
    check_entry(uf, "data/rnd.bin", rnd, rn);
    CHECK(unzLocateFile(uf, "data/empty/", 1) == UNZ_OK);
    unzClose(uf);
  }

  /* our own reader agrees, and the stream equals the stored archive */
  {
    zr_archive ar;
    zr_limits lim;
    uint64_t bytes = 0;
    memset(&lim, 0, sizeof lim);
    CHECK(zr_open_file(&ar, p_zip, 0, &err) == 0);
    CHECK(zr_check(&ar, &lim, &err) == 0);
    CHECK(zr_verify(&ar, &lim, NULL, &bytes, &err) == 0);
    CHECK(bytes == bign + rn);
    zr_close(&ar);
  }
  CHECK(zw_plan_all_stored(&plan, &which, &err) == 1); /* the text would be deflated */
  plan.items[0].method = ZW_STORE;
  CHECK(zw_plan_all_stored(&plan, &which, &err) == 0);
  w = zw_open(p_store, 1, -1, &err);
  CHECK(w && zw_add(w, plan.items, plan.n, NULL, &err) == 0 && zw_finish(w, &err) == 0);
  zw_free(w);
  s = zs_new(&plan, -1, &err);
  CHECK(s != NULL);
  a = slurp(p_store, &n1);
  if (s && a) {
    unsigned char *buf = malloc(zs_size(s) + 1);
    size_t got = 0, r;
    while ((r = zs_read(s, buf + got, 4099, &err)) > 0 && r != (size_t)-1)
      got += r;
    CHECK(r == 0);
    CHECK(got == zs_size(s) && got == n1 && memcmp(buf, a, n1) == 0);
    CHECK(zs_reset(s, &err) == 0);
    b = malloc(100);
    CHECK(zs_read(s, b, 100, &err) == 100 && memcmp(b, a, 100) == 0);
    free(b);
    free(buf);
  }
  (void)n2;
  free(a);
  zs_free(s);
  zw_plan_free(&plan);
  free(big);
  free(rnd);
  unlink(p_big);
  unlink(p_rnd);
  unlink(p_zip);
  unlink(p_store);
  rmdir(dir);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
