# Shared by the tests/install scripts (sourced): a work directory removed on exit, a fresh
# install of the build into a prefix inside it, and the emulator on loopback.
# Set before sourcing: BUILD (the build directory, for install_build).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skafos-install-test.XXXXXX")
EMU_PID=
CLEANUPS=
cleanup() {
  for c in $CLEANUPS; do "$c" || :; done
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

# Installs the build into $WORK/prefix (PREFIX) and finds what a user's tools would:
# LIBDIR (where libskafos.so went) and PKG_CONFIG_PATH for skafos.pc.
install_build() {
  PREFIX=$WORK/prefix
  cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null || fail "cmake --install"
  pc=$(find "$PREFIX" -name skafos.pc | head -n 1)
  [ -n "$pc" ] || fail "no skafos.pc installed"
  LIBDIR=$(dirname "$(dirname "$pc")")
  PKG_CONFIG_PATH=$(dirname "$pc")
  export PKG_CONFIG_PATH
}

# Starts the emulator seeded with tests/e2e/seed.json and points skafos at it; the model is
# demo-org/demo-app/demo-model, the token demo-token (plain http to 127.0.0.1 is allowed).
start_emulator() {
  . "$ROOT/tests/helpers/emulator.sh"
  emulator_start "$ROOT" "$WORK/emulator" --seed "$ROOT/tests/e2e/seed.json" ||
    fail "the emulator did not start"
  SKAFOS_API_URL=$(emulator_url api)
  SKAFOS_DOWNLOAD_URL=$(emulator_url download)
  export SKAFOS_API_URL SKAFOS_DOWNLOAD_URL SKAFOS_API_TOKEN=demo-token \
    SKAFOS_ORG_NAME=demo-org SKAFOS_APP_NAME=demo-app SKAFOS_MODEL_NAME=demo-model
}

# No user or project configuration, no SKAFOS_PATH: only what was installed.
isolate() {
  mkdir -p "$WORK/home/.config"
  HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config
  export HOME XDG_CONFIG_HOME
  unset SKAFOS_PATH SKAFOS_SAFE_DIRECTORIES LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4
}
