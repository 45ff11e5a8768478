/*
 * Lua-free plumbing for skafos.http and skafos.s3: the multi-handle driver loop (so
 * progress hooks run between libcurl calls, never inside them), libcurl and HTTP status
 * error codes, secret redaction for traces and messages, files opened without following
 * what others planted, and HTTP header parsing and redirect rules.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "common.h" /* skafos_mask_secrets only: it touches no lua_State */
#include "transfer.h"

/* ---- tbuf ---------------------------------------------------------------------------- */

void tbuf_init(tbuf *b, size_t limit) {
  b->p = NULL;
  b->n = b->cap = 0;
  b->limit = limit;
  b->overflow = 0;
}

int tbuf_add(tbuf *b, const void *data, size_t n) {
  if (n > b->limit - b->n) {
    n = b->limit - b->n;
    b->overflow = 1;
  }
  if (n == 0)
    return 0;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    char *p;
    while (cap < b->n + n + 1)
      cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

void tbuf_reset(tbuf *b) {
  b->n = 0;
  b->overflow = 0;
  if (b->p)
    b->p[0] = '\0';
}

void tbuf_free(tbuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

void transfer_stash_set(transfer_stash *s, const char *code, const char *fmt, const char *arg) {
  if (s->code)
    return;
  s->code = code;
  snprintf(s->msg, sizeof s->msg, fmt, arg);
}

void transfer_fclose(FILE **f) {
  if (*f) {
    fclose(*f);
    *f = NULL;
  }
}

/* ---- thasher ----------------------------------------------------------------------------- */

#define HASH_SLOTS 16
#define HASH_SLOT_SIZE (512u * 1024u)
#define WRITEBACK_STEP (32 * 1024 * 1024) /* start writeback this often, so fsync is short */

/* Workers 0 .. n-1 each update a digest; worker n, once thasher_write_to has started it,
 * writes the slots to a file. */
struct thasher {
  pthread_mutex_t mu;
  pthread_cond_t data, space;
  char *slot[HASH_SLOTS];
  size_t len[HASH_SLOTS];
  size_t fill;     /* bytes in slot head % HASH_SLOTS, not yet handed to the workers */
  uint64_t head;   /* chunks produced */
  uint64_t pos[3]; /* chunks consumed, per worker */
  int n, nw, stop; /* nw: 1 once the writer runs */
  const EVP_MD *md[2];
  EVP_MD_CTX *ctx[2];
  pthread_t th[3];
  int started;
  /* the writer's: changed only while every worker is idle (after drain) */
  int wfd;               /* -1: the slots are not written */
  int64_t woff, wsynced; /* next file offset; bytes handed to writeback */
  atomic_int werr;       /* errno of the first failed write, sticky */
};

typedef struct worker_arg {
  thasher *h;
  int k;
} worker_arg;

static uint64_t min_pos(const thasher *h) {
  uint64_t m = h->head;
  int k;
  for (k = 0; k < h->n + h->nw; k++) {
    if (h->pos[k] < m)
      m = h->pos[k];
  }
  return m;
}

/* The writer's work on one slot: append it at woff, then start writeback every
 * WRITEBACK_STEP bytes so the final fsync has little left to do. */
static void write_slot(thasher *h, const char *p, size_t len) {
  while (len > 0 && h->wfd >= 0 && atomic_load(&h->werr) == 0) {
    ssize_t w = pwrite(h->wfd, p, len, (off_t)h->woff);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      atomic_store(&h->werr, w < 0 ? errno : EIO);
      return;
    }
    p += w;
    len -= (size_t)w;
    h->woff += w;
  }
#ifdef SKAFOS_HAVE_SYNC_FILE_RANGE
  if (h->wfd >= 0 && h->woff - h->wsynced >= WRITEBACK_STEP) {
    sync_file_range(h->wfd, (off_t)h->wsynced, (off_t)(h->woff - h->wsynced),
                    SYNC_FILE_RANGE_WRITE);
    h->wsynced = h->woff;
  }
#endif
}

static void *hash_worker(void *arg) {
  thasher *h = ((worker_arg *)arg)->h;
  int k = ((worker_arg *)arg)->k;
  free(arg);
  pthread_mutex_lock(&h->mu);
  for (;;) {
    size_t i;
    while (h->pos[k] == h->head && !h->stop)
      pthread_cond_wait(&h->data, &h->mu);
    if (h->pos[k] == h->head)
      break;
    i = (size_t)(h->pos[k] % HASH_SLOTS);
    /* Slot i stays put until every worker has moved past it. */
    pthread_mutex_unlock(&h->mu);
    if (k < h->n)
      EVP_DigestUpdate(h->ctx[k], h->slot[i], h->len[i]);
    else
      write_slot(h, h->slot[i], h->len[i]);
    pthread_mutex_lock(&h->mu);
    h->pos[k]++;
    pthread_cond_broadcast(&h->space);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

/* Hands the slot being filled to the workers. */
static void publish(thasher *h) {
  h->len[h->head % HASH_SLOTS] = h->fill;
  h->fill = 0;
  pthread_mutex_lock(&h->mu);
  h->head++;
  pthread_cond_broadcast(&h->data);
  pthread_mutex_unlock(&h->mu);
}

void thasher_flush(thasher *h) {
  if (h->fill > 0)
    publish(h);
}

static void drain(thasher *h) {
  thasher_flush(h);
  pthread_mutex_lock(&h->mu);
  while (min_pos(h) < h->head)
    pthread_cond_wait(&h->space, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

/* Starts worker k (a digest below h->n, else the writer) as thread number h->started. */
static int start_worker(thasher *h, int k) {
  worker_arg *a = malloc(sizeof *a);
  if (a == NULL)
    return -1;
  a->h = h;
  a->k = k;
  if (pthread_create(&h->th[h->started], NULL, hash_worker, a) != 0) {
    free(a);
    return -1;
  }
  h->started++;
  return 0;
}

thasher *thasher_new(int want_md5, int want_sha256) {
  thasher *h = calloc(1, sizeof *h);
  int k, i;
  if (h == NULL)
    return NULL;
  h->wfd = -1;
  if (want_md5)
    h->md[h->n++] = EVP_md5();
  if (want_sha256)
    h->md[h->n++] = EVP_sha256();
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->data, NULL);
  pthread_cond_init(&h->space, NULL);
  for (i = 0; i < HASH_SLOTS; i++) {
    if ((h->slot[i] = malloc(HASH_SLOT_SIZE)) == NULL)
      goto fail;
  }
  for (k = 0; k < h->n; k++) {
    if ((h->ctx[k] = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(h->ctx[k], h->md[k], NULL) != 1)
      goto fail;
  }
  for (k = 0; k < h->n; k++) {
    if (start_worker(h, k) != 0)
      goto fail;
  }
  return h;
fail:
  thasher_free(h);
  return NULL;
}

/* libcurl's write callback brings 16 KiB at a time: slots are filled to the brim before
 * the workers hear of them, so a GiB costs 2,048 wake-ups rather than 65,536. */
void thasher_feed(thasher *h, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    size_t i = (size_t)(h->head % HASH_SLOTS), c;
    if (h->fill == 0) { /* starting slot i: wait until every worker has left it */
      pthread_mutex_lock(&h->mu);
      while (h->head - min_pos(h) >= HASH_SLOTS)
        pthread_cond_wait(&h->space, &h->mu);
      pthread_mutex_unlock(&h->mu);
    }
    c = HASH_SLOT_SIZE - h->fill;
    if (c > n)
      c = n;
    /* No worker reads slot i before head passes it. */
    memcpy(h->slot[i] + h->fill, p, c);
    h->fill += c;
    if (h->fill == HASH_SLOT_SIZE)
      publish(h);
    p += c;
    n -= c;
  }
}

int thasher_write_to(thasher *h, int fd, int64_t offset) {
  drain(h);
  if (fd >= 0 && h->nw == 0) {
    pthread_mutex_lock(&h->mu);
    h->pos[h->n] = h->head;
    pthread_mutex_unlock(&h->mu);
    if (start_worker(h, h->n) != 0)
      return -1;
    pthread_mutex_lock(&h->mu);
    h->nw = 1;
    pthread_mutex_unlock(&h->mu);
  }
  h->wfd = fd;
  h->woff = h->wsynced = offset;
  if (fd >= 0)
    atomic_store(&h->werr, 0);
  return 0;
}

int thasher_write_error(thasher *h) { return atomic_load(&h->werr); }

void thasher_reset(thasher *h) {
  int k;
  drain(h);
  for (k = 0; k < h->n; k++)
    EVP_DigestInit_ex(h->ctx[k], h->md[k], NULL);
}

int thasher_resume_sha256(thasher *h, const void *state) {
  int k;
  drain(h);
  for (k = 0; k < h->n; k++)
    if (h->md[k] == EVP_sha256())
      return EVP_MD_CTX_copy_ex(h->ctx[k], state) == 1 ? 0 : -1;
  return -1;
}

void thasher_final(thasher *h, char *md5hex, char *shahex) {
  int k;
  drain(h);
  for (k = 0; k < h->n; k++) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char *out = h->md[k] == EVP_md5() ? md5hex : shahex;
    EVP_DigestFinal_ex(h->ctx[k], d, &len);
    if (out)
      transfer_hex(d, len, out);
    EVP_DigestInit_ex(h->ctx[k], h->md[k], NULL);
  }
}

void thasher_free(thasher *h) {
  int k, i;
  if (h == NULL)
    return;
  pthread_mutex_lock(&h->mu);
  h->stop = 1;
  pthread_cond_broadcast(&h->data);
  pthread_mutex_unlock(&h->mu);
  for (k = 0; k < h->started; k++)
    pthread_join(h->th[k], NULL);
  for (k = 0; k < h->n; k++)
    EVP_MD_CTX_free(h->ctx[k]);
  for (i = 0; i < HASH_SLOTS; i++)
    free(h->slot[i]);
  pthread_cond_destroy(&h->space);
  pthread_cond_destroy(&h->data);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

/* ---- setup and driver ----------------------------------------------------------------- */

double transfer_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs inside libcurl: only polls a flag, never touches Lua. */
static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  const transfer_opts *o = ud;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  return (o->interrupted && o->interrupted()) ? 1 : 0;
}

static void trace_lines(FILE *f, char *const *secrets, const char *prefix, const char *data,
                        size_t n) {
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t len = nl ? (size_t)(nl - data) : n;
    size_t l = len;
    if (l > 0 && data[l - 1] == '\r')
      l--;
    if (l > 0)
      transfer_trace(f, secrets, prefix, data, l);
    if (!nl)
      break;
    data += len + 1;
    n -= len + 1;
  }
}

/* Runs inside libcurl: writes to a FILE, nothing else. Bodies are summarised, never
 * printed: they may hold data the user did not ask to see. ud is the transfer_opts. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t n, void *ud) {
  const transfer_opts *o = ud;
  const char *prefix;
  (void)h;
  switch (type) {
  case CURLINFO_TEXT:
    prefix = "skafos: * ";
    break;
  case CURLINFO_HEADER_OUT:
    prefix = "skafos: > ";
    break;
  case CURLINFO_HEADER_IN:
    prefix = "skafos: < ";
    break;
  default:
    return 0;
  }
  trace_lines(o->trace, o->secrets, prefix, data, n);
  fflush(o->trace);
  return 0;
}

CURLcode transfer_setup(CURL *easy, const transfer_opts *o, const char *user_agent,
                        char *errbuf) {
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                    \
  do {                                                                                   \
    if (rc == CURLE_OK)                                                                  \
      rc = curl_easy_setopt(easy, opt, val);                                             \
  } while (0)
  errbuf[0] = '\0';
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_USERAGENT, user_agent);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_BUFFERSIZE, TRANSFER_BUFSIZE);
  SET(CURLOPT_UPLOAD_BUFFERSIZE, TRANSFER_BUFSIZE);
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  /* A proxy's "200 Connection Established" is not the answer: the header callbacks would
   * take it for one (open the output, restart a resumed part) before the real one. */
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  SET(CURLOPT_XFERINFODATA, (void *)o);
  if (o->timeout > 0)
    SET(CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000.0));
  if (o->connect_timeout > 0)
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout * 1000.0));
  if (o->low_speed_time > 0) {
    SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes > 0 ? o->low_speed_bytes : 1L);
    SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_time);
  }
  if (o->ca_file)
    SET(CURLOPT_CAINFO, o->ca_file);
  if (o->proxy)
    SET(CURLOPT_PROXY, o->proxy);
  if (o->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (o->trace) {
    SET(CURLOPT_DEBUGFUNCTION, debug_cb);
    SET(CURLOPT_DEBUGDATA, (void *)o);
    SET(CURLOPT_VERBOSE, 1L);
  }
#undef SET
  return rc;
}

CURLSH *transfer_share_new(void) {
  CURLSH *sh = curl_share_init();
  if (sh == NULL)
    return NULL;
  if (curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
    curl_share_cleanup(sh);
    return NULL;
  }
  return sh;
}

CURLcode transfer_run(CURL *easy, const transfer_opts *o, transfer_tick_fn tick, void *ud,
                      double interval) {
  CURLcode result = CURLE_OK;
  transfer_mux mux;
  double next = transfer_now() + interval;
  int done = 0;
  if (transfer_mux_open(&mux, 0) != 0)
    return CURLE_OUT_OF_MEMORY;
  if (transfer_mux_add(&mux, easy) != CURLM_OK) {
    transfer_mux_close(&mux);
    return CURLE_FAILED_INIT;
  }
  while (!done) {
    CURL *e;
    CURLcode r;
    CURLMcode mc = transfer_mux_perform(&mux);
    if (mc != CURLM_OK) {
      result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
      break;
    }
    while (transfer_mux_done(&mux, &e, &r)) {
      if (e == easy) {
        result = r;
        done = 1;
      }
    }
    if (done)
      break;
    if (o->interrupted && o->interrupted()) {
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    /* No libcurl frame is on the stack here: tick may run Lua (under lua_pcall). */
    if (tick && transfer_now() >= next) {
      if (tick(ud, 0)) {
        result = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      next = transfer_now() + interval;
    }
    mc = transfer_mux_wait(&mux, 100);
    if (mc != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
  }
  transfer_mux_remove(&mux, easy);
  transfer_mux_close(&mux);
  if (result == CURLE_OK && tick && tick(ud, 1))
    result = CURLE_ABORTED_BY_CALLBACK;
  return result;
}

/* ---- error codes ----------------------------------------------------------------------- */

const char *transfer_curl_code(CURLcode rc, int *retryable) {
  int r = 0;
  const char *code;
  switch (rc) {
  case CURLE_OK:
    code = "OK";
    break;
  case CURLE_OPERATION_TIMEDOUT:
    code = "TIMEOUT", r = 1;
    break;
  case CURLE_COULDNT_CONNECT:
    code = "COULDNT_CONNECT", r = 1;
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
    code = "COULDNT_RESOLVE", r = 1;
    break;
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_PROXY:
    code = "PROXY", r = 1;
    break;
  case CURLE_SSL_CONNECT_ERROR:
    code = "TLS", r = 1; /* a handshake cut short; certificate problems below are not */
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_USE_SSL_FAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CLIENTCERT:
    code = "TLS";
    break;
  case CURLE_SEND_ERROR:
  case CURLE_SEND_FAIL_REWIND:
    code = "SEND", r = 1;
    break;
  case CURLE_RECV_ERROR:
    code = "RECV", r = 1;
    break;
  case CURLE_GOT_NOTHING:
    code = "EMPTY_REPLY", r = 1;
    break;
  case CURLE_PARTIAL_FILE:
    code = "TRUNCATED", r = 1;
    break;
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
    code = "HTTP2", r = 1;
    break;
  case CURLE_WEIRD_SERVER_REPLY:
    code = "PROTOCOL", r = 1;
    break;
  case CURLE_TOO_MANY_REDIRECTS:
    code = "TOO_MANY_REDIRECTS";
    break;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    code = "BAD_URL";
    break;
  case CURLE_ABORTED_BY_CALLBACK:
    code = "ABORTED";
    break;
  case CURLE_WRITE_ERROR:
    code = "WRITE";
    break;
  case CURLE_READ_ERROR:
    code = "READ";
    break;
  case CURLE_OUT_OF_MEMORY:
    code = "NO_MEMORY";
    break;
  case CURLE_FILESIZE_EXCEEDED:
    code = "TOO_LARGE";
    break;
  case CURLE_RANGE_ERROR:
    code = "RANGE";
    break;
  case CURLE_BAD_CONTENT_ENCODING:
    code = "DECODE";
    break;
  case CURLE_LOGIN_DENIED:
  case CURLE_AUTH_ERROR:
    code = "AUTH";
    break;
  default:
    code = "CURL";
    break;
  }
  if (retryable)
    *retryable = r;
  return code;
}

/* The proxy libcurl takes from the environment for url when no proxy option is set:
 * <scheme>_proxy (also upper case, except HTTP_PROXY, which libcurl ignores), then
 * all_proxy/ALL_PROXY. A set but empty variable means none. *from names the variable. */
static const char *env_proxy(const char *url, const char **from) {
  static const char *const http_vars[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
  static const char *const https_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                           "ALL_PROXY", NULL};
  const char *const *v = strncasecmp(url, "https:", 6) == 0 ? https_vars : http_vars;
  for (; *v; v++) {
    const char *p = getenv(*v);
    if (p) {
      *from = *v;
      return *p ? p : NULL;
    }
  }
  return NULL;
}

/* Writes "host port N" of a proxy string as libcurl's connect errors name it (default
 * port 1080, 443 for https://), without any credentials. Returns 0 or -1. */
static int proxy_name(const char *proxy, char *out, size_t outlen) {
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL;
  int ok = -1;
  if (u && curl_url_set(u, CURLUPART_URL, proxy,
                        CURLU_DEFAULT_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    const char *p = "1080";
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
      p = port;
    else if (strncasecmp(proxy, "https://", 8) == 0)
      p = "443";
    ok = snprintf(out, outlen, "%s port %s", host, p) < (int)outlen ? 0 : -1;
  }
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

/* The host of the handle's current URL into out ("the server" when unknown). */
static void url_host(CURL *easy, char *out, size_t outlen) {
  char *url = NULL, *host = NULL;
  CURLU *u = curl_url();
  snprintf(out, outlen, "%s", "the server");
  curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
  if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
    snprintf(out, outlen, "%s", host);
  curl_free(host);
  curl_url_cleanup(u);
}

/* The proxy the transfer was set up with, before NO_PROXY: the proxy option, else the
 * environment's; *from says which. NULL when none. */
static const char *configured_proxy(CURL *easy, const transfer_opts *o, const char **from) {
  char *url = NULL;
  *from = "the proxy option";
  if (o->proxy)
    return *o->proxy ? o->proxy : NULL;
  curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
  return url ? env_proxy(url, from) : NULL;
}

const char *transfer_curl_failure(CURL *easy, CURLcode rc, const char *errbuf,
                                  const transfer_opts *o, int *retryable, char *out,
                                  size_t outlen) {
  const char *code = transfer_curl_code(rc, retryable);
  const char *text = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc);
  const char *proxy, *from;
  char host[256], name[300], needle[310];
  long connect = 0;
  snprintf(out, outlen, "%s", text);
  curl_easy_getinfo(easy, CURLINFO_HTTP_CONNECTCODE, &connect);
  if (connect >= 300) {
    /* The proxy answered CONNECT with an error status, which libcurl reports as a
     * receive error; retrying helps as much as it would for that status. */
    code = "PROXY";
    transfer_status_code(connect, retryable);
    proxy = configured_proxy(easy, o, &from);
    if (proxy && proxy_name(proxy, name, sizeof name) == 0)
      snprintf(out, outlen, "the proxy %s (from %s) refused the tunnel: %s", name, from, text);
  } else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
    long vr = X509_V_OK;
    int untrusted;
    curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT, &vr);
    /* No chain to a trusted root: the one case a CA bundle fixes. */
    untrusted = vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                vr == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
                vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
    url_host(easy, host, sizeof host);
    if (untrusted && o->ca_file)
      snprintf(out, outlen, "cannot verify the TLS certificate of %s: %s; no CA in %s signed "
               "it", host, text, o->ca_file);
    else if (untrusted)
      snprintf(out, outlen, "cannot verify the TLS certificate of %s: %s; if the server uses a "
               "private CA, give that CA's certificate (PEM) with --ca-file or SKAFOS_CA_FILE "
               "(ca_file in a config or a Lua call)", host, text);
    else
      snprintf(out, outlen, "cannot verify the TLS certificate of %s: %s", host, text);
  } else if (rc == CURLE_SSL_CACERT_BADFILE && o->ca_file) {
    snprintf(out, outlen, "cannot use ca_file %s as a CA bundle: %s", o->ca_file, text);
  } else if (rc == CURLE_COULDNT_CONNECT) {
    /* Say so when it was the proxy that refused: libcurl names the host it dialled, which
     * is the target instead when NO_PROXY left the proxy out. */
    proxy = configured_proxy(easy, o, &from);
    if (proxy && proxy_name(proxy, name, sizeof name) == 0) {
      snprintf(needle, sizeof needle, " %s ", name);
      if (strstr(text, needle))
        snprintf(out, outlen, "cannot connect to the proxy %s (from %s): %s", name, from, text);
    }
  }
  return code;
}

const char *transfer_status_code(long status, int *retryable) {
  int r = 0;
  const char *code;
  switch (status) {
  case 400:
    code = "BAD_REQUEST";
    break;
  case 401:
    code = "UNAUTHORIZED";
    break;
  case 403:
    code = "ACCESS_DENIED";
    break;
  case 404:
    code = "NOT_FOUND";
    break;
  case 408:
    code = "REQUEST_TIMEOUT", r = 1;
    break;
  case 409:
    code = "CONFLICT";
    break;
  case 411:
    code = "LENGTH_REQUIRED";
    break;
  case 412:
    code = "PRECONDITION";
    break;
  case 413:
    code = "TOO_LARGE";
    break;
  case 416:
    code = "RANGE";
    break;
  case 429:
    code = "SLOW_DOWN", r = 1;
    break;
  case 500:
    code = "INTERNAL", r = 1;
    break;
  case 501:
    code = "NOT_IMPLEMENTED";
    break;
  case 502:
    code = "BAD_GATEWAY", r = 1;
    break;
  case 503:
    code = "UNAVAILABLE", r = 1;
    break;
  case 504:
    code = "GATEWAY_TIMEOUT", r = 1;
    break;
  default:
    if (status >= 500) {
      code = "SERVER_ERROR", r = 1;
    } else if (status >= 300 && status < 400) {
      code = "REDIRECT";
    } else {
      code = "HTTP_ERROR";
    }
    break;
  }
  if (retryable)
    *retryable = r;
  return code;
}

/* ---- redaction -------------------------------------------------------------------------- */

static const char *const secret_headers[] = {"x-api-token:", "authorization:",
                                             "proxy-authorization:", "cookie:",
                                             "set-cookie:", NULL};
static const char *const secret_params[] = {"x-amz-signature=", "x-amz-credential=",
                                            "x-amz-security-token=", NULL};

static int param_end(char c) { return strchr("&#; \t\r\n\"'<>", c) != NULL; }

size_t transfer_redact(const char *in, size_t n, char *out, size_t outlen) {
  static const char mask[] = "REDACTED";
  size_t i = 0, o = 0;
  int linestart = 1;
  if (outlen == 0)
    return 0;
#define EMIT(s, len)                                                                     \
  do {                                                                                   \
    size_t l_ = (len);                                                                   \
    if (l_ > outlen - 1 - o)                                                             \
      l_ = outlen - 1 - o;                                                               \
    memcpy(out + o, (s), l_);                                                            \
    o += l_;                                                                             \
  } while (0)
  while (i < n && o < outlen - 1) {
    int hit = 0;
    size_t k;
    if (linestart) {
      for (k = 0; secret_headers[k]; k++) {
        size_t hl = strlen(secret_headers[k]);
        if (n - i >= hl && strncasecmp(in + i, secret_headers[k], hl) == 0) {
          EMIT(in + i, hl);
          EMIT(" ", 1);
          EMIT(mask, sizeof mask - 1);
          i += hl;
          while (i < n && in[i] != '\r' && in[i] != '\n')
            i++;
          hit = 1;
          break;
        }
      }
    }
    if (!hit && (i == 0 || in[i - 1] == '?' || in[i - 1] == '&' || in[i - 1] == ';')) {
      for (k = 0; secret_params[k]; k++) {
        size_t pl = strlen(secret_params[k]);
        if (n - i >= pl && strncasecmp(in + i, secret_params[k], pl) == 0) {
          EMIT(in + i, pl);
          EMIT(mask, sizeof mask - 1);
          i += pl;
          while (i < n && !param_end(in[i]))
            i++;
          hit = 1;
          break;
        }
      }
    }
    if (hit) {
      linestart = 0;
      continue;
    }
    linestart = in[i] == '\n';
    out[o++] = in[i++];
  }
#undef EMIT
  out[o] = '\0';
  return o;
}

void transfer_trace(FILE *f, char *const *secrets, const char *prefix, const char *text,
                    size_t n) {
  char small[4096], *buf;
  /* transfer_redact at most triples a line (a short header's value becomes " REDACTED")
   * and a secret, at least SKAFOS_SECRET_MIN bytes, at most doubles: room for both. */
  size_t cap = 3 * n + 1, need = secrets ? 3 * cap : cap, len;
  const char *out;
  buf = need <= sizeof small ? small : malloc(need);
  if (buf == NULL) {
    fprintf(f, "%s(%zu bytes not shown: out of memory)\n", prefix, n);
    return;
  }
  len = transfer_redact(text, n, buf, cap);
  out = buf;
  if (secrets) {
    skafos_mask_secrets(secrets, buf, len, buf + cap, need - cap);
    out = buf + cap;
  }
  fprintf(f, "%s%s\n", prefix, out);
  if (buf != small)
    free(buf);
}

/* ---- files skafos writes ---------------------------------------------------------------- */

int transfer_file_check(const char *path, const struct stat *st, char *msg, size_t msglen) {
  char what[96];
  if (S_ISREG(st->st_mode) && st->st_uid == geteuid() && st->st_nlink == 1)
    return 0;
  if (S_ISLNK(st->st_mode))
    snprintf(what, sizeof what, "is a symbolic link");
  else if (S_ISFIFO(st->st_mode))
    snprintf(what, sizeof what, "is a FIFO (named pipe)");
  else if (S_ISDIR(st->st_mode))
    snprintf(what, sizeof what, "is a directory");
  else if (S_ISCHR(st->st_mode))
    snprintf(what, sizeof what, "is a character device");
  else if (S_ISBLK(st->st_mode))
    snprintf(what, sizeof what, "is a block device");
  else if (S_ISSOCK(st->st_mode))
    snprintf(what, sizeof what, "is a socket");
  else if (!S_ISREG(st->st_mode))
    snprintf(what, sizeof what, "is not a regular file");
  else if (st->st_uid != geteuid())
    snprintf(what, sizeof what, "belongs to another user (uid %lu)", (unsigned long)st->st_uid);
  else
    snprintf(what, sizeof what, "has %lu hard links (another name shares its data)",
             (unsigned long)st->st_nlink);
  snprintf(msg, msglen, "%s %s; skafos does not write through it: remove it or choose "
           "another output", path, what);
  return -1;
}

int transfer_path_check(const char *path, char *msg, size_t msglen) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return 0;
  return transfer_file_check(path, &st, msg, msglen);
}

int transfer_open_file(const char *path, int flags, mode_t mode, int *unsafe, char *msg,
                       size_t msglen) {
  struct stat st;
  int fd, fl, e;
  *unsafe = 0;
  /* O_NOFOLLOW: a symbolic link fails (ELOOP) instead of being followed, even a dangling
   * one with O_CREAT. O_NONBLOCK: a FIFO opens (or fails, ENXIO) at once. The decision
   * is then made on what was actually opened, so swapping the path after a check wins
   * nothing. */
  fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode);
  if (fd < 0) {
    /* Whatever stopped the open, name what is planted there (a link, a FIFO without a
     * reader, a directory, another user's file we may not open); else errno says why. */
    e = errno;
    if (lstat(path, &st) == 0 && transfer_file_check(path, &st, msg, msglen) != 0) {
      *unsafe = 1;
      return -1;
    }
    errno = e;
    return -1;
  }
  if (fstat(fd, &st) != 0) {
    e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (transfer_file_check(path, &st, msg, msglen) != 0) {
    close(fd);
    *unsafe = 1;
    return -1;
  }
  if ((fl = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
    e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

FILE *transfer_fopen(const char *path, int flags, mode_t mode, const char *fmode, int *unsafe,
                     char *msg, size_t msglen) {
  int fd = transfer_open_file(path, flags, mode, unsafe, msg, msglen), e;
  FILE *f;
  if (fd < 0)
    return NULL;
  if ((f = fdopen(fd, fmode)) == NULL) {
    e = errno;
    close(fd);
    errno = e;
  }
  return f;
}

/* ---- HTTP helpers ----------------------------------------------------------------------- */

static int url_origin(const char *url, char **scheme, char **host, char **port) {
  CURLU *u = curl_url();
  int ok = 0;
  *scheme = *host = *port = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK)
    ok = 1;
  curl_url_cleanup(u);
  return ok;
}

int transfer_same_origin(const char *a, const char *b) {
  char *s1, *h1, *p1, *s2, *h2, *p2;
  int ok1 = url_origin(a, &s1, &h1, &p1);
  int ok2 = url_origin(b, &s2, &h2, &p2);
  int same = ok1 && ok2 && strcasecmp(s1, s2) == 0 && strcasecmp(h1, h2) == 0 &&
             strcmp(p1, p2) == 0;
  curl_free(s1), curl_free(h1), curl_free(p1);
  curl_free(s2), curl_free(h2), curl_free(p2);
  return same;
}

/* 1 for a loopback host as libcurl's URL API gives it: localhost, 127.0.0.0/8 or [::1]
 * (also as an IPv4-mapped address). */
static int loopback_host(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  char buf[64];
  size_t n = strlen(host);
  if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
    return 1;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (n < 2 || n - 2 >= sizeof buf || host[0] != '[' || host[n - 1] != ']')
    return 0;
  memcpy(buf, host + 1, n - 2);
  buf[n - 2] = '\0';
  if (inet_pton(AF_INET6, buf, &a6) != 1)
    return 0;
  if (IN6_IS_ADDR_LOOPBACK(&a6))
    return 1;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

/* One part of url (curl_free it), or NULL when url does not parse or lacks it. */
static char *url_part(const char *url, CURLUPart what, unsigned int flags) {
  CURLU *u = curl_url();
  char *part = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, flags) == CURLUE_OK &&
      curl_url_get(u, what, &part, 0) != CURLUE_OK)
    part = NULL;
  curl_url_cleanup(u);
  return part;
}

int transfer_redirect_allowed(const char *from, const char *to, char *why, size_t whylen) {
  char *scheme = url_part(to, CURLUPART_SCHEME, CURLU_NON_SUPPORT_SCHEME);
  char *fscheme = NULL, *host = NULL;
  char rfrom[512], rto[512];
  int ok = -1;
  transfer_redact(from, strlen(from), rfrom, sizeof rfrom);
  transfer_redact(to, strlen(to), rto, sizeof rto);
  /* The reason first: a long URL cut short at the end of why loses nothing that matters. */
  if (scheme == NULL) {
    snprintf(why, whylen, "refusing to follow a redirect to something that is not an http or "
             "https URL: %s -> %s", rfrom, rto);
  } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
    snprintf(why, whylen, "refusing to follow a redirect to a %s: URL (skafos follows only "
             "http and https): %s -> %s", scheme, rfrom, rto);
  } else if (strcasecmp(scheme, "http") == 0 &&
             /* from anything but plain http: https, or (never ours) a URL that does not
              * parse, taken as the worst case */
             ((fscheme = url_part(from, CURLUPART_SCHEME, 0)) == NULL ||
              strcasecmp(fscheme, "http") != 0) &&
             ((host = url_part(to, CURLUPART_HOST, 0)) == NULL || !loopback_host(host))) {
    snprintf(why, whylen, "refusing to follow a redirect from https down to plain http (only "
             "a loopback host may ask for that): %s -> %s", rfrom, rto);
  } else {
    ok = 0;
  }
  curl_free(scheme);
  curl_free(fscheme);
  curl_free(host);
  return ok;
}

int transfer_header_split(const char *line, size_t n, char *name, size_t namelen,
                          const char **value, size_t *vlen) {
  size_t i, colon;
  const char *v, *e;
  for (colon = 0; colon < n && line[colon] != ':'; colon++) {
    unsigned char c = (unsigned char)line[colon];
    if (c <= ' ' || c >= 127)
      return -1;
  }
  if (colon == 0 || colon >= n || colon + 1 > namelen)
    return -1;
  for (i = 0; i < colon; i++)
    name[i] = (char)tolower((unsigned char)line[i]);
  name[colon] = '\0';
  v = line + colon + 1;
  e = line + n;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
    e--;
  *value = v;
  *vlen = (size_t)(e - v);
  return 0;
}

int transfer_status_line(const char *line, size_t n) {
  size_t i = 5;
  int status = 0, digits = 0;
  if (n < 5 || strncmp(line, "HTTP/", 5) != 0)
    return -1;
  while (i < n && line[i] != ' ')
    i++;
  while (i < n && line[i] == ' ')
    i++;
  while (i < n && digits < 3 && isdigit((unsigned char)line[i])) {
    status = status * 10 + (line[i++] - '0');
    digits++;
  }
  return digits == 3 ? status : -1;
}

static const char *parse_i64(const char *p, const char *e, int64_t *v) {
  int64_t x = 0;
  const char *s = p;
  while (p < e && isdigit((unsigned char)*p)) {
    if (x > (INT64_MAX - 9) / 10)
      return NULL;
    x = x * 10 + (*p++ - '0');
  }
  if (p == s)
    return NULL;
  *v = x;
  return p;
}

int transfer_content_range(const char *v, size_t n, int64_t *first, int64_t *last,
                           int64_t *total) {
  const char *p = v, *e = v + n;
  while (e > p && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\n'))
    e--;
  if (e - p < 6 || strncasecmp(p, "bytes", 5) != 0)
    return -1;
  p += 5;
  while (p < e && (*p == ' ' || *p == '='))
    p++;
  if (p < e && *p == '*') {
    *first = *last = -1;
    p++;
  } else {
    if ((p = parse_i64(p, e, first)) == NULL || p >= e || *p != '-')
      return -1;
    if ((p = parse_i64(p + 1, e, last)) == NULL || *last < *first)
      return -1;
  }
  if (p >= e || *p != '/')
    return -1;
  p++;
  if (p < e && *p == '*') {
    *total = -1;
    p++;
  } else if ((p = parse_i64(p, e, total)) == NULL) {
    return -1;
  }
  return p == e ? 0 : -1;
}

int transfer_etag(const char *v, size_t n, char *out, size_t outlen) {
  const char *e = v + n;
  size_t len, i;
  int hex = 1;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
    e--;
  if (e - v >= 2 && v[0] == 'W' && v[1] == '/')
    v += 2;
  if (e - v >= 2 && v[0] == '"' && e[-1] == '"')
    v++, e--;
  len = (size_t)(e - v);
  if (len + 1 > outlen)
    return -1;
  memcpy(out, v, len);
  out[len] = '\0';
  if (len != 32)
    return 0;
  for (i = 0; i < len; i++) {
    if (!isxdigit((unsigned char)out[i]))
      hex = 0;
  }
  if (!hex)
    return 0;
  for (i = 0; i < len; i++)
    out[i] = (char)tolower((unsigned char)out[i]);
  return 1;
}

void transfer_hex(const unsigned char *d, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[2 * n] = '\0';
}
