#!/bin/sh
# Transfer benchmark (not a test): a SIZE_MB put and get through skafos.s3 and through
# curl -T / curl -o on the same presigned URLs of the emulator's storage, alternated,
# RUNS times; prints median wall time, the skafos/curl ratio and the peak RSS of each.
#   sh tests/bench/transfer/run.sh [path/to/skafos]
# Environment: SIZE_MB (1024), RUNS (3), EMULATOR (path of server.js, default the tree's),
# PREFILL (1; 0: no scratch write before each run, see prefill below).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
skafos=${1:-$root/build/skafos}
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}
case $skafos in /*) ;; *) skafos=$(pwd)/$skafos ;; esac
[ -x "$skafos" ] || { echo "no skafos binary at $skafos (build first)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/skafos-bench.XXXXXX")
EMU_PID=
cleanup() {
  if [ -n "$EMU_PID" ]; then
    kill "$EMU_PID" 2>/dev/null || true
    sleep 1
    kill -9 "$EMU_PID" 2>/dev/null || true # a hung upload can hold a graceful stop
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$root/tests/helpers/emulator.sh"
emulator_start "$root" "$work" --url-ttl 7200
api=$(emulator_url api); download=$(emulator_url download)
model=/organizations/demo-org/apps/demo-app/models/demo-model
tok="X-API-TOKEN: demo-token"

echo "creating a ${SIZE_MB} MiB file" >&2
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$work/src.bin"

created=$(curl -sS -f -H "$tok" -H 'Content-Type: application/json' \
  -d '{"filename":"demo-model.zip"}' "$api$model/model_versions")
put_url=$(printf '%s' "$created" | sed -n 's/.*"presigned_url":"\([^"]*\)".*/\1/p')
vid=$(printf '%s' "$created" | sed -n 's/.*"model_version_id":\([0-9]*\).*/\1/p')
filepath=$(printf '%s' "$created" | sed -n 's/.*"filepath":"\([^"]*\)".*/\1/p')

# Writing into memory the kernel has not just freed costs this machine about 2 s per GiB,
# so whichever run follows a delete looks faster. Every run gets the same start: write and
# delete three times the file's size first (PREFILL=0 turns this off).
prefill() {
  [ "${PREFILL:-1}" = 0 ] && return 0
  dd if=/dev/zero of="$work/prefill" bs=1M count=$((SIZE_MB * 3 + 64)) status=none
  rm -f "$work/prefill"
}

# measure NAME CMD...: appends "seconds peak_kib" to $work/NAME
measure() {
  name=$1; shift
  prefill
  /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null
  cat "$work/time.out" >>"$work/$name"
}

sk_put() { measure skafos_put "$skafos" run "$here/xfer.lua" put "$put_url" "$work/src.bin"; }
curl_put() {
  measure curl_put curl -sS -f -T "$work/src.bin" -H 'Content-Type: application/octet-stream' \
    -o /dev/null "$put_url"
}
# The same work as skafos with the reference tools: curl sends while openssl computes the
# MD5 (skafos checks the ETag with it) and the SHA-256 of the same bytes.
hashed_put() {
  measure hashed_put sh -c 'openssl dgst -md5 "$1" & a=$!; openssl dgst -sha256 "$1" & b=$!
    curl -sS -f -T "$1" -H "Content-Type: application/octet-stream" -o /dev/null "$2" &&
    wait $a && wait $b' sh "$work/src.bin" "$put_url"
}
run=1
while [ $run -le "$RUNS" ]; do
  echo "put run $run/$RUNS" >&2
  case $((run % 3)) in
    1) sk_put; curl_put; hashed_put ;;
    2) curl_put; hashed_put; sk_put ;;
    0) hashed_put; sk_put; curl_put ;;
  esac
  run=$((run + 1))
done

curl -sS -f -X PATCH -H "$tok" -H 'Content-Type: application/json' \
  -d "{\"filepath\":\"$filepath\"}" "$api$model/model_versions/$vid" >/dev/null
get_url=$(curl -sS -o /dev/null -w '%{redirect_url}' -H "$tok" "$download$model")

sk_get() {
  measure skafos_get "$skafos" run "$here/xfer.lua" get "$get_url" "$work/out.bin"
  cmp -s "$work/src.bin" "$work/out.bin" || { echo "skafos get: bytes differ" >&2; exit 1; }
  rm -f "$work/out.bin"
}
curl_get() { measure curl_get curl -sS -f -o "$work/out.bin" "$get_url"; rm -f "$work/out.bin"; }
# curl writes the file while openssl computes the SHA-256 of what arrives, as skafos does
# (a failed curl shows as different bytes: the pipeline's status is openssl's)
hashed_get() {
  measure hashed_get sh -c 'curl -sS -f "$2" | tee "$1" | openssl dgst -sha256' sh "$work/out.bin" "$get_url"
  cmp -s "$work/src.bin" "$work/out.bin" || { echo "curl | tee: bytes differ" >&2; exit 1; }
  rm -f "$work/out.bin"
}
run=1
while [ $run -le "$RUNS" ]; do
  echo "get run $run/$RUNS" >&2
  case $((run % 3)) in
    1) sk_get; curl_get; hashed_get ;;
    2) curl_get; hashed_get; sk_get ;;
    0) hashed_get; sk_get; curl_get ;;
  esac
  run=$((run + 1))
done

median() { awk -v c="$2" '{print $c}' "$work/$1" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "transfer benchmark: ${SIZE_MB} MiB, $RUNS runs each, medians (emulator storage on loopback)"
if [ "${PREFILL:-1}" = 0 ]; then echo "(no scratch write before the runs: PREFILL=0)"
else echo "(every run starts after writing and deleting $((SIZE_MB * 3 + 64)) MiB of scratch)"; fi
echo "(curl+openssl: curl -T beside openssl's MD5 and SHA-256 of the file; curl | tee FILE | openssl SHA-256)"
printf '%-5s %10s %8s %15s %8s %16s %14s\n' dir "skafos s" "curl s" "curl+openssl s" "/ curl" "/ curl+openssl" "skafos RSS MiB"
for dir in put get; do
  st=$(median "skafos_$dir" 1); ct=$(median "curl_$dir" 1); ht=$(median "hashed_$dir" 1)
  sr=$(median "skafos_$dir" 2)
  awk -v d="$dir" -v st="$st" -v ct="$ct" -v ht="$ht" -v sr="$sr" \
    'BEGIN { printf "%-5s %10.2f %8.2f %15.2f %7.2fx %15.2fx %14.1f\n", d, st, ct, ht, st / ct, st / ht, sr / 1024 }'
done
