#!/usr/bin/env bash
# Measure a PUT and a GET of one large file with curl against the emulator's storage host
# and against nginx serving (and, with its DAV module, accepting) the same file from disk.
# usage: tests/emulator/bench.sh [SIZE_MIB (default 1024)] [RUNS (default 3)]
# Needs node, curl and nginx. Prints one line per run and a median per case.
set -euo pipefail

SIZE_MIB=${1:-1024}
RUNS=${2:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skafos-bench.XXXXXX")
EMU_PID=
NGINX_PID=

cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

json() { node -e 'const v=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(v[process.argv[1]])' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mibps() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN {printf "%.0f", m / s}'; }

echo "creating a ${SIZE_MIB} MiB file of random bytes" >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/blob"
SRC_MD5=$(md5sum "$WORK/blob" | cut -d' ' -f1)

# --- emulator ---------------------------------------------------------------
node "$HERE/server.js" --data "$WORK/emu" > "$WORK/emu.out" 2> "$WORK/emu.err" &
EMU_PID=$!
for _ in $(seq 100); do [ -s "$WORK/emu.out" ] && break; sleep 0.1; done
API=$(json api < "$WORK/emu.out")
DL=$(json download < "$WORK/emu.out")
TOKEN='X-API-TOKEN: demo-token'
MODEL="organizations/demo-org/apps/demo-app/models/demo-model"

declare -A TIMES
run_case() { # name, then a curl command that prints time_total
  local name=$1; shift
  local t
  t=$("$@") || { echo "$name failed: $*" >&2; exit 1; }
  TIMES[$name]+="$t "
  printf '%-22s %8.3f s  %6s MiB/s\n' "$name" "$t" "$(mibps "$t")"
}

for i in $(seq "$RUNS"); do
  R=$(curl -sf -H "$TOKEN" -d '{"filename":"demo-model.zip"}' "$API/$MODEL/model_versions")
  URL=$(json presigned_url <<<"$R")
  ID=$(json model_version_id <<<"$R")
  FP=$(json filepath <<<"$R")
  run_case "emulator PUT" curl -sf -T "$WORK/blob" -o /dev/null -w '%{time_total}' "$URL"
  curl -sf -H "$TOKEN" -X PATCH -d "{\"filepath\":\"$FP\"}" "$API/$MODEL/model_versions/$ID" > /dev/null
  LOC=$(curl -s -o /dev/null -w '%{redirect_url}' -H "$TOKEN" "$DL/$MODEL")
  run_case "emulator GET >null" curl -sf -o /dev/null -w '%{time_total}' "$LOC"
  run_case "emulator GET >file" curl -sf -o "$WORK/get-emu-$i" -w '%{time_total}' "$LOC"
  [ "$(md5sum < "$WORK/get-emu-$i" | cut -d' ' -f1)" = "$SRC_MD5" ] || { echo "emulator GET: bytes differ" >&2; exit 1; }
  rm -f "$WORK/get-emu-$i"
done

# --- nginx --------------------------------------------------------------------
if [ -x "$NGINX" ]; then
  mkdir -p "$WORK/nginx/logs" "$WORK/nginx/body" "$WORK/www/put"
  ln "$WORK/blob" "$WORK/www/blob"
  PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  DAV=
  if "$NGINX" -V 2>&1 | grep -q http_dav_module; then
    DAV="location /put/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; client_body_temp_path $WORK/nginx/body; }"
  fi
  # A root master hands requests to unprivileged workers: keep them as the current user.
  USER_LINE=
  [ "$(id -u)" = 0 ] && USER_LINE="user root;"
  cat > "$WORK/nginx/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
error_log $WORK/nginx/logs/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$PORT;
    root $WORK/www;
    $DAV
  }
}
EOF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  for i in $(seq "$RUNS"); do
    if [ -n "$DAV" ]; then
      # Kept, like the emulator keeps every object: both then write into fresh page cache.
      run_case "nginx PUT" curl -sf -T "$WORK/blob" -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/put/blob-$i"
    fi
    run_case "nginx GET >null" curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/blob"
    run_case "nginx GET >file" curl -sf -o "$WORK/get-nginx-$i" -w '%{time_total}' "http://127.0.0.1:$PORT/blob"
    rm -f "$WORK/get-nginx-$i"
  done
else
  echo "no nginx at $NGINX: skipping the comparison" >&2
fi

echo "median of $RUNS runs, ${SIZE_MIB} MiB:"
for name in "emulator PUT" "nginx PUT" "emulator GET >null" "nginx GET >null" "emulator GET >file" "nginx GET >file"; do
  [ -n "${TIMES[$name]:-}" ] || continue
  t=$(tr ' ' '\n' <<<"${TIMES[$name]}" | grep . | median)
  printf '  %-22s %8.3f s  %6s MiB/s\n' "$name" "$t" "$(mibps "$t")"
done
