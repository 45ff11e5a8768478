/*
 * Parsing of S3 XML error bodies and the mapping of S3 error codes to skafos codes.
 * A deliberately small scanner: S3 error documents are flat, and anything that does not
 * look like one falls back to the HTTP status.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3err.h"
#include "transfer.h"

/* Copies the text of the first <tag>...</tag> inside [p, e) into out, decoding the five
 * XML entities. Returns 1 when found. */
static int xml_field(const char *p, const char *e, const char *tag, char *out,
                     size_t outlen) {
  char open[40], close[40];
  size_t ol, cl, o = 0;
  const char *s, *t;
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  ol = strlen(open), cl = strlen(close);
  out[0] = '\0';
  for (s = p; s + ol <= e && memcmp(s, open, ol) != 0; s++)
    ;
  if (s + ol > e)
    return 0;
  s += ol;
  for (t = s; t + cl <= e && memcmp(t, close, cl) != 0; t++)
    ;
  if (t + cl > e)
    return 0;
  while (s < t && o + 1 < outlen) {
    static const struct {
      const char *ent;
      char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t k, used = 0;
    if (*s == '&') {
      for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
        size_t l = strlen(ents[k].ent);
        if ((size_t)(t - s) >= l && memcmp(s, ents[k].ent, l) == 0) {
          out[o++] = ents[k].c;
          used = l;
          break;
        }
      }
    }
    if (used) {
      s += used;
    } else {
      out[o++] = *s++;
    }
  }
  out[o] = '\0';
  return 1;
}

int s3err_parse(const char *body, size_t n, s3err_info *out) {
  const char *e = body + n, *s;
  out->code[0] = out->message[0] = out->request_id[0] = '\0';
  if (body == NULL)
    return 0;
  for (s = body; s + 7 <= e && memcmp(s, "<Error>", 7) != 0; s++)
    ;
  if (s + 7 > e)
    return 0;
  if (!xml_field(s, e, "Code", out->code, sizeof out->code))
    return 0;
  xml_field(s, e, "Message", out->message, sizeof out->message);
  xml_field(s, e, "RequestId", out->request_id, sizeof out->request_id);
  return 1;
}

static const struct {
  const char *s3;
  const char *code;
  int retryable;
} s3codes[] = {
    /* need a new presigned URL or other credentials: never retried as they are */
    {"ExpiredToken", "EXPIRED", 0},
    {"TokenRefreshRequired", "EXPIRED", 0},
    {"SignatureDoesNotMatch", "SIGNATURE", 0},
    {"AuthorizationQueryParametersError", "SIGNATURE", 0},
    {"InvalidAccessKeyId", "SIGNATURE", 0},
    {"RequestTimeTooSkewed", "CLOCK_SKEW", 0},
    {"AccessDenied", "ACCESS_DENIED", 0},
    {"AllAccessDisabled", "ACCESS_DENIED", 0},
    /* the request itself is wrong */
    {"EntityTooLarge", "TOO_LARGE", 0},
    {"EntityTooSmall", "TOO_SMALL", 0},
    {"MaxMessageLengthExceeded", "TOO_LARGE", 0},
    {"MissingContentLength", "LENGTH_REQUIRED", 0},
    {"BadDigest", "INTEGRITY", 0},
    {"InvalidDigest", "INTEGRITY", 0},
    {"NoSuchKey", "NOT_FOUND", 0},
    {"NoSuchBucket", "NOT_FOUND", 0},
    {"NoSuchUpload", "NOT_FOUND", 0},
    {"InvalidRange", "RANGE", 0},
    {"PreconditionFailed", "PRECONDITION", 0},
    {"MethodNotAllowed", "METHOD_NOT_ALLOWED", 0},
    {"InvalidArgument", "BAD_REQUEST", 0},
    {"InvalidRequest", "BAD_REQUEST", 0},
    {"MalformedXML", "BAD_REQUEST", 0},
    {"IncompleteBody", "INCOMPLETE_BODY", 1},
    /* transient: the AWS SDKs' throttling and transient error lists */
    {"SlowDown", "SLOW_DOWN", 1},
    {"Throttling", "SLOW_DOWN", 1},
    {"ThrottlingException", "SLOW_DOWN", 1},
    {"RequestLimitExceeded", "SLOW_DOWN", 1},
    {"RequestThrottled", "SLOW_DOWN", 1},
    {"RequestThrottledException", "SLOW_DOWN", 1},
    {"TooManyRequestsException", "SLOW_DOWN", 1},
    {"BandwidthLimitExceeded", "SLOW_DOWN", 1},
    {"InternalError", "INTERNAL", 1},
    {"ServiceUnavailable", "UNAVAILABLE", 1},
    {"RequestTimeout", "REQUEST_TIMEOUT", 1},
    {"RequestTimeoutException", "REQUEST_TIMEOUT", 1},
    {"PriorRequestNotComplete", "SLOW_DOWN", 1},
    {"OperationAborted", "CONFLICT", 1},
};

const char *s3err_classify(const s3err_info *info, long status, int *retryable) {
  size_t k;
  if (info && info->code[0]) {
    /* S3 reports an expired presigned URL as AccessDenied "Request has expired". */
    if (strcmp(info->code, "AccessDenied") == 0 &&
        strstr(info->message, "expired") != NULL) {
      *retryable = 0;
      return "EXPIRED";
    }
    for (k = 0; k < sizeof s3codes / sizeof s3codes[0]; k++) {
      if (strcmp(info->code, s3codes[k].s3) == 0) {
        *retryable = s3codes[k].retryable;
        return s3codes[k].code;
      }
    }
  }
  return transfer_status_code(status, retryable);
}
