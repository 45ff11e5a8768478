# `cpack -G DEB` in a build directory (or `make deb`, which configures one for /usr): one
# Debian package with everything `cmake --install` puts in place. Its dependencies are the
# Debian packages of the shared libraries the binaries link (dpkg-shlibdeps, from
# dpkg-dev); the paths it installs are relative to /usr, which the runtime, skafos.pc and
# the CMake package all accept, whatever prefix the build was configured with.
set(CPACK_PACKAGE_NAME skafos)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "publish machine-learning model versions and fetch them back, scriptable in Lua")
set(CPACK_PACKAGE_DESCRIPTION
    "skafos publishes model versions to a model-delivery API and fetches them back. The
package holds the skafos command, its Lua workflows, the libskafos library with skafos.h,
skafos.pc and a CMake package, and the Lua 5.4 module skafos.so.")
set(CPACK_PACKAGE_CONTACT "skafos maintainers")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# a shlibs file for libskafos.so.${SKAFOS_ABI}, for packages built against it
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# to build programs with skafos.h (pkg-config or CMake finds Lua through lua5.4.pc)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "liblua5.4-dev, pkg-config")
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
