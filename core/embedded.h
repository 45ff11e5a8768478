/*
 * The Lua sources compiled into the binary: one row per file under lua/ and scripts/,
 * keyed by repository path ("scripts/publish.lua"), ended by a row whose path is NULL.
 */
#ifndef SKAFOS_EMBEDDED_H
#define SKAFOS_EMBEDDED_H

#include <stddef.h>

typedef struct skafos_embedded {
  const char *path;
  const char *data; /* NUL-terminated; len excludes the NUL */
  size_t len;
} skafos_embedded;

extern const skafos_embedded skafos_embedded_files[];

#endif
