#!/bin/sh
# `make bench`: the end-to-end benchmark of publish and fetch against zip, pigz, curl, unzip
# and Python (tests/bench/e2e/, about 35 minutes at full size; it writes
# tests/bench/RESULTS.md), then the transfer and zip module benchmarks when they exist.
# usage: sh tests/bench/run.sh path/to/skafos
#   BENCH_ARGS="--runs 7" or "--datasets random --size-mib 256" passes options to the harness.
set -u
skafos=${1:?usage: sh tests/bench/run.sh path/to/skafos}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
status=0

# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
"$python" "$here/e2e/bench.py" --skafos "$skafos" --results "$here/RESULTS.md" ${BENCH_ARGS:-} || status=1

# The module benchmarks, when they are there (each prints its own table).
if [ -f "$here/transfer/run.sh" ]; then
  echo "== tests/bench/transfer" >&2
  sh "$here/transfer/run.sh" "$skafos" || status=1
fi
if [ -f "$here/zip/bench.py" ]; then
  echo "== tests/bench/zip" >&2
  "$python" "$here/zip/bench.py" --bin "$skafos" || status=1
fi
exit $status
