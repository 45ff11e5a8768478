#!/bin/sh
# Runs embed_threads (two lua_States publishing and fetching in two threads at once)
# against the emulator, with nothing of the user's configuration. The same program built
# with ThreadSanitizer (make tsan) fails on a data race.
# Usage: check_threads.sh EMBED_THREADS
set -eu
BIN=$1
. "$(dirname "$0")/../install/lib.sh"
isolate
start_emulator
cd "$WORK"
"$BIN" "$WORK" || fail "embed_threads"
