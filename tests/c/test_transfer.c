/*
 * Unit tests of the Lua-free transfer helpers: redaction and traces, origin comparison and
 * the redirect rule, files opened without following what others planted, header,
 * status-line, Content-Range and ETag parsing, error-code mapping, S3 XML errors and the
 * threaded hasher.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "s3err.h"
#include "transfer.h"

#include "check.h"

#define CHECK_STR(got, want)                                                             \
  do {                                                                                   \
    if (strcmp((got), (want)) != 0) {                                                    \
      fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, (got),     \
              (want));                                                                   \
      failures++;                                                                        \
    }                                                                                    \
  } while (0)

static const char *redact(const char *in) {
  static char out[1024];
  transfer_redact(in, strlen(in), out, sizeof out);
  return out;
}

static void test_redact(void) {
  CHECK_STR(redact("PUT /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026"
                   "&X-Amz-Date=20261127T000000Z&X-Amz-Signature=0123abcd&X-Amz-SignedHeaders="
                   "host HTTP/1.1"),
            "PUT /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED"
            "&X-Amz-Date=20261127T000000Z&X-Amz-Signature=REDACTED&X-Amz-SignedHeaders="
            "host HTTP/1.1");
  CHECK_STR(redact("https://s/k?x-amz-security-token=tok#frag"),
            "https://s/k?x-amz-security-token=REDACTED#frag");
  CHECK_STR(redact("X-API-TOKEN: 0123456789abcdef\r\nAccept: */*\r\n"),
            "X-API-TOKEN: REDACTED\r\nAccept: */*\r\n");
  CHECK_STR(redact("x-api-token:abc"), "x-api-token: REDACTED");
  CHECK_STR(redact("Authorization: Bearer xyz"), "Authorization: REDACTED");
  /* Only whole parameter names, and only header names at the start of a line. */
  CHECK_STR(redact("?MyX-Amz-Signature=keep"), "?MyX-Amz-Signature=keep");
  CHECK_STR(redact("Note: X-API-TOKEN: stays"), "Note: X-API-TOKEN: stays");
  CHECK_STR(redact("<Url>https://s/k?a=1&amp;X-Amz-Signature=ff</Url>"),
            "<Url>https://s/k?a=1&amp;X-Amz-Signature=REDACTED</Url>");
  {
    char small[8];
    size_t n = transfer_redact("0123456789", 10, small, sizeof small);
    CHECK(n == 7);
    CHECK_STR(small, "0123456");
  }
}

/* One trace line of text as transfer_trace writes it, without the newline. */
static const char *traced(char *const *secrets, const char *text, size_t n) {
  static char out[32768];
  FILE *f = tmpfile();
  size_t got = 0;
  out[0] = '\0';
  if (f == NULL)
    return out;
  transfer_trace(f, secrets, "p: ", text, n);
  rewind(f);
  got = fread(out, 1, sizeof out - 1, f);
  fclose(f);
  out[got] = '\0';
  if (got > 0 && out[got - 1] == '\n')
    out[got - 1] = '\0';
  return out;
}

static void test_trace(void) {
  char tok[] = "s3cr3t-tok", other[] = "another secret";
  char *secrets[] = {tok, other, NULL};
  const char *line = "X-Echo: s3cr3t-tok and s3cr3t-tok, another secret";
  CHECK_STR(traced(secrets, line, strlen(line)), "p: X-Echo: REDACTED and REDACTED, REDACTED");
  line = "HTTP/1.1 200 OK s3cr3t-tok";
  CHECK_STR(traced(secrets, line, strlen(line)), "p: HTTP/1.1 200 OK REDACTED");
  /* after the header and parameter masking, which still apply */
  line = "X-API-TOKEN: s3cr3t-tokX";
  CHECK_STR(traced(secrets, line, strlen(line)), "p: X-API-TOKEN: REDACTED");
  line = "GET /k?X-Amz-Signature=ff&q=s3cr3t-tok HTTP/1.1";
  CHECK_STR(traced(secrets, line, strlen(line)),
            "p: GET /k?X-Amz-Signature=REDACTED&q=REDACTED HTTP/1.1");
  line = "X-Echo: s3cr3t-tok";
  CHECK_STR(traced(NULL, line, strlen(line)), "p: X-Echo: s3cr3t-tok");
  /* a long line is written whole: a secret at its end is masked, not cut in two */
  {
    static char big[20000];
    const char *got;
    memset(big, 'a', sizeof big);
    memcpy(big + sizeof big - 10, tok, 10);
    got = traced(secrets, big, sizeof big);
    CHECK(strlen(got) == 3 + sizeof big - 10 + 8);
    CHECK(strcmp(got + strlen(got) - 9, "aREDACTED") == 0);
    CHECK(strstr(got, "s3cr3t") == NULL);
  }
}

static void test_origin(void) {
  CHECK(transfer_same_origin("http://a.example/x", "http://A.example:80/y?z"));
  CHECK(transfer_same_origin("https://a.example/x", "https://a.example:443/"));
  CHECK(!transfer_same_origin("http://a.example/x", "https://a.example/x"));
  CHECK(!transfer_same_origin("http://a.example/x", "http://b.example/x"));
  CHECK(!transfer_same_origin("http://127.0.0.1:8080/", "http://127.0.0.1:8081/"));
  CHECK(!transfer_same_origin("http://a.example/", "not a url"));
}

static int redirect_ok(const char *from, const char *to) {
  char why[1200];
  return transfer_redirect_allowed(from, to, why, sizeof why) == 0;
}

static void test_redirect(void) {
  char why[1200];
  CHECK(redirect_ok("https://a.example/x", "https://b.example/y"));
  CHECK(redirect_ok("http://a.example/x", "https://b.example/y"));
  CHECK(redirect_ok("http://a.example/x", "http://b.example/y"));
  /* down from https only to loopback */
  CHECK(!redirect_ok("https://a.example/x", "http://b.example/y"));
  CHECK(!redirect_ok("HTTPS://a.example/x", "HTTP://a.example/y"));
  CHECK(redirect_ok("https://a.example/x", "http://127.0.0.1:8080/y"));
  CHECK(redirect_ok("https://a.example/x", "http://127.200.3.4/y"));
  CHECK(redirect_ok("https://a.example/x", "http://localhost:1/y"));
  CHECK(redirect_ok("https://a.example/x", "http://[::1]:8080/y"));
  CHECK(redirect_ok("https://a.example/x", "http://[::ffff:127.0.0.1]/y"));
  CHECK(!redirect_ok("https://a.example/x", "http://128.0.0.1/y"));
  CHECK(!redirect_ok("https://a.example/x", "http://10.0.0.1/y"));
  CHECK(!redirect_ok("https://a.example/x", "http://[::2]/y"));
  CHECK(!redirect_ok("https://a.example/x", "http://localhost.evil.example/y"));
  CHECK(!redirect_ok("https://a.example/x", "http://127.0.0.1.evil.example/y"));
  /* only http and https, from anywhere */
  CHECK(!redirect_ok("http://a.example/x", "file:///etc/passwd"));
  CHECK(!redirect_ok("http://a.example/x", "ftp://a.example/x"));
  CHECK(!redirect_ok("http://127.0.0.1/x", "gopher://127.0.0.1/x"));
  CHECK(!redirect_ok("http://a.example/x", "javascript:alert(1)"));
  CHECK(!redirect_ok("http://a.example/x", ""));
  /* the reason comes first; URLs are redacted */
  CHECK(transfer_redirect_allowed("https://a.example/k?X-Amz-Signature=ff",
                                  "http://b.example/k?X-Amz-Signature=ee", why, sizeof why) != 0);
  CHECK_STR(why, "refusing to follow a redirect from https down to plain http (only a loopback "
                 "host may ask for that): https://a.example/k?X-Amz-Signature=REDACTED -> "
                 "http://b.example/k?X-Amz-Signature=REDACTED");
  CHECK(transfer_redirect_allowed("http://a.example/x", "file:///etc/passwd", why, sizeof why) != 0);
  CHECK_STR(why, "refusing to follow a redirect to a file: URL (skafos follows only http and "
                 "https): http://a.example/x -> file:///etc/passwd");
  CHECK(transfer_redirect_allowed("http://a.example/x", "mailto:a@b", why, sizeof why) != 0);
  CHECK_STR(why, "refusing to follow a redirect to something that is not an http or https URL: "
                 "http://a.example/x -> mailto:a@b");
}

/* ---- files ---------------------------------------------------------------------------- */

static int put(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  int ok = f != NULL && fputs(text, f) >= 0;
  if (f && fclose(f) != 0)
    ok = 0;
  return ok ? 0 : -1;
}

static int holds(const char *path, const char *text) {
  char buf[256];
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strcmp(buf, text) == 0;
}

/* Opens path with flags through transfer_open_file and expects a refusal whose message
 * names path and says `what`. */
static void refused(const char *path, int flags, const char *what) {
  char msg[600], want[700];
  int unsafe = 0, fd = transfer_open_file(path, flags, 0644, &unsafe, msg, sizeof msg);
  CHECK(fd < 0 && unsafe == 1);
  if (fd >= 0) {
    close(fd);
    return;
  }
  snprintf(want, sizeof want, "%s %s; skafos does not write through it: remove it or choose "
           "another output", path, what);
  CHECK_STR(msg, want);
  CHECK(transfer_path_check(path, msg, sizeof msg) == -1);
  CHECK_STR(msg, want);
}

static void test_files(void) {
  char dir[] = "/tmp/skafos-test-files.XXXXXX", victim[600], path[600], cmd[700], msg[600];
  int fd, unsafe = 0, fl;
  struct stat st;
  if (mkdtemp(dir) == NULL) {
    CHECK(!"mkdtemp");
    return;
  }
  snprintf(victim, sizeof victim, "%s/victim", dir);
  CHECK(put(victim, "precious") == 0);

  /* nothing there: created, blocking, close-on-exec; then reused as our own */
  snprintf(path, sizeof path, "%s/new", dir);
  CHECK(transfer_path_check(path, msg, sizeof msg) == 0);
  fd = transfer_open_file(path, O_RDWR | O_CREAT, 0644, &unsafe, msg, sizeof msg);
  CHECK(fd >= 0 && unsafe == 0);
  if (fd >= 0) {
    fl = fcntl(fd, F_GETFL);
    CHECK(fl != -1 && (fl & O_NONBLOCK) == 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(write(fd, "mine", 4) == 4);
    close(fd);
  }
  fd = transfer_open_file(path, O_RDONLY, 0, &unsafe, msg, sizeof msg);
  CHECK(fd >= 0 && unsafe == 0);
  if (fd >= 0)
    close(fd);
  /* missing without O_CREAT: an ordinary failure */
  snprintf(path, sizeof path, "%s/missing", dir);
  errno = 0;
  CHECK(transfer_open_file(path, O_RDONLY, 0, &unsafe, msg, sizeof msg) == -1);
  CHECK(unsafe == 0 && errno == ENOENT);

  /* a symbolic link, also a dangling one: never followed, nothing created */
  snprintf(path, sizeof path, "%s/link", dir);
  CHECK(symlink(victim, path) == 0);
  refused(path, O_RDWR | O_CREAT, "is a symbolic link");
  refused(path, O_RDONLY, "is a symbolic link");
  CHECK(holds(victim, "precious"));
  snprintf(path, sizeof path, "%s/dangling", dir);
  snprintf(cmd, sizeof cmd, "%s/not-there", dir);
  CHECK(symlink(cmd, path) == 0);
  refused(path, O_WRONLY | O_CREAT, "is a symbolic link");
  CHECK(lstat(cmd, &st) != 0);

  /* a FIFO without a reader or writer: refused at once, for reading and writing */
  snprintf(path, sizeof path, "%s/fifo", dir);
  CHECK(mkfifo(path, 0644) == 0);
  refused(path, O_WRONLY | O_CREAT, "is a FIFO (named pipe)");
  refused(path, O_RDWR, "is a FIFO (named pipe)");
  refused(path, O_RDONLY, "is a FIFO (named pipe)");

  /* a directory, a device */
  refused(dir, O_RDONLY, "is a directory");
  refused(dir, O_RDWR | O_CREAT, "is a directory");
  refused("/dev/null", O_WRONLY | O_CREAT, "is a character device");

  /* a hard link to another file */
  snprintf(path, sizeof path, "%s/hard", dir);
  CHECK(link(victim, path) == 0);
  refused(path, O_RDWR | O_CREAT, "has 2 hard links (another name shares its data)");
  CHECK(holds(victim, "precious"));

  /* another user's file (only root can make one here) */
  if (geteuid() == 0) {
    snprintf(path, sizeof path, "%s/foreign", dir);
    CHECK(put(path, "theirs") == 0);
    CHECK(chown(path, 65534, 65534) == 0);
    refused(path, O_RDWR | O_CREAT, "belongs to another user (uid 65534)");
    refused(path, O_RDONLY, "belongs to another user (uid 65534)");
    CHECK(holds(path, "theirs"));
  }

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

static void test_headers(void) {
  char name[64];
  const char *v;
  size_t vlen;
  const char *line = "Content-Range:  bytes 0-9/10 \r\n";
  CHECK(transfer_header_split(line, strlen(line), name, sizeof name, &v, &vlen) == 0);
  CHECK_STR(name, "content-range");
  CHECK(vlen == 12 && memcmp(v, "bytes 0-9/10", 12) == 0);
  line = "ETag:\r\n";
  CHECK(transfer_header_split(line, strlen(line), name, sizeof name, &v, &vlen) == 0);
  CHECK(vlen == 0);
  line = "HTTP/1.1 200 OK\r\n";
  CHECK(transfer_header_split(line, strlen(line), name, sizeof name, &v, &vlen) == -1);
  CHECK(transfer_header_split("\r\n", 2, name, sizeof name, &v, &vlen) == -1);
  CHECK(transfer_status_line(line, strlen(line)) == 200);
  CHECK(transfer_status_line("HTTP/2 416 \r\n", 13) == 416);
  CHECK(transfer_status_line("HTTP/1.1 100 Continue\r\n", 23) == 100);
  CHECK(transfer_status_line("Host: x\r\n", 9) == -1);
}

static void test_content_range(void) {
  int64_t f, l, t;
  CHECK(transfer_content_range("bytes 100-199/1000", 18, &f, &l, &t) == 0);
  CHECK(f == 100 && l == 199 && t == 1000);
  CHECK(transfer_content_range("bytes */5000000", 15, &f, &l, &t) == 0);
  CHECK(f == -1 && l == -1 && t == 5000000);
  CHECK(transfer_content_range("bytes 0-9/*", 11, &f, &l, &t) == 0);
  CHECK(t == -1);
  CHECK(transfer_content_range("bytes 9-0/10", 12, &f, &l, &t) == -1);
  CHECK(transfer_content_range("items 0-9/10", 12, &f, &l, &t) == -1);
  CHECK(transfer_content_range("bytes 0-9/10x", 13, &f, &l, &t) == -1);
}

static void test_etag(void) {
  char out[64];
  const char *v = "\"4D871431E7BA2C0717F900DABEE7EF76\"";
  CHECK(transfer_etag(v, strlen(v), out, sizeof out) == 1);
  CHECK_STR(out, "4d871431e7ba2c0717f900dabee7ef76");
  v = "W/\"9b2cf535f27731c974343645a3985328-2\"";
  CHECK(transfer_etag(v, strlen(v), out, sizeof out) == 0);
  CHECK_STR(out, "9b2cf535f27731c974343645a3985328-2");
  CHECK(transfer_etag("", 0, out, sizeof out) == 0);
  CHECK(transfer_etag(v, strlen(v), out, 8) == -1);
}

static void test_codes(void) {
  int r = -1;
  CHECK_STR(transfer_curl_code(CURLE_OPERATION_TIMEDOUT, &r), "TIMEOUT");
  CHECK(r == 1);
  CHECK_STR(transfer_curl_code(CURLE_COULDNT_CONNECT, &r), "COULDNT_CONNECT");
  CHECK_STR(transfer_curl_code(CURLE_COULDNT_RESOLVE_HOST, &r), "COULDNT_RESOLVE");
  CHECK_STR(transfer_curl_code(CURLE_PEER_FAILED_VERIFICATION, &r), "TLS");
  CHECK(r == 0);
  CHECK_STR(transfer_curl_code(CURLE_SEND_ERROR, &r), "SEND");
  CHECK(r == 1);
  CHECK_STR(transfer_curl_code(CURLE_RECV_ERROR, &r), "RECV");
  CHECK_STR(transfer_curl_code(CURLE_PARTIAL_FILE, &r), "TRUNCATED");
  CHECK(r == 1);
  CHECK_STR(transfer_curl_code(CURLE_TOO_MANY_REDIRECTS, &r), "TOO_MANY_REDIRECTS");
  CHECK(r == 0);
  CHECK_STR(transfer_curl_code(CURLE_URL_MALFORMAT, &r), "BAD_URL");
  CHECK_STR(transfer_status_code(503, &r), "UNAVAILABLE");
  CHECK(r == 1);
  CHECK_STR(transfer_status_code(404, &r), "NOT_FOUND");
  CHECK(r == 0);
  CHECK_STR(transfer_status_code(599, &r), "SERVER_ERROR");
  CHECK(r == 1);
}

static const char *classify(const char *xml, long status, int *r) {
  s3err_info info;
  int ok = s3err_parse(xml, xml ? strlen(xml) : 0, &info);
  return s3err_classify(ok ? &info : NULL, status, r);
}

static void test_s3err(void) {
  s3err_info info;
  int r = -1;
  const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                    "<Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires>"
                    "<RequestId>ABC123</RequestId></Error>";
  CHECK(s3err_parse(xml, strlen(xml), &info) == 1);
  CHECK_STR(info.code, "AccessDenied");
  CHECK_STR(info.message, "Request has expired");
  CHECK_STR(info.request_id, "ABC123");
  CHECK_STR(classify(xml, 403, &r), "EXPIRED");
  CHECK(r == 0);
  CHECK_STR(classify("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                     403, &r),
            "ACCESS_DENIED");
  CHECK_STR(classify("<Error><Code>SignatureDoesNotMatch</Code></Error>", 403, &r), "SIGNATURE");
  CHECK(r == 0);
  CHECK_STR(classify("<Error><Code>SlowDown</Code></Error>", 503, &r), "SLOW_DOWN");
  CHECK(r == 1);
  CHECK_STR(classify("<Error><Code>InternalError</Code></Error>", 500, &r), "INTERNAL");
  CHECK(r == 1);
  CHECK_STR(classify("<Error><Code>EntityTooLarge</Code></Error>", 400, &r), "TOO_LARGE");
  CHECK(r == 0);
  CHECK_STR(classify("<Error><Code>NoSuchKey</Code></Error>", 404, &r), "NOT_FOUND");
  CHECK_STR(classify("<Error><Code>RequestTimeout</Code></Error>", 400, &r), "REQUEST_TIMEOUT");
  CHECK(r == 1);
  /* unknown code: the status decides */
  CHECK_STR(classify("<Error><Code>Weird</Code></Error>", 502, &r), "BAD_GATEWAY");
  CHECK(r == 1);
  /* not XML: the status decides */
  CHECK_STR(classify("<html>oops</html>", 503, &r), "UNAVAILABLE");
  CHECK_STR(classify(NULL, 403, &r), "ACCESS_DENIED");
  /* entities decoded, truncated safely */
  CHECK(s3err_parse("<Error><Code>X</Code><Message>a &amp; b &lt;c&gt;</Message></Error>", 64,
                    &info) == 1);
  CHECK_STR(info.message, "a & b <c>");
  CHECK(s3err_parse("<Error><Code>Unterminated", 25, &info) == 0);
}

static void test_tbuf(void) {
  tbuf b;
  tbuf_init(&b, 5);
  CHECK(tbuf_add(&b, "abc", 3) == 0);
  CHECK(tbuf_add(&b, "defg", 4) == 0);
  CHECK(b.n == 5 && b.overflow && memcmp(b.p, "abcde", 5) == 0);
  tbuf_reset(&b);
  CHECK(b.n == 0 && !b.overflow);
  tbuf_free(&b);
  tbuf_free(&b);
}

static void digest_hex(const EVP_MD *md, const unsigned char *p, size_t n, char *hex) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0, i;
  EVP_Digest(p, n, d, &len, md, NULL);
  for (i = 0; i < len; i++)
    sprintf(hex + 2 * i, "%02x", d[i]);
}

/* Fed in pieces of every awkward size (1 byte, libcurl's 16 KiB, a slot and one more),
 * across several turns of the ring, the digests equal one-shot ones; final and reset
 * start again from zero, also in the middle of a slot. */
static void test_thasher(void) {
  static const size_t pieces[] = {1, 16384, 7, 524288, 524289, 100000, 16384, 3, 1048576};
  size_t total = 20u * 1024 * 1024 + 123, off = 0, k = 0, i;
  unsigned char *data = malloc(total);
  char md5[33], sha[65], want_md5[33], want_sha[65];
  thasher *h = thasher_new(1, 1);
  uint32_t x = 2463534242u;
  CHECK(data != NULL && h != NULL);
  if (data == NULL || h == NULL)
    return;
  for (i = 0; i < total; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    data[i] = (unsigned char)x;
  }
  thasher_feed(h, data, 5000); /* thrown away by the reset */
  thasher_reset(h);
  while (off < total) {
    size_t n = pieces[k++ % (sizeof pieces / sizeof pieces[0])];
    if (n > total - off)
      n = total - off;
    thasher_feed(h, data + off, n);
    off += n;
  }
  thasher_final(h, md5, sha);
  digest_hex(EVP_md5(), data, total, want_md5);
  digest_hex(EVP_sha256(), data, total, want_sha);
  CHECK_STR(md5, want_md5);
  CHECK_STR(sha, want_sha);
  thasher_final(h, md5, sha); /* nothing fed since: the empty input's digests */
  CHECK_STR(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK_STR(md5, "d41d8cd98f00b204e9800998ecf8427e");
  thasher_feed(h, data, 3);
  thasher_final(h, NULL, sha);
  digest_hex(EVP_sha256(), data, 3, want_sha);
  CHECK_STR(sha, want_sha);
  thasher_free(h);
  free(data);
}

/* The size of the file at fd, and whether its bytes equal p. */
static int file_is(int fd, const unsigned char *p, size_t n) {
  struct stat st;
  unsigned char *got;
  int same;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size != n || (got = malloc(n ? n : 1)) == NULL)
    return 0;
  same = pread(fd, got, n, 0) == (ssize_t)n && memcmp(got, p, n) == 0;
  free(got);
  return same;
}

/* The writer: bytes fed after write_to land in the file from the given offset (what was
 * fed before, and after a stop, does not); flush hands a partial slot over without
 * waiting for more; a failed write is reported and sticks until the next write_to. */
static void test_thasher_writer(void) {
  size_t total = 3u * 1024 * 1024 + 777, off = 0, k = 0;
  static const size_t pieces[] = {16384, 1, 524289, 4096};
  unsigned char *data = malloc(total);
  char path[] = "/tmp/skafos-thasher-XXXXXX", sha[65], want_sha[65];
  int fd = mkstemp(path), rofd, i;
  thasher *h = thasher_new(0, 1);
  CHECK(data != NULL && fd >= 0 && h != NULL);
  if (data == NULL || fd < 0 || h == NULL)
    return;
  for (i = 0; i < (int)total; i++)
    data[i] = (unsigned char)(i * 31 + (i >> 9));
  /* a part file that already holds 1000 bytes: they are hashed, not written again */
  CHECK(pwrite(fd, data, 1000, 0) == 1000);
  thasher_feed(h, data, 1000);
  CHECK(thasher_write_to(h, fd, 1000) == 0);
  off = 1000;
  while (off < total) {
    size_t n = pieces[k++ % 4];
    if (n > total - off)
      n = total - off;
    thasher_feed(h, data + off, n);
    off += n;
  }
  CHECK(thasher_write_to(h, -1, 0) == 0 && thasher_write_error(h) == 0);
  CHECK(file_is(fd, data, total));
  thasher_final(h, NULL, sha);
  digest_hex(EVP_sha256(), data, total, want_sha);
  CHECK_STR(sha, want_sha);
  /* stopped: nothing more reaches the file */
  thasher_feed(h, data, 100);
  thasher_final(h, NULL, sha);
  CHECK(file_is(fd, data, total));
  /* a partial slot reaches the file after a flush, while the writer still runs */
  CHECK(ftruncate(fd, 0) == 0 && thasher_write_to(h, fd, 0) == 0);
  thasher_feed(h, data, 5000);
  thasher_flush(h);
  for (i = 0; i < 3000 && !file_is(fd, data, 5000); i++) /* a liveness bound, 30 s */
    usleep(10000);
  CHECK(file_is(fd, data, 5000));
  CHECK(thasher_write_to(h, -1, 0) == 0);
  /* a file it cannot write to */
  rofd = open(path, O_RDONLY);
  CHECK(rofd >= 0 && thasher_write_to(h, rofd, 0) == 0);
  thasher_feed(h, data, 600000);
  CHECK(thasher_write_to(h, -1, 0) == 0);
  CHECK(thasher_write_error(h) == EBADF);
  CHECK(thasher_write_to(h, fd, 0) == 0 && thasher_write_error(h) == 0);
  thasher_free(h); /* with the writer on: it finishes what was fed */
  close(rofd);
  close(fd);
  unlink(path);
  free(data);
}

int main(void) {
  test_redact();
  test_trace();
  test_origin();
  test_redirect();
  test_files();
  test_headers();
  test_content_range();
  test_etag();
  test_codes();
  test_s3err();
  test_tbuf();
  test_thasher();
  test_thasher_writer();
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
