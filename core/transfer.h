/*
 * Lua-free plumbing shared by skafos.http and skafos.s3: the libcurl driver loop that
 * runs progress hooks outside libcurl frames, stable error codes for libcurl failures,
 * redaction of secrets for traces and messages, and small HTTP parsing helpers.
 */
#ifndef SKAFOS_TRANSFER_H
#define SKAFOS_TRANSFER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <curl/curl.h>

/* Receive and send buffer sizes: big enough to keep syscalls few, small enough to keep
 * the process flat (two of them per transfer). */
#define TRANSFER_BUFSIZE (512L * 1024L)

/* ---- growable memory buffer with a hard cap ------------------------------------------
 * Owned by whoever embeds it; tbuf_free is safe twice. Appending past `limit` keeps the
 * first `limit` bytes and sets `overflow`. */
typedef struct tbuf {
  char *p;
  size_t n, cap, limit;
  int overflow;
} tbuf;

void tbuf_init(tbuf *b, size_t limit);
/* Returns 0, or -1 when out of memory (the buffer is unchanged). */
int tbuf_add(tbuf *b, const void *data, size_t n);
void tbuf_reset(tbuf *b);
void tbuf_free(tbuf *b);

/* ---- digests computed beside the transfer -------------------------------------------
 * A worker thread per digest (MD5 and/or SHA-256) consumes a ring of copied chunks, so
 * hashing overlaps the network instead of adding to it; another can write the same
 * chunks to a file. feed() blocks only while the ring (16 x 512 KiB) is full; it may run
 * inside libcurl callbacks (no Lua, no jumps). */
typedef struct thasher thasher;

/* NULL when out of memory or threads. */
thasher *thasher_new(int want_md5, int want_sha256);
void thasher_feed(thasher *h, const void *data, size_t n);
/* Waits for the workers, then has every byte fed from now on also written to fd from
 * offset on (pwrite, with writeback started as it goes; the write error is cleared), or
 * to nowhere when fd is -1 (everything fed so far is written, the caller may close,
 * truncate or fsync the file, and the error stays). Returns -1 when the writer's
 * thread cannot start. */
int thasher_write_to(thasher *h, int fd, int64_t offset);
/* Hands the bytes fed so far to the workers without waiting for a full slot, so that a
 * slow download still reaches its file (call it now and then). Never blocks. */
void thasher_flush(thasher *h);
/* errno of the first write that failed since thasher_write_to, else 0. Once set, nothing
 * more is written. */
int thasher_write_error(thasher *h);
/* Waits for the workers, then starts both digests again from zero. */
void thasher_reset(thasher *h);
/* Waits for the workers, then has the SHA-256 go on from state (an EVP_MD_CTX of SHA-256
 * over bytes fed elsewhere) instead of what it holds. 0, or -1 when it computes no
 * SHA-256 or the state cannot be copied (it is then unchanged). */
int thasher_resume_sha256(thasher *h, const void *state);
/* Waits for the workers and writes lower-case hex (md5hex 33, shahex 65 bytes; either
 * may be NULL). The digests start again from zero afterwards. */
void thasher_final(thasher *h, char *md5hex, char *shahex);
void thasher_free(thasher *h);

/* ---- common transfer options --------------------------------------------------------- */
typedef struct transfer_opts {
  double timeout;           /* whole transfer, seconds; 0 = none */
  double connect_timeout;   /* seconds; 0 = libcurl's default */
  long low_speed_bytes;     /* abort when below this many bytes/s ... */
  long low_speed_time;      /* ... for this many seconds; 0 = off */
  const char *ca_file;      /* CA bundle, NULL = system default */
  const char *proxy;        /* NULL = libcurl's environment handling */
  int insecure;             /* skip TLS verification (caller warns) */
  FILE *trace;              /* redacted libcurl trace goes here when not NULL */
  char *const *secrets;     /* masked in every trace line too (NULL-terminated, owned by
                               the caller, from skafos_secrets_copy); may be NULL */
  int (*interrupted)(void); /* polled by the xferinfo callback; may be NULL */
} transfer_opts;

/* Applies the options every skafos transfer shares (User-Agent, buffers, HTTP/2 over
 * TLS, keep-alive, http/https only, no signals, timeouts, TLS, trace) to a freshly
 * reset easy handle. errbuf must be CURL_ERROR_SIZE bytes and outlive the transfer. */
CURLcode transfer_setup(CURL *easy, const transfer_opts *o, const char *user_agent,
                        char *errbuf);

/* Called by transfer_run between libcurl calls, never from inside a libcurl callback,
 * at most every `interval` seconds and once more at the end (final = 1). A nonzero
 * return aborts the transfer with CURLE_ABORTED_BY_CALLBACK. */
typedef int (*transfer_tick_fn)(void *ud, int final);

/* Drives one easy handle to completion on a private multi handle (the connection cache
 * lives in the easy handle's CURLSH). Returns the transfer's CURLcode. */
CURLcode transfer_run(CURL *easy, const transfer_opts *o, transfer_tick_fn tick, void *ud,
                      double interval);

/* ---- the multi handle a transfer runs on ---------------------------------------------
 * transfer_run and pget drive their easy handles through this. Outside a task it is a
 * private multi handle, as it always was. Inside a task of skafos.tasks (tasks.c) it is
 * the scheduler's one, shared by every task: add and remove go there, perform does
 * nothing (the scheduler drives the handle), done returns only this task's finished
 * transfers, and wait lets the other tasks run until one of ours finishes or ms pass. */
struct tasks_fiber;
typedef struct transfer_mux {
  CURLM *multi;
  struct tasks_fiber *fiber; /* NULL: the multi handle is ours */
} transfer_mux;

/* one_each: one connection per request (no HTTP/2 multiplexing), as ranges need; the
 * scheduler's handle always works so. Returns 0, or -1 when out of memory. */
int transfer_mux_open(transfer_mux *m, int one_each);
void transfer_mux_close(transfer_mux *m);
CURLMcode transfer_mux_add(transfer_mux *m, CURL *easy);
/* Also forgets a finished transfer of easy that done has not returned yet. */
void transfer_mux_remove(transfer_mux *m, CURL *easy);
CURLMcode transfer_mux_perform(transfer_mux *m);
/* 1 with the next finished transfer of this mux in *easy and *result, else 0. */
int transfer_mux_done(transfer_mux *m, CURL **easy, CURLcode *result);
CURLMcode transfer_mux_wait(transfer_mux *m, long ms);
/* Inside a task: lets the other tasks run for `seconds` and returns 0. Outside one: -1,
 * and the caller sleeps as it would. */
int transfer_task_sleep(double seconds);

/* A share of connections, DNS and TLS sessions for one lua_State's transfers (keep-alive
 * across calls). NULL when libcurl cannot make one: transfers then run unshared. */
CURLSH *transfer_share_new(void);

/* Monotonic seconds. */
double transfer_now(void);

/* ---- errors --------------------------------------------------------------------------
 * Maps a libcurl result to a stable code ("TIMEOUT", "COULDNT_CONNECT", ...) and
 * whether retrying the same request may succeed. */
const char *transfer_curl_code(CURLcode rc, int *retryable);

/* transfer_curl_code for a transfer that failed on `easy`, made more exact with what the
 * handle knows (a proxy that refused CONNECT is "PROXY", retryable as its status is), and
 * its message written into out (outlen bytes): libcurl's text (errbuf when set),
 * prefixed with the host and a hint when a certificate cannot be verified, or with the
 * proxy and where it was set when the proxy refused. */
const char *transfer_curl_failure(CURL *easy, CURLcode rc, const char *errbuf,
                                  const transfer_opts *o, int *retryable, char *out,
                                  size_t outlen);

/* Maps a final HTTP status (>= 300) to a stable code and retryable flag, as used when
 * the body does not say more. */
const char *transfer_status_code(long status, int *retryable);

/* An error met inside a libcurl callback, kept for after curl_easy_perform returns; the
 * first one wins. */
typedef struct transfer_stash {
  const char *code; /* NULL while nothing went wrong */
  char msg[512];
} transfer_stash;

/* Keeps code and the message fmt % arg (fmt has at most one %s), unless one is kept. */
void transfer_stash_set(transfer_stash *s, const char *code, const char *fmt, const char *arg);

/* fclose(*f) when it is open, then forgets it. */
void transfer_fclose(FILE **f);

/* ---- redaction ----------------------------------------------------------------------
 * Copies n bytes of `in` into out (outlen bytes, always NUL-terminated, truncated when
 * short) with secrets replaced by "REDACTED": the values of the X-Amz-Signature,
 * X-Amz-Credential and X-Amz-Security-Token query parameters, and the values of
 * X-API-TOKEN, Authorization, Proxy-Authorization and Cookie header lines. Returns the
 * length written. */
size_t transfer_redact(const char *in, size_t n, char *out, size_t outlen);

/* Writes one trace line to f: prefix, then n bytes of text masked by transfer_redact and
 * then with every occurrence of each of the NULL-terminated secrets (may be NULL)
 * replaced by "REDACTED", then a newline. Never cuts the line short (a secret split at a
 * cut would escape the mask). Safe inside libcurl callbacks. */
void transfer_trace(FILE *f, char *const *secrets, const char *prefix, const char *text,
                    size_t n);

/* ---- files skafos writes ---------------------------------------------------------------
 * A path skafos creates or replaces may sit in a directory others can write (/tmp, a
 * shared CI workspace), where someone may have planted a symbolic or hard link to a file
 * of ours to overwrite, a FIFO to hang on, or a device. A file there is reused only when
 * it is a regular file owned by the effective user with a single link; anything else is
 * refused (err.code "UNSAFE_PATH") and never written through. */

/* 0 when st (of path) describes such a file; else -1 with "<path> <what it is>; skafos
 * does not write through it: remove it or choose another output" in msg (msglen bytes). */
int transfer_file_check(const char *path, const struct stat *st, char *msg, size_t msglen);

/* The same decision by lstat, to refuse before a request is sent: 0 when nothing is at
 * path (or it cannot be looked at: opening it later says why) or a reusable file is;
 * -1 with msg set otherwise. */
int transfer_path_check(const char *path, char *msg, size_t msglen);

/* Opens path with flags (O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT (mode) or O_APPEND as
 * needed; never O_TRUNC: truncate once it is checked) without following a symbolic link,
 * blocking on a FIFO or taking a terminal, and keeps the descriptor only when its fstat
 * passes transfer_file_check. Returns it (close-on-exec, blocking again), or -1 with
 * *unsafe = 1 and msg set when something else is at path, or *unsafe = 0 and errno set
 * when it cannot be opened (ENOENT: nothing there and no O_CREAT). */
int transfer_open_file(const char *path, int flags, mode_t mode, int *unsafe, char *msg,
                       size_t msglen);

/* transfer_open_file, then fdopen with fmode ("a", "wb", ...; it truncates nothing). NULL
 * as transfer_open_file fails, or with *unsafe = 0 and errno set when fdopen does. */
FILE *transfer_fopen(const char *path, int flags, mode_t mode, const char *fmode, int *unsafe,
                     char *msg, size_t msglen);

/* ---- HTTP helpers ------------------------------------------------------------------- */
/* 1 when both URLs have the same scheme, host and port; 0 when not or unparsable. */
int transfer_same_origin(const char *a, const char *b);

/* Whether a redirect from the URL `from` to `to` may be followed: 0, or -1 with the reason
 * in why (whylen bytes, URLs redacted) when `to` is not an http or https URL, or when it
 * leaves https for plain http to a host that is not loopback (127.0.0.0/8, ::1,
 * localhost). */
int transfer_redirect_allowed(const char *from, const char *to, char *why, size_t whylen);

/* Splits a raw header line "Name: value\r\n". Writes the lower-cased name into name
 * (namelen bytes) and points *value and *vlen at the trimmed value inside line. Returns 0,
 * or -1 for lines that are not a header (status lines, the blank line, junk). */
int transfer_header_split(const char *line, size_t n, char *name, size_t namelen,
                          const char **value, size_t *vlen);

/* Parses "HTTP/1.1 200 OK" or "HTTP/2 200"; returns the status or -1. */
int transfer_status_line(const char *line, size_t n);

/* Parses a Content-Range value: "bytes F-L/T", "bytes F-L/ *" (T = -1) or "bytes * /T"
 * (F = L = -1). Returns 0 or -1. */
int transfer_content_range(const char *v, size_t n, int64_t *first, int64_t *last,
                           int64_t *total);

/* Normalises an ETag header value (strips W/ and quotes, trims) into out (outlen
 * bytes). Returns 1 if it is a plain MD5 (32 hex digits, lower-cased into out), 0 if it
 * is something else (multipart "...-N", KMS, empty), -1 if it does not fit. */
int transfer_etag(const char *v, size_t n, char *out, size_t outlen);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void transfer_hex(const unsigned char *d, size_t n, char *out);

#endif
