#!/bin/sh
# The Debian package: `cpack -G DEB` from the build directory, its dependencies (Debian's
# runtime packages, from dpkg-shlibdeps), `dpkg -i`, then the installed skafos, skafos.so
# for the system's lua5.4 and skafos.pc, and `dpkg --purge` (dpkg -r, and the package's
# record) at the end, whatever happened.
# Needs root (CI runs as root), as dpkg -i does; skipped only where there is no dpkg.
# Usage: check_deb.sh BUILD_DIR PROJECT_VERSION
set -eu
BUILD=$1 VERSION=$2
. "$(dirname "$0")/lib.sh"
command -v dpkg >/dev/null || skip "no dpkg here: the .deb cannot be installed"
[ "$(id -u)" = 0 ] || fail "dpkg -i needs root (run the suite as root, as CI does)"

(cd "$BUILD" && cpack -G DEB -B "$WORK/pkg") > "$WORK/cpack.log" 2>&1 \
  || { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$WORK"/pkg/skafos_"$VERSION"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "cpack made no skafos_${VERSION}_*.deb"
depends=$(dpkg-deb -f "$deb" Depends)
for p in libc6 liblua5.4-0 libcurl4 lua-cjson zlib1g; do
  echo "$depends" | grep -q "\\b$p\\b" || fail "the package does not depend on $p: $depends"
done
[ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ] || fail "the package's version is not $VERSION"

# One such test on the machine at a time (other checkouts run it too): the package is
# installed system-wide, then removed.
exec 9> "${TMPDIR:-/tmp}/skafos-deb-test.lock"
flock -w 600 9 || fail "another skafos package test holds the lock"
if dpkg-query -W -f='${Status}' skafos 2>/dev/null | grep -q 'ok installed'; then
  echo "note: a skafos package is installed already; it is replaced, then removed"
fi
removed=
# --purge: dpkg -r keeps a package with maintainer scripts listed, as config-files
remove() { [ -n "$removed" ] || dpkg --purge skafos > "$WORK/dpkg-r.log" 2>&1 || cat "$WORK/dpkg-r.log" >&2; }
CLEANUPS=remove
dpkg -i "$deb" > "$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i $deb"; }

isolate
cd "$WORK"
case "$(/usr/bin/skafos --version)" in
  "skafos $VERSION "*) ;;
  *) fail "the installed skafos --version: $(/usr/bin/skafos --version 2>&1)" ;;
esac
/usr/bin/skafos scripts | grep -q "/usr/bin/\\.\\./share/skafos/scripts" \
  || fail "the installed skafos does not use /usr/share/skafos"
printf 'print(type(require("skafos.http").request))\n' > net.lua
[ "$(/usr/bin/skafos run net.lua)" = function ] || fail "the installed skafos cannot load its network library"
mod=$(dpkg -L skafos | grep '/lua/5\.4/skafos\.so$')
[ "$(lua5.4 -e "package.cpath = '$(dirname "$mod")/?.so'" -e 'print(require("skafos").version)')" = "$VERSION" ] \
  || fail "lua5.4 cannot use the packaged $mod"
[ "$(PKG_CONFIG_PATH= pkg-config --modversion skafos)" = "$VERSION" ] \
  || fail "pkg-config does not find the packaged skafos.pc"

dpkg --purge skafos > "$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg --purge skafos"; }
removed=1
[ ! -e /usr/bin/skafos ] && [ ! -e "$mod" ] || fail "dpkg --purge left /usr/bin/skafos or $mod"
! dpkg-query -W skafos > /dev/null 2>&1 || fail "dpkg still lists skafos after --purge"
echo "install/deb: ok ($(basename "$deb"): $depends)"
