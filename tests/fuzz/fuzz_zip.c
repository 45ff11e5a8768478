/*
 * libFuzzer target over the zip reader and extractors: any byte string is parsed, checked,
 * read entry by entry from memory, extracted from a file into a scratch directory, then
 * fed to the streaming extractor in chunks. Nothing may crash, leak, hang or write outside.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zipread.h"
#include "zipsink.h"

typedef struct mem {
  const uint8_t *p;
  size_t n;
} mem;

static int mem_pread(void *ud, void *buf, size_t n, uint64_t off) {
  const mem *m = ud;
  if (off > m->n || n > m->n - off)
    return -1;
  memcpy(buf, m->p + off, n);
  return 0;
}

static char scratch[] = "/tmp/fuzz_zip.XXXXXX";
static char archive[64], target[64], streamed[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mem m = {data, size};
  zr_io io = {mem_pread, &m, size};
  zr_archive a;
  zr_limits lim;
  zr_options o;
  zerr err;
  uint64_t bytes;
  FILE *f;
  if (scratch[strlen(scratch) - 1] == 'X') {
    if (mkdtemp(scratch) == NULL)
      abort();
    snprintf(archive, sizeof archive, "%s/in.zip", scratch);
    snprintf(target, sizeof target, "%s/out", scratch);
    snprintf(streamed, sizeof streamed, "%s/streamed", scratch);
  }
  memset(&lim, 0, sizeof lim);
  lim.max_size = 8u << 20; /* keep bombs cheap */
  lim.max_ratio = 1000;
  lim.symlinks_inside = size > 0 && (data[0] & 1);
  if (zr_open(&a, &io, ZR_MAX_ENTRIES, &err) == 0) {
    if (zr_check(&a, &lim, &err) == 0)
      zr_verify(&a, &lim, NULL, &bytes, &err);
    zr_close(&a);
  }
  f = fopen(archive, "wb");
  if (f == NULL)
    abort();
  fwrite(data, 1, size, f);
  fclose(f);
  memset(&o, 0, sizeof o);
  o.max_size = 8 << 20;
  o.max_ratio = -1;
  o.symlinks_inside = lim.symlinks_inside;
  o.force = 1;
  zr_extract(archive, target, &o, &err);
  /* a success leaves the target for the next run to replace; failure leaves nothing */
  {
    struct stat st;
    if (lstat(target, &st) == 0 && !S_ISDIR(st.st_mode))
      abort();
  }
  /* the streaming extractor, in chunks whose size the input's last byte picks */
  {
    zx_options xo;
    zx *x;
    size_t chunk = size > 0 ? (size_t)data[size - 1] % 61 + 1 : 1, i, entries;
    int rc = 0;
    memset(&xo, 0, sizeof xo);
    xo.max_size = 8 << 20;
    xo.max_ratio = -1;
    xo.symlinks_inside = lim.symlinks_inside;
    xo.force = 1;
    x = zx_new(streamed, &xo, &err);
    if (x == NULL)
      abort();
    for (i = 0; i < size && rc == 0; i += chunk)
      rc = zx_write(x, data + i, size - i < chunk ? size - i : chunk, &err);
    if (rc == 0)
      zx_finish(x, &entries, &bytes, &err);
    zx_free(x);
  }
  return 0;
}
