/*
 * Two lua_States in two threads at once, each publishing a model version to the emulator
 * and fetching it back three ways, as a host running transfers in parallel would. Built
 * with ThreadSanitizer too (make tsan): a data race between the states fails it there.
 * Usage: embed_threads DIR (a directory to work in; the SKAFOS_* variables point at the
 * emulator). Exit status 0 when every check holds; each failure is printed.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <skafos.h>

#define THREADS 2
#define MODEL_BYTES (3 << 20)

static const char *workdir;

/* What one thread did: 0 when every step held, else the step that failed, in why. */
typedef struct job {
  int n;
  int failed;
  char why[1024];
} job;

static int failf(job *j, const char *step, lua_State *L, int code) {
  const char *what = NULL, *message = NULL;
  if (L != NULL)
    skafos_last_error(L, &what, &message);
  snprintf(j->why, sizeof j->why, "thread %d: %s exited %d (%s: %s)", j->n, step, code,
           what ? what : "-", message ? message : "-");
  j->failed = 1;
  return 1;
}

/* The whole file at path, or NULL; *len set. The caller frees it. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  buf = malloc((size_t)n + 1);
  if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static int same_file(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = slurp(a, &la), *y = slurp(b, &lb);
  int same = x != NULL && y != NULL && la == lb && memcmp(x, y, la) == 0;
  free(x);
  free(y);
  return same;
}

/* A file that deflate shrinks but not to nothing: text with a counter, so the parallel
 * compressor's workers have real work. */
static int write_model(const char *path, int seed) {
  FILE *f = fopen(path, "wb");
  long i;
  if (f == NULL)
    return -1;
  for (i = 0; ftell(f) < MODEL_BYTES; i++)
    fprintf(f, "weight %ld of thread %d: %ld\n", i, seed, (i * 2654435761L + seed) % 1000003);
  return fclose(f);
}

static void *worker(void *arg) {
  job *j = arg;
  char dir[400], model[450], zipped[450], out[450], streamed[450], back[500];
  char version[32];
  const char *v;
  int code;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  skafos_openlibs(L);
  snprintf(dir, sizeof dir, "%s/t%d", workdir, j->n);
  snprintf(model, sizeof model, "%s/weights-%d.txt", dir, j->n);
  snprintf(zipped, sizeof zipped, "%s/back.zip", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(streamed, sizeof streamed, "%s/streamed", dir);
  if (mkdir(dir, 0700) != 0 || write_model(model, j->n) != 0) {
    failf(j, "writing the model", NULL, -1);
    goto done;
  }
  {
    const char *argv[] = {"-q", "--level", "6", model};
    code = skafos_run_workflow(L, "publish", 4, argv);
    if (code != 0 && failf(j, "publish", L, code))
      goto done;
  }
  v = skafos_result_field(L, "version");
  if (v == NULL) {
    failf(j, "publish (no version in the result)", L, 0);
    goto done;
  }
  snprintf(version, sizeof version, "%s", v);
  {
    /* the archive kept and extracted in the same pass */
    const char *argv[] = {"-q", "--version", version, "-o", zipped, "--unzip", out};
    code = skafos_run_workflow(L, "fetch", 7, argv);
    if (code != 0 && failf(j, "fetch -o --unzip", L, code))
      goto done;
  }
  {
    /* extracted while it downloads, no archive kept */
    const char *argv[] = {"-q", "--version", version, "--unzip", streamed};
    code = skafos_run_workflow(L, "fetch", 5, argv);
    if (code != 0 && failf(j, "fetch --unzip", L, code))
      goto done;
  }
  snprintf(back, sizeof back, "%s/weights-%d.txt", out, j->n);
  if (!same_file(model, back)) {
    snprintf(j->why, sizeof j->why, "thread %d: %s differs from what was published", j->n, back);
    j->failed = 1;
    goto done;
  }
  snprintf(back, sizeof back, "%s/weights-%d.txt", streamed, j->n);
  if (!same_file(model, back)) {
    snprintf(j->why, sizeof j->why, "thread %d: %s differs from what was published", j->n, back);
    j->failed = 1;
    goto done;
  }
  {
    /* libcurl's refusals and the network module's one-time set-up, in both states at once */
    char script[450];
    FILE *f;
    snprintf(script, sizeof script, "%s/refused.lua", dir);
    f = fopen(script, "w");
    if (f == NULL || fputs("local http = require 'skafos.http'\n"
                           "for _ = 1, 5 do\n"
                           "  local r, e = http.request { url = 'http://127.0.0.1:1/', timeout = 5 }\n"
                           "  assert(r == nil and e.code == 'COULDNT_CONNECT', tostring(e and e.code))\n"
                           "end\n",
                           f) < 0 || fclose(f) != 0) {
      failf(j, "writing refused.lua", NULL, -1);
      goto done;
    }
    {
      const char *run_argv[] = {"run", script};
      code = skafos_main(L, 2, run_argv);
      if (code != 0 && failf(j, "run refused.lua", L, code))
        goto done;
    }
  }
done:
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t t[THREADS];
  job jobs[THREADS];
  int i, failures = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  workdir = argv[1];
  for (i = 0; i < THREADS; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].n = i;
    if (pthread_create(&t[i], NULL, worker, &jobs[i]) != 0) {
      fprintf(stderr, "FAIL: cannot start thread %d\n", i);
      return 1;
    }
  }
  for (i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    if (jobs[i].failed) {
      fprintf(stderr, "FAIL %s\n", jobs[i].why);
      failures++;
    }
  }
  skafos_cleanup();
  if (failures == 0)
    printf("embed_threads: both threads published and fetched\n");
  return failures ? 1 : 0;
}
