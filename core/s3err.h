/*
 * S3's XML error documents (<Error><Code>..</Code><Message>..</Message></Error>) turned
 * into skafos error codes, with `retryable` as S3's documentation and the AWS SDKs
 * classify them: throttling and server faults retry; expiry and signatures need a new URL.
 */
#ifndef SKAFOS_S3ERR_H
#define SKAFOS_S3ERR_H

#include <stddef.h>

typedef struct s3err_info {
  char code[64];        /* S3's Code, e.g. "AccessDenied"; "" when absent */
  char message[512];    /* S3's Message, entities decoded; "" when absent */
  char request_id[128]; /* RequestId; "" when absent */
} s3err_info;

/* Parses an error body. Returns 1 when it is an S3 <Error> document (fields filled,
 * truncated to fit), 0 otherwise (fields emptied). */
int s3err_parse(const char *body, size_t n, s3err_info *out);

/* The skafos code for an error response: from S3's Code (and Message, for the
 * "Request has expired" flavour of AccessDenied) when info is not NULL and has a code,
 * else from the HTTP status. Sets *retryable. */
const char *s3err_classify(const s3err_info *info, long status, int *retryable);

#endif
