#!/bin/sh
# One publish the way a shell script around zip/pigz/tar and curl would do it: create the
# version (E4), write the archive to OUT, PUT it to the presigned URL, finalize it (E6).
# usage: publish.sh MODE OUT INPUT   (run from INPUT's directory; INPUT is a relative name)
#   MODE: zip6 (zip -r -6), zip1 (zip -r -1), pigz6 (pigz -6; tar first for a directory),
#         raw (the input's bytes as they are; tar -cf for a directory),
#         rawhash (raw, while openssl computes the MD5 and SHA-256 of the same bytes: the work
#         skafos does on top of sending, done by the reference tools)
# Reads SKAFOS_API_URL, SKAFOS_API_TOKEN, SKAFOS_ORG_NAME, SKAFOS_APP_NAME, SKAFOS_MODEL_NAME.
set -eu
mode=$1 out=$2 input=$3
base="$SKAFOS_API_URL/organizations/$SKAFOS_ORG_NAME/apps/$SKAFOS_APP_NAME/models/$SKAFOS_MODEL_NAME"

created=$(curl -sS -f -H "X-API-TOKEN: $SKAFOS_API_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"filename\":\"$SKAFOS_MODEL_NAME.zip\"}" "$base/model_versions")
field() { printf '%s' "$created" | sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p"; }
id=$(field model_version_id)
filepath=$(field filepath)
url=$(field presigned_url)
[ -n "$id" ] && [ -n "$filepath" ] && [ -n "$url" ] || { echo "publish.sh: bad E4 answer: $created" >&2; exit 1; }

case $mode in
  zip6) zip -q -r -6 "$out" "$input" ;;
  zip1) zip -q -r -1 "$out" "$input" ;;
  pigz6)
    if [ -d "$input" ]; then tar -cf - "$input" | pigz -6 > "$out"
    else pigz -6 -c "$input" > "$out"; fi ;;
  raw | rawhash)
    if [ -d "$input" ]; then tar -cf "$out" "$input"; else out=$input; fi ;;
  *) echo "publish.sh: unknown mode $mode" >&2; exit 2 ;;
esac

hashers=
if [ "$mode" = rawhash ]; then
  openssl dgst -md5 "$out" >/dev/null & hashers="$!"
  openssl dgst -sha256 "$out" >/dev/null & hashers="$hashers $!"
fi
code=$(curl -sS -o /dev/null -w '%{http_code}' -T "$out" -H 'Content-Type: application/octet-stream' "$url")
for pid in $hashers; do wait "$pid" || { echo "publish.sh: openssl dgst failed" >&2; exit 1; }; done
[ "$code" = 200 ] || { echo "publish.sh: PUT answered $code" >&2; exit 1; }

curl -sS -f -o /dev/null -X PATCH -H "X-API-TOKEN: $SKAFOS_API_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"filepath\":\"$filepath\"}" "$base/model_versions/$id"
echo "$id"
