/*
 * Where this process and this code live on disk, asked of the system in the best way it
 * has: CMake's feature checks (SKAFOS_HAVE_*) say which calls exist; each has a portable
 * fallback, which is what a SKAFOS_PORTABLE build uses everywhere.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(SKAFOS_HAVE_DLADDR1) || defined(SKAFOS_HAVE_DLADDR)
#include <dlfcn.h>
#endif
#ifdef SKAFOS_HAVE_DLADDR1
#include <link.h>
#endif
#ifdef SKAFOS_HAVE_NSGETEXECUTABLEPATH
#include <mach-o/dyld.h>
#endif

#include "common.h"

/* argv[0] of the skafos executable, for the last fallback of skafos_exe_path; set once by
 * main before any thread starts. */
static const char *exe_argv0 = NULL;

void skafos_set_argv0(const char *argv0) { exe_argv0 = argv0; }

/* realpath(path) into out (PATH_MAX bytes) when it names an executable file. */
static int resolve_exe(const char *path, char *out) {
  struct stat st;
  char full[PATH_MAX];
  if (realpath(path, full) == NULL || stat(full, &st) != 0 || !S_ISREG(st.st_mode) ||
      access(full, X_OK) != 0)
    return -1;
  memcpy(out, full, strlen(full) + 1);
  return 0;
}

/* What a shell would have run for argv0: a name with a slash as it is, else the first
 * executable of that name along PATH. */
static int exe_from_argv0(const char *argv0, char *out) {
  const char *dir, *next;
  char cand[PATH_MAX];
  if (argv0 == NULL || argv0[0] == '\0')
    return -1;
  if (strchr(argv0, '/') != NULL)
    return resolve_exe(argv0, out);
  for (dir = getenv("PATH"); dir != NULL; dir = next) {
    size_t len = strcspn(dir, ":");
    /* an empty PATH entry is the current directory */
    int n = len == 0 ? snprintf(cand, sizeof cand, "./%s", argv0)
                     : snprintf(cand, sizeof cand, "%.*s/%s", (int)len, dir, argv0);
    if (n > 0 && (size_t)n < sizeof cand && resolve_exe(cand, out) == 0)
      return 0;
    next = dir[len] == ':' ? dir + len + 1 : NULL;
  }
  return -1;
}

int skafos_exe_path(char *buf, size_t size) {
  char path[PATH_MAX];
  size_t len;
  int found = 0;
#if defined(SKAFOS_HAVE_PROC_SELF_EXE)
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
    found = 1;
  }
#elif defined(SKAFOS_HAVE_NSGETEXECUTABLEPATH)
  char raw[PATH_MAX];
  uint32_t rawsize = sizeof raw;
  found = _NSGetExecutablePath(raw, &rawsize) == 0 && realpath(raw, path) != NULL;
#endif
  /* no /proc mounted, or a system with no way to ask */
  if (!found && exe_from_argv0(exe_argv0, path) != 0)
    return -1;
  len = strlen(path);
  if (len >= size)
    return -1;
  memcpy(buf, path, len + 1);
  return 0;
}

int skafos_code_path(const void *fn, char *buf, size_t size) {
#if defined(SKAFOS_HAVE_DLADDR1)
  Dl_info info;
  struct link_map *map = NULL;
  char path[PATH_MAX];
  /* the main program's link map has an empty name */
  if (dladdr1(fn, &info, (void **)&map, RTLD_DL_LINKMAP) == 0 || map == NULL || map->l_name == NULL)
    return -1;
  if (map->l_name[0] == '\0')
    return 0;
  if (realpath(map->l_name, path) == NULL || strlen(path) >= size)
    return -1;
  memcpy(buf, path, strlen(path) + 1);
  return 1;
#elif defined(SKAFOS_HAVE_DLADDR)
  /* dladdr names the main program too (glibc: by its argv[0]), so it is told apart by
   * its path; when the executable's path is unknown, fn is taken to be in a library. */
  Dl_info info;
  char path[PATH_MAX], exe[PATH_MAX];
  if (dladdr(fn, &info) == 0 || info.dli_fname == NULL || realpath(info.dli_fname, path) == NULL)
    return -1;
  if (skafos_exe_path(exe, sizeof exe) == 0 && strcmp(exe, path) == 0)
    return 0;
  if (strlen(path) >= size)
    return -1;
  memcpy(buf, path, strlen(path) + 1);
  return 1;
#else
  (void)fn;
  (void)buf;
  (void)size;
  return -1;
#endif
}
