// The C++ consumer: the same as consumer.c, with skafos.h included before Lua's C++ header
// here, alone in state.cpp and after it in version.cpp (tests/install/check_consumers.sh).
#include <skafos.h>

#include <lua.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

lua_State *new_state();         // state.cpp
std::string library_version();  // version.cpp

// the host's own zcrc32 must not replace libskafos's (see consumer.c)
extern "C" std::uint32_t zcrc32(std::uint32_t crc, const void *p, std::size_t n) {
  (void)p;
  (void)n;
  return crc ^ 0x5a5a5a5au;
}

int main(int argc, char **argv) {
  if (library_version() != SKAFOS_VERSION) {
    std::fprintf(stderr, "consumer++: skafos.h says %s, the library %s\n", SKAFOS_VERSION,
                 library_version().c_str());
    return 100;
  }
  std::printf("consumer++: skafos %s\n", library_version().c_str());
  std::fflush(stdout);
  lua_State *L = new_state();
  luaL_openlibs(L);
  skafos_openlibs(L);
  int code = SKAFOS_EXIT_OK;
  std::vector<char *> args(argv + 1, argv + argc);
  for (std::size_t i = 0; code == SKAFOS_EXIT_OK && i < args.size();) {
    std::size_t end = i + 1;
    while (end < args.size() && std::strcmp(args[end], "--") != 0)
      end++;
    code = skafos_run_workflow(L, args[i], static_cast<int>(end - i - 1), args.data() + i + 1);
    std::fflush(stdout);
    i = end + 1;
  }
  lua_close(L);
  return code;
}
