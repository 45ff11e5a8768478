// skafos.h alone brings Lua's lua.h with C linkage: a state made with lua.h's own API.
#include <skafos.h>

#include <cstdlib>

static void *allocate(void *, void *block, std::size_t, std::size_t size) {
  if (size == 0) {
    std::free(block);
    return nullptr;
  }
  return std::realloc(block, size);
}

lua_State *new_state();
lua_State *new_state() { return lua_newstate(allocate, nullptr); }
