#!/bin/sh
# `make bench`: the end-to-end benchmark of publish and fetch against zip, pigz, curl, unzip
# and Python (tests/bench/e2e/, about 35 minutes at full size; it writes
# tests/bench/RESULTS.md), then the transfer and zip module benchmarks when they exist.
# usage: sh tests/bench/run.sh path/to/skafos
#   BENCH_ARGS="--runs 7" or "--datasets random --size-mib 256" passes options to the harness;
#   CONNECTIONS_BENCH_ARGS="--size-mib 256 --runs 3" to the connections benchmark,
#   TASKS_BENCH_ARGS="--size-mib 16 --runs 1" to the tasks benchmark.
set -u
skafos=${1:?usage: sh tests/bench/run.sh path/to/skafos}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
status=0

# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
"$python" "$here/e2e/bench.py" --skafos "$skafos" --results "$here/RESULTS.md" ${BENCH_ARGS:-} || status=1

# The module benchmarks, when they are there: each prints its own tables, which are also
# appended to RESULTS.md under a heading of their own.
results="$here/RESULTS.md"
module() { # module FENCE TITLE COMMAND...: FENCE is "pre" for plain-text output, else "md"
  fence=$1 title=$2
  shift 2
  echo "== $title" >&2
  out=$(mktemp)
  "$@" > "$out" || status=1
  cat "$out"
  {
    printf '\n## Module benchmark: %s\n\n' "$title"
    [ "$fence" = pre ] && printf '```\n'
    cat "$out"
    [ "$fence" = pre ] && printf '```\n'
  } >> "$results"
  rm -f "$out"
}
if [ -f "$here/transfer/run.sh" ]; then
  module pre "tests/bench/transfer, 1 GiB put and get against curl" sh "$here/transfer/run.sh" "$skafos"
fi
if [ -f "$here/memory/run.sh" ]; then
  module pre "tests/bench/memory, peak memory with many entries against unzip, zip, bsdtar and Python" \
    sh "$here/memory/run.sh" "$skafos"
fi
if [ -f "$here/connections/bench.py" ]; then
  module md "tests/bench/connections, fetch -o and --unzip over several connections against aria2c and curl, upload against curl -T" \
    "$python" "$here/connections/bench.py" --skafos "$skafos" ${CONNECTIONS_BENCH_ARGS:-}
fi
if [ -f "$here/tasks/bench.py" ]; then
  module md "tests/bench/tasks, a script fetching 8 models at once against 8 fetches in a row" \
    "$python" "$here/tasks/bench.py" --skafos "$skafos" ${TASKS_BENCH_ARGS:-}
fi
if [ -f "$here/zip/bench.py" ]; then
  module md "tests/bench/zip, the zip module against zip, pigz, Python, cp and unzip" \
    "$python" "$here/zip/bench.py" --bin "$skafos"
fi
exit $status
