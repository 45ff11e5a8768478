#!/bin/sh
# make demo: start the local Skafos emulator on a fresh data directory, publish a small
# generated model with its labels, list versions, fetch and unzip the latest, compare
# the bytes, deploy to dev, stop the emulator. Every command is printed before it runs.
set -eu
SKAFOS=$(cd "$(dirname "${1:-build/skafos}")" && pwd)/$(basename "${1:-build/skafos}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skafos-demo.XXXXXX")
EMU_PID=
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

run() {
  printf '\n$'
  for a in "$@"; do case $a in *' '*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac; done
  printf '\n'
  "$@"
}

. "$ROOT/tests/helpers/emulator.sh"
emulator_start "$ROOT" "$WORK"
export SKAFOS_API_URL="$(emulator_url api)" SKAFOS_DOWNLOAD_URL="$(emulator_url download)"
export SKAFOS_API_TOKEN=demo-token SKAFOS_ORG_NAME=demo-org SKAFOS_APP_NAME=demo-app
export SKAFOS_MODEL_NAME=demo-model
echo "Emulator running: API $SKAFOS_API_URL, downloads $SKAFOS_DOWNLOAD_URL"

# a small Core ML-like model: a header, float32-looking weights, and labels
mkdir -p "$WORK/model" && cd "$WORK/model"
{ printf 'SKAFOS-DEMO-MLMODEL\n'; head -c 262144 /dev/urandom | od -An -tf4 -v | head -n 4000; } > Classifier.mlmodel
printf 'cat\ndog\nbird\nfish\n' > labels.txt

run "$SKAFOS" --version
run "$SKAFOS" publish -m "demo classifier" Classifier.mlmodel labels.txt
run "$SKAFOS" versions
cd "$WORK"
run "$SKAFOS" fetch --unzip fetched
run cmp model/Classifier.mlmodel fetched/Classifier.mlmodel
run cmp model/labels.txt fetched/labels.txt
echo "The fetched files are identical to the published ones."
run "$SKAFOS" deploy --env dev
run "$SKAFOS" environments
