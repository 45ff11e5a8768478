/*
 * Unit tests of how an archive reader keeps its entries: names found again from their
 * pool handles (short ones in shared chunks, long ones apart, across many chunks), and
 * entries packed into 32-byte slots that give back every field as it was set, including
 * the values that do not fit a slot (over 4 GiB, other methods, long names), also when a
 * packed entry is set again with such a value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zipread.h"

#include "check.h"

static void test_pool_handles(void) {
  zf_pool p;
  uint32_t h[3000], hl, hc;
  char buf[64], *big = malloc(40000);
  const char *r;
  size_t i;
  memset(&p, 0, sizeof p);
  /* 3000 names of 40-odd bytes fill more than one 64 KiB chunk */
  for (i = 0; i < 3000; i++) {
    snprintf(buf, sizeof buf, "dir%04zu/some-file-name-%06zu.bin", i / 100, i);
    CHECK(zf_pool_put_h(&p, buf, strlen(buf), &h[i]) != NULL);
  }
  CHECK(p.n >= 2);
  memset(big, 'x', 40000);
  big[39999] = 'y';
  CHECK((r = zf_pool_put_h(&p, big, 40000, &hl)) != NULL);
  CHECK(r != NULL && zf_pool_at(&p, hl) == r && r[39999] == 'y' && r[40000] == '\0');
  /* the chunk taking short names goes on after a long one */
  CHECK(zf_pool_put_h(&p, "after", 5, &hc) != NULL);
  CHECK(strcmp(zf_pool_at(&p, hc), "after") == 0);
  for (i = 0; i < 3000; i++) {
    snprintf(buf, sizeof buf, "dir%04zu/some-file-name-%06zu.bin", i / 100, i);
    CHECK(strcmp(zf_pool_at(&p, h[i]), buf) == 0);
  }
  /* a scratch pool keeps its first chunk and starts over */
  zf_pool_clear(&p);
  CHECK(p.n == 1 && p.nbig == 0 && p.used == 0);
  CHECK(zf_pool_put_h(&p, "again", 5, &hc) != NULL && hc == 0);
  CHECK(strcmp(zf_pool_at(&p, hc), "again") == 0);
  zf_pool_free(&p);
  CHECK(p.n == 0 && p.chunk == NULL);
  free(big);
}

static void put_name(zr_table *t, zr_entry *e, const char *name) {
  zerr err;
  CHECK(zr_entry_names(e, &t->names, name, strlen(name), 0, &err) == 0);
}

static int same(const zr_entry *a, const zr_entry *b) {
  return a->csize == b->csize && a->usize == b->usize && a->offset == b->offset &&
         a->namelen == b->namelen && a->crc == b->crc && a->data_delta == b->data_delta &&
         a->rawlen == b->rawlen && a->mode == b->mode && a->flags == b->flags &&
         a->method == b->method && a->is_dir == b->is_dir && a->is_symlink == b->is_symlink &&
         a->name_bad == b->name_bad && a->raw_apart == b->raw_apart &&
         a->dos_names == b->dos_names && a->listed == b->listed &&
         memcmp(a->name, b->name, a->namelen) == 0;
}

static void test_slots(void) {
  zr_table t;
  zr_entry e[6], got;
  char *longname = malloc(300000);
  size_t i;
  CHECK(sizeof(zr_slot) == 32);
  memset(&t, 0, sizeof t);
  memset(e, 0, sizeof e);
  /* 0: everything fits; all bits and the largest values a slot holds */
  put_name(&t, &e[0], "dir/file.txt");
  e[0].csize = UINT32_MAX - 1;
  e[0].usize = 7;
  e[0].offset = UINT32_MAX - 1;
  e[0].crc = 0xdeadbeef;
  e[0].data_delta = 30 + 65535 + 65535;
  e[0].mode = 0120755;
  e[0].flags = 0xffff;
  e[0].method = ZF_DEFLATE;
  e[0].is_symlink = e[0].listed = e[0].dos_names = e[0].name_bad = 1;
  /* 1: sizes over 4 GiB */
  put_name(&t, &e[1], "big.bin");
  e[1].csize = 5ull << 30;
  e[1].usize = 6ull << 30;
  e[1].offset = 12;
  /* 2: an offset over 4 GiB */
  put_name(&t, &e[2], "far/");
  e[2].offset = 9ull << 30;
  e[2].is_dir = 1;
  /* 3: a method other than store or deflate */
  put_name(&t, &e[3], "bzip2.bin");
  e[3].method = 12;
  /* 4: a name of 256 KiB or more (as a converted name can be) */
  memset(longname, 'n', 299999);
  longname[299999] = '\0';
  e[4].name = zf_pool_put_h(&t.names, longname, 299999, &e[4].name_h);
  CHECK(e[4].name != NULL);
  e[4].namelen = 299999;
  /* 5: a stored name that differs from the name (kept after it) */
  e[5].flags = 0; /* not UTF-8: read as CP437 */
  put_name(&t, &e[5], "caf\x82.txt");
  CHECK(e[5].raw_apart);
  for (i = 0; i < 6; i++)
    CHECK(zr_push(&t, &e[i]) == 0);
  CHECK(t.n == 6 && t.nw == 4);
  for (i = 0; i < 6; i++) {
    CHECK(same(zr_get(&t, i, &got), &e[i]));
    CHECK(zr_offset_of(&t, i) == e[i].offset);
    CHECK(zr_namelen_of(&t, i) == e[i].namelen);
    CHECK(memcmp(zr_name_of(&t, i), e[i].name, e[i].namelen) == 0);
  }
  CHECK(strcmp(zr_raw(zr_get(&t, 5, &got)), "caf\x82.txt") == 0);
  /* a packed entry set again with a value that does not fit moves to the side table */
  e[0].usize = UINT32_MAX;
  CHECK(zr_set(&t, 0, &e[0]) == 0);
  CHECK(t.nw == 5 && same(zr_get(&t, 0, &got), &e[0]));
  /* and a wide one set again keeps its record */
  e[1].csize = 1;
  CHECK(zr_set(&t, 1, &e[1]) == 0);
  CHECK(t.nw == 5 && same(zr_get(&t, 1, &got), &e[1]));
  for (i = 2; i < 6; i++)
    CHECK(same(zr_get(&t, i, &got), &e[i]));
  zr_table_free(&t);
  CHECK(t.n == 0 && t.s == NULL);
  free(longname);
}

int main(void) {
  test_pool_handles();
  test_slots();
  if (failures == 0)
    printf("ok\n");
  return failures != 0;
}
