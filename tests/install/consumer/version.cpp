// Lua's C++ header first, then skafos.h.
#include <lua.hpp>

#include <skafos.h>

#include <string>

static_assert(SKAFOS_VERSION_NUM == SKAFOS_VERSION_MAJOR * 10000 + SKAFOS_VERSION_MINOR * 100 +
                                        SKAFOS_VERSION_PATCH,
              "SKAFOS_VERSION_NUM does not match its parts");

std::string library_version();
std::string library_version() { return skafos_version(); }
