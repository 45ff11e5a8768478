/*
 * The Lua files compiled into the binary: one row per file under lua/ and scripts/, keyed
 * by repository path ("scripts/publish.lua"), with its source and its bytecode (dumped at
 * build time by core/tools/embed.c), ended by a row whose path is NULL.
 */
#ifndef SKAFOS_EMBEDDED_H
#define SKAFOS_EMBEDDED_H

#include <stddef.h>

typedef struct skafos_embedded {
  const char *path;
  const char *data; /* the source, NUL-terminated; len excludes the NUL */
  size_t len;
  const char *code; /* the bytecode, with debug information (chunk name "@<path>") */
  size_t code_len;
} skafos_embedded;

extern const skafos_embedded skafos_embedded_files[];
/* lua_ident of the Lua that compiled the bytecode: a library of any other release gets
 * the sources instead, since bytecode is only promised to the release that wrote it. */
extern const char skafos_embedded_lua_ident[];

#endif
