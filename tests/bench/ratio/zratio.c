/*
 * Throughput of zcrc32 and of the zip module as ratios against zlib measured in the same
 * run, for machines where absolute times mean nothing (an emulated processor): `make
 * bench-arm64` runs it under qemu-user. Prints Markdown tables; asserts nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "crc32x.h"
#include "zipread.h"
#include "zipwrite.h"

#define MIB (1024u * 1024u)
#define CHUNK (512u * 1024u)

static int rounds = 3;
static char dir[4096];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1du;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "zratio: %s: %s\n", what, why);
  exit(1);
}

static void write_file(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
    die(path, strerror(errno));
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  unsigned char *p;
  if (f == NULL || fstat(fileno(f), &st) != 0)
    die(path, strerror(errno));
  p = malloc((size_t)st.st_size + 1);
  if (p == NULL || fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
    die(path, "cannot read");
  fclose(f);
  *n = (size_t)st.st_size;
  return p;
}

/* ---- CRC-32 --------------------------------------------------------------------------- */

static double crc_rate(zcrc32_fn f, const unsigned char *p, size_t n, uint32_t *out) {
  double best = 0;
  int r;
  for (r = 0; r < rounds; r++) {
    double t = now(), dt;
    *out = f(0, p, n);
    dt = now() - t;
    if (best == 0 || dt < best)
      best = dt;
  }
  return (double)n / MIB / best;
}

static void bench_crc(const unsigned char *p, size_t n) {
  const char *name;
  zcrc32_fn f;
  uint32_t want, got;
  double base = crc_rate(zcrc32_variant(0, NULL), p, n, &want);
  int k;
  printf("### CRC-32 of %zu MiB\n\n| implementation | MiB/s | against zlib |\n|---|---:|---:|\n",
         n / MIB);
  for (k = 0; (f = zcrc32_variant(k, &name)) != NULL; k++) {
    double rate = k == 0 ? base : crc_rate(f, p, n, &got);
    if (k > 0 && got != want)
      die(name, "CRC differs from zlib's");
    printf("| %s | %.1f | %.2f |\n", name, rate, rate / base);
  }
  printf("\n");
}

/* ---- zip module against zlib ---------------------------------------------------------- */

/* zlib alone doing what the writer does for one file: read it in blocks, raw deflate at
 * level (or copy when level < 0) with zlib's crc32, write the result. */
static void zlib_pack(const char *src, const char *dst, int level) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  static unsigned char ibuf[CHUNK], obuf[CHUNK];
  z_stream z;
  uLong crc = crc32(0, NULL, 0);
  size_t got;
  int flush;
  if (in == NULL || out == NULL)
    die(src, strerror(errno));
  memset(&z, 0, sizeof z);
  if (level >= 0 && deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    die("deflateInit2", "failed");
  do {
    got = fread(ibuf, 1, sizeof ibuf, in);
    crc = crc32(crc, ibuf, (uInt)got);
    if (level < 0) {
      fwrite(ibuf, 1, got, out);
      continue;
    }
    flush = got < sizeof ibuf ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = ibuf;
    z.avail_in = (uInt)got;
    do {
      z.next_out = obuf;
      z.avail_out = sizeof obuf;
      deflate(&z, flush);
      fwrite(obuf, 1, sizeof obuf - z.avail_out, out);
    } while (z.avail_out == 0);
  } while (got == sizeof ibuf);
  if (level >= 0)
    deflateEnd(&z);
  fclose(in);
  if (fclose(out) != 0 || crc == 0x12345678u) /* keeps crc live */
    die(dst, "cannot write");
}

/* zlib alone doing what the extractor does: raw inflate (or copy) with crc32. */
static void zlib_unpack(const char *src, const char *dst, int deflated) {
  size_t n;
  unsigned char *p = read_file(src, &n);
  static unsigned char obuf[CHUNK];
  FILE *out = fopen(dst, "wb");
  uLong crc = crc32(0, NULL, 0);
  z_stream z;
  int ret;
  if (out == NULL)
    die(dst, strerror(errno));
  if (!deflated) {
    crc = crc32_z(crc, p, n);
    fwrite(p, 1, n, out);
  } else {
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
      die("inflateInit2", "failed");
    z.next_in = p;
    z.avail_in = (uInt)n;
    do {
      z.next_out = obuf;
      z.avail_out = sizeof obuf;
      ret = inflate(&z, Z_NO_FLUSH);
      crc = crc32(crc, obuf, (uInt)(sizeof obuf - z.avail_out));
      fwrite(obuf, 1, sizeof obuf - z.avail_out, out);
    } while (ret == Z_OK);
    if (ret != Z_STREAM_END)
      die(src, "not a raw deflate stream");
    inflateEnd(&z);
  }
  free(p);
  if (fclose(out) != 0 || crc == 0x12345678u)
    die(dst, "cannot write");
}

static void zip_create(const char *src, const char *dst, int level, int threads) {
  zw_plan plan;
  zw_writer *w;
  zerr err = {0};
  zw_plan_init(&plan);
  if (zw_plan_add(&plan, src, "data.bin", level < 0 ? ZW_STORE : ZW_DEFLATE, level < 0 ? 0 : level,
                  &err) != 0 ||
      (w = zw_open(dst, threads, 0, &err)) == NULL)
    die(src, err.msg);
  if (zw_add(w, plan.items, plan.n, NULL, &err) != 0 || zw_finish(w, &err) != 0)
    die(dst, err.msg);
  zw_free(w);
  zw_plan_free(&plan);
}

static void zip_extract(const char *archive, const char *to) {
  zr_options o;
  zerr err = {0};
  memset(&o, 0, sizeof o);
  o.max_size = -1;
  o.max_ratio = 0;
  o.force = 1;
  if (zr_extract(archive, to, &o, &err) != 0)
    die(archive, err.msg);
}

typedef struct {
  const char *what;
  void (*ours)(const void *ud);
  void (*theirs)(const void *ud);
} pair;

typedef struct {
  char src[4200], zip[4200], raw[4200], out[4200], outdir[4200];
  int level, threads;
} job;

static void run_create(const void *ud) {
  const job *j = ud;
  zip_create(j->src, j->zip, j->level, j->threads);
}
static void run_pack(const void *ud) {
  const job *j = ud;
  zlib_pack(j->src, j->raw, j->level);
}
static void run_extract(const void *ud) {
  const job *j = ud;
  zip_extract(j->zip, j->outdir);
}
static void run_unpack(const void *ud) {
  const job *j = ud;
  zlib_unpack(j->raw, j->out, j->level >= 0);
}

static double best_of(void (*fn)(const void *), const void *ud) {
  double best = 0;
  int r;
  for (r = 0; r < rounds; r++) {
    double t = now(), dt;
    fn(ud);
    dt = now() - t;
    if (best == 0 || dt < best)
      best = dt;
  }
  return best;
}

/* One data set: create (threads as given) and extract, each against zlib doing the same
 * work on one thread; ratio > 1 means the zip module was faster. */
static void bench_zip(const char *label, const unsigned char *data, size_t n, int level,
                      int threads) {
  job j;
  double ours, zl;
  snprintf(j.src, sizeof j.src, "%s/src.bin", dir);
  snprintf(j.zip, sizeof j.zip, "%s/ours.zip", dir);
  snprintf(j.raw, sizeof j.raw, "%s/zlib.raw", dir);
  snprintf(j.out, sizeof j.out, "%s/zlib.out", dir);
  snprintf(j.outdir, sizeof j.outdir, "%s/extracted", dir);
  j.level = level;
  j.threads = threads;
  write_file(j.src, data, n);
  zl = best_of(run_pack, &j);
  ours = best_of(run_create, &j);
  printf("| %s: create, %d thread%s | %.1f | %.1f | %.2f |\n", label, threads,
         threads == 1 ? "" : "s", (double)n / MIB / ours, (double)n / MIB / zl, zl / ours);
  zl = best_of(run_unpack, &j);
  ours = best_of(run_extract, &j);
  printf("| %s: extract | %.1f | %.1f | %.2f |\n", label, (double)n / MIB / ours,
         (double)n / MIB / zl, zl / ours);
  zr_rm_tree(j.outdir);
  unlink(j.src);
  unlink(j.zip);
  unlink(j.raw);
  unlink(j.out);
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 16, n = mib * MIB, i;
  unsigned char *rnd = malloc(n), *flt = malloc(n);
  const char *tmp = getenv("TMPDIR");
  if (rnd == NULL || flt == NULL || mib == 0)
    die("usage", "zratio [MiB]");
  if (argc > 2)
    rounds = atoi(argv[2]) > 0 ? atoi(argv[2]) : rounds;
  snprintf(dir, sizeof dir, "%s/zratio.XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL)
    die(dir, strerror(errno));
  for (i = 0; i < n; i++)
    rnd[i] = (unsigned char)(next() >> 56);
  /* float32 weights near zero, as a trained model holds: deflate saves about 10% */
  for (i = 0; i + 4 <= n; i += 4) {
    float v = (float)((double)(int64_t)(next() >> 40) / (double)(1 << 23) - 1.0) * 0.05f;
    memcpy(flt + i, &v, 4);
  }
  printf("Best of %d runs on %zu MiB; \"against zlib\" divides by zlib's figure in the same "
         "run (higher is better).\n\n",
         rounds, mib);
  bench_crc(rnd, n);
  printf("### Zip module against zlib doing the same work on one thread\n\n"
         "| work | zip module MiB/s | zlib MiB/s | against zlib |\n|---|---:|---:|---:|\n");
  bench_zip("random, stored", rnd, n, -1, 1);
  bench_zip("float32, deflate -6", flt, n, 6, 1);
  bench_zip("float32, deflate -6", flt, n, 6, (int)sysconf(_SC_NPROCESSORS_ONLN));
  free(rnd);
  free(flt);
  rmdir(dir);
  return 0;
}
