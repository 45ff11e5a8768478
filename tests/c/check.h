/*
 * The C unit tests' one assertion: CHECK(cond) reports a failed condition with its place
 * and counts it; a test's main returns failures != 0.
 */
#ifndef SKAFOS_TEST_CHECK_H
#define SKAFOS_TEST_CHECK_H

#include <stdio.h>

static int failures = 0;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
      failures++;                                                                        \
    }                                                                                    \
  } while (0)

#endif
