# What the platform offers the core beyond ISO C and POSIX, found by compiling, never
# assumed from the system's name. Every check that passes adds a SKAFOS_HAVE_* definition
# to SKAFOS_FEATURE_DEFINITIONS; the code has a portable fallback for each one that fails.
# GNU extensions are declared by glibc only under _GNU_SOURCE: the one file that uses such
# a function gets _GNU_SOURCE (SKAFOS_GNU_SOURCE_FILES), the rest of the core never does.
#
# Not probed, because POSIX.1-2008 has them and so do macOS and the BSDs: statvfs, nftw,
# setitimer and SIGALRM (the --timeout deadline), O_NOFOLLOW, O_DIRECTORY and O_CLOEXEC;
# flock and TIOCGWINSZ are in every Unix C library. lfs.c and zipread.c ask for X/Open
# (_XOPEN_SOURCE 700) for nftw; on macOS _DARWIN_C_SOURCE keeps the rest visible.
#
# SKAFOS_PORTABLE=ON skips every Linux-only and x86-only check, so the build takes the
# fallbacks a system without them (macOS, the BSDs) would take, and the test suite
# exercises them here. What stays on is what those systems have too (dladdr, statvfs).
include(CheckSymbolExists)
include(CheckCSourceCompiles)
include(CheckLinkerFlag)

set(SKAFOS_FEATURE_DEFINITIONS)
set(SKAFOS_GNU_SOURCE_FILES)
set(SKAFOS_FEATURES_FOUND)

# skafos_feature(NAME SOURCE [GNU] [LINUX_OR_X86] [FILES file...] [LIBRARIES lib...])
# Compiles SOURCE; on success defines SKAFOS_HAVE_<NAME>. GNU: retries with _GNU_SOURCE
# when the first try fails, and gives the FILES _GNU_SOURCE when only that one worked.
# LINUX_OR_X86: skipped (not found) in a SKAFOS_PORTABLE build.
function(skafos_feature name source)
  cmake_parse_arguments(F "GNU;LINUX_OR_X86" "" "FILES;LIBRARIES" ${ARGN})
  set(var "SKAFOS_HAVE_${name}")
  if(F_LINUX_OR_X86 AND SKAFOS_PORTABLE)
    message(STATUS "Feature ${name}: off (SKAFOS_PORTABLE)")
    return()
  endif()
  set(CMAKE_REQUIRED_LIBRARIES ${F_LIBRARIES})
  set(CMAKE_REQUIRED_QUIET ON)
  check_c_source_compiles("${source}" ${var}_PLAIN)
  set(gnu OFF)
  if(NOT ${var}_PLAIN AND F_GNU)
    set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
    check_c_source_compiles("${source}" ${var}_GNU)
    set(gnu ${${var}_GNU})
  endif()
  if(${var}_PLAIN OR gnu)
    set(SKAFOS_FEATURE_DEFINITIONS ${SKAFOS_FEATURE_DEFINITIONS} ${var} PARENT_SCOPE)
    set(SKAFOS_FEATURES_FOUND ${SKAFOS_FEATURES_FOUND} ${name} PARENT_SCOPE)
    if(gnu)
      set(SKAFOS_GNU_SOURCE_FILES ${SKAFOS_GNU_SOURCE_FILES} ${F_FILES} PARENT_SCOPE)
      message(STATUS "Feature ${name}: yes (with _GNU_SOURCE)")
    else()
      message(STATUS "Feature ${name}: yes")
    endif()
  else()
    message(STATUS "Feature ${name}: no")
  endif()
endfunction()

# ---- files -----------------------------------------------------------------------------
# Linux: start writeback of a range early (transfer.c, pget.c); fallback: the final fsync
# does it all.
skafos_feature(SYNC_FILE_RANGE [=[
#include <fcntl.h>
int main(void) { return sync_file_range(0, 0, 0, SYNC_FILE_RANGE_WRITE); }
]=] GNU LINUX_OR_X86 FILES core/transfer.c core/pget.c)
# Linux: reserve blocks without changing the size (zipwrite.c); fallback: no reservation.
skafos_feature(FALLOCATE [=[
#include <fcntl.h>
int main(void) { return fallocate(0, FALLOC_FL_KEEP_SIZE, 0, 1); }
]=] GNU LINUX_OR_X86 FILES core/zipwrite.c)
# POSIX, but macOS lacks it: read-ahead hints (zipwrite.c, ls3.c); fallback: no hint.
skafos_feature(POSIX_FADVISE [=[
#include <fcntl.h>
int main(void) { return posix_fadvise(0, 0, 0, POSIX_FADV_SEQUENTIAL); }
]=] LINUX_OR_X86)

# ---- where the executable and the code are (sysdep.c) -----------------------------------
# /proc/self/exe is a file, not a symbol: it is Linux's (and Android's) by definition.
if(CMAKE_SYSTEM_NAME MATCHES "^(Linux|Android)$" AND NOT SKAFOS_PORTABLE)
  list(APPEND SKAFOS_FEATURE_DEFINITIONS SKAFOS_HAVE_PROC_SELF_EXE)
  list(APPEND SKAFOS_FEATURES_FOUND PROC_SELF_EXE)
  message(STATUS "Feature PROC_SELF_EXE: yes")
endif()
skafos_feature(NSGETEXECUTABLEPATH [=[
#include <stdint.h>
#include <mach-o/dyld.h>
int main(void) { char b[64]; uint32_t n = sizeof b; return _NSGetExecutablePath(b, &n); }
]=])
# glibc: the link map of the object holding an address; fallback: dladdr, then nothing.
skafos_feature(DLADDR1 [=[
#include <dlfcn.h>
#include <link.h>
int main(void) {
  Dl_info i; struct link_map *m = 0;
  return dladdr1((void *)main, &i, (void **)&m, RTLD_DL_LINKMAP);
}
]=] GNU LINUX_OR_X86 FILES core/sysdep.c LIBRARIES ${CMAKE_DL_LIBS})
skafos_feature(DLADDR [=[
#include <dlfcn.h>
int main(void) { Dl_info i; return dladdr((void *)main, &i) && i.dli_fname != 0; }
]=] GNU FILES core/sysdep.c LIBRARIES ${CMAKE_DL_LIBS})

# ---- CRC-32 (crc32x.c): the instructions the compiler can emit, chosen at run time ------
skafos_feature(X86_CLMUL [=[
#include <immintrin.h>
__attribute__((target("pclmul,sse4.1"))) static int f(void) {
  __m128i x = _mm_clmulepi64_si128(_mm_setzero_si128(), _mm_setzero_si128(), 0x11);
  return _mm_cvtsi128_si32(x);
}
__attribute__((target("pclmul,sse4.1,avx2,avx512f,vpclmulqdq"))) static int g(void) {
  __m512i z = _mm512_clmulepi64_epi128(_mm512_setzero_si512(), _mm512_setzero_si512(), 0);
  return _mm_cvtsi128_si32(_mm512_castsi512_si128(z));
}
int main(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("pclmul") ? f() + g() : 0;
}
]=] LINUX_OR_X86)
skafos_feature(ARM_CRC32 [=[
#include <arm_acle.h>
#include <stdint.h>
#if defined(__ARM_FEATURE_CRC32)
#define ARMCRC
#elif defined(__clang__)
#define ARMCRC __attribute__((target("crc")))
#else
#define ARMCRC __attribute__((target("+crc")))
#endif
ARMCRC static uint32_t f(uint32_t c, uint64_t v) { return __crc32d(__crc32b(c, (uint8_t)v), v); }
int main(void) { return (int)f(1, 2); }
]=])
# Whether the processor has them: Linux's auxiliary vector, macOS's sysctl.
skafos_feature(GETAUXVAL_HWCAP_CRC32 [=[
#include <sys/auxv.h>
#include <asm/hwcap.h>
int main(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
]=] LINUX_OR_X86)
skafos_feature(SYSCTLBYNAME [=[
#include <stddef.h>
#include <sys/types.h>
#include <sys/sysctl.h>
int main(void) { int v = 0; size_t n = sizeof v; return sysctlbyname("hw.optional.armv8_crc32", &v, &n, NULL, 0); }
]=])

# ---- tasks (tasks.c) ---------------------------------------------------------------------
# Fibers for skafos.tasks: POSIX.1-2001's ucontext (obsolescent, yet glibc, macOS and the
# BSDs keep it; macOS wants _XOPEN_SOURCE, which tasks.c defines there) and an anonymous mapping for
# each stack. Fallback (musl has no makecontext): tasks run one after the other.
skafos_feature(UCONTEXT [=[
#ifdef __APPLE__
#define _XOPEN_SOURCE 700
#define _DARWIN_C_SOURCE
#endif
#include <stddef.h>
#include <sys/mman.h>
#include <ucontext.h>
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
static ucontext_t a, b;
static void f(void) { swapcontext(&b, &a); }
int main(void) {
  static char st[65536];
  void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  getcontext(&b);
  b.uc_stack.ss_sp = st;
  b.uc_stack.ss_size = sizeof st;
  b.uc_link = NULL;
  makecontext(&b, f, 0);
  return swapcontext(&a, &b) + (m == MAP_FAILED);
}
]=])

# ---- linking -----------------------------------------------------------------------------
# GNU ld and lld take a version script (the exact export list); Apple's ld takes a list of
# exported symbols; elsewhere hidden visibility alone decides.
file(WRITE "${CMAKE_BINARY_DIR}/CMakeFiles/skafos-check.map" "{ global: main; local: *; };\n")
check_linker_flag(C "LINKER:--version-script=${CMAKE_BINARY_DIR}/CMakeFiles/skafos-check.map"
                  SKAFOS_HAVE_VERSION_SCRIPT)
