#!/bin/sh
# Rewrites the golden copies of the generated man page and completions from a build
# (default ./build) after a deliberate change to the commands or their options; review the
# diff before committing it.
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/../.."
cmake --build "$BUILD" --target skafos_docs >/dev/null
for f in skafos.1 skafos.bash _skafos skafos.fish; do
  cp "$BUILD/generated/$f" "tests/golden/$f"
done
git diff --stat -- tests/golden
