#!/bin/sh
# One fetch of the latest version the way a shell script would do it: curl -L follows the
# download host's redirect (E8) to the presigned GET, then unzip extracts the archive.
# usage: fetch.sh MODE OUT.zip DIR
#   MODE: unzip (curl -L -o, then unzip -q -d DIR), curl (curl -L -o only; DIR unused),
#         url (GET the presigned URL in $BENCH_URL directly: no API call, no unzip)
# Reads SKAFOS_DOWNLOAD_URL, SKAFOS_API_TOKEN, SKAFOS_ORG_NAME, SKAFOS_APP_NAME, SKAFOS_MODEL_NAME.
set -eu
mode=$1 out=$2 dir=$3
latest="$SKAFOS_DOWNLOAD_URL/organizations/$SKAFOS_ORG_NAME/apps/$SKAFOS_APP_NAME/models/$SKAFOS_MODEL_NAME"
case $mode in
  unzip)
    curl -sS -f -L -H "X-API-TOKEN: $SKAFOS_API_TOKEN" -o "$out" "$latest"
    unzip -q "$out" -d "$dir" ;;
  curl) curl -sS -f -L -H "X-API-TOKEN: $SKAFOS_API_TOKEN" -o "$out" "$latest" ;;
  url) curl -sS -f -o "$out" "$BENCH_URL" ;;
  *) echo "fetch.sh: unknown mode $mode" >&2; exit 2 ;;
esac
