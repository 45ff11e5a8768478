/*
 * Unit tests of the ranged get's bookkeeping: the meta file's two formats (a bare ETag, or
 * the ranges done), what a kill mid-line leaves, and the ranges still missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pget.h"

#include "check.h"

static int parse(const char *text, pget_meta *m) { return pget_meta_parse(text, strlen(text), m); }

static void test_bare_etag(void) {
  pget_meta m;
  CHECK(parse("\"0123456789abcdef0123456789abcdef\"", &m) == 0);
  CHECK(m.ranged == 0 && m.size == -1 && m.ndone == 0);
  CHECK(strcmp(m.etag, "\"0123456789abcdef0123456789abcdef\"") == 0);
  pget_meta_free(&m);
  CHECK(parse("", &m) == -1);
  CHECK(parse("\"a\"\n\"b\"", &m) == -1);
  CHECK(parse("\"a\"\r", &m) == -1);
}

static void test_ranged(void) {
  pget_meta m;
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 100\ndone 10 19\ndone 0 9\ndone 50 59\n", &m) == 0);
  CHECK(m.ranged == 1 && m.size == 100 && strcmp(m.etag, "\"e\"") == 0);
  /* sorted and merged: 0-19 and 50-59 */
  CHECK(m.ndone == 2);
  CHECK(m.done[0].first == 0 && m.done[0].last == 19);
  CHECK(m.done[1].first == 50 && m.done[1].last == 59);
  pget_meta_free(&m);

  /* a line cut short by a kill is not counted, the rest is */
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 100\ndone 0 9\ndone 20 2", &m) == 0);
  CHECK(m.ndone == 1 && m.done[0].last == 9);
  pget_meta_free(&m);

  /* no size or ETag, a range past the end, junk: the whole file is refused */
  CHECK(parse("skafos-ranges 1\netag \"e\"\ndone 0 9\n", &m) == -1);
  CHECK(parse("skafos-ranges 1\nsize 100\n", &m) == -1);
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 100\ndone 90 100\n", &m) == -1);
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 100\ndone 9 0\n", &m) == -1);
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 100\nrm -rf 0 9\n", &m) == -1);
  CHECK(parse("skafos-ranges 1\netag \"e\"\nsize 99999999999999999999\n", &m) == -1);
  CHECK(m.done == NULL && m.ndone == 0);
}

static void test_missing(void) {
  pget_meta m;
  pget_range *r;
  size_t n;
  memset(&m, 0, sizeof m);
  CHECK(pget_missing(&m, 100, &r, &n) == 0);
  CHECK(n == 1 && r[0].first == 0 && r[0].last == 99);
  free(r);
  CHECK(pget_meta_add(&m, 0, 9) == 0);
  CHECK(pget_meta_add(&m, 40, 49) == 0);
  CHECK(pget_meta_add(&m, 90, 99) == 0);
  CHECK(pget_missing(&m, 100, &r, &n) == 0);
  CHECK(n == 2);
  CHECK(r[0].first == 10 && r[0].last == 39);
  CHECK(r[1].first == 50 && r[1].last == 89);
  free(r);
  CHECK(pget_meta_add(&m, 10, 39) == 0);
  CHECK(pget_meta_add(&m, 50, 89) == 0);
  CHECK(m.ndone == 1);
  CHECK(pget_missing(&m, 100, &r, &n) == 0);
  CHECK(n == 0);
  free(r);
  pget_meta_free(&m);
}

int main(void) {
  test_bare_etag();
  test_ranged();
  test_missing();
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
