#!/bin/sh
# make demo: runs the bundled example workflow with the freshly built binary.
set -eu
SKAFOS=${1:-build/skafos}
run() { printf '\n$ %s\n' "$*"; "$@"; }
run "$SKAFOS" --version
run "$SKAFOS" scripts
run "$SKAFOS" hello --name demo
