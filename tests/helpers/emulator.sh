# Shell scripts' way to run the emulator (sourced, POSIX sh):
#   emulator_start ROOT DIR [server options]   starts ROOT's emulator (or $EMULATOR, a
#       server.js; run by $NODE, or node) on a fresh data directory DIR/data, in the
#       background, and waits for the line with its URLs (DIR/urls; its log is
#       DIR/emulator.log). Sets EMU_PID; returns 1 with the log shown when it does not
#       start.
#   emulator_url NAME   prints one of its URLs: api, download, storage, admin.
# The caller stops it (kill "$EMU_PID") in its own clean-up.
emulator_start() {
  _emu_root=$1 _emu_dir=$2
  shift 2
  EMU_URLS=$_emu_dir/urls
  mkdir -p "$_emu_dir"
  : > "$EMU_URLS" # emptied here, not by the background job, which may start late
  ${NODE:-node} "${EMULATOR:-$_emu_root/tests/emulator/server.js}" --data "$_emu_dir/data" "$@" \
    > "$EMU_URLS" 2> "$_emu_dir/emulator.log" &
  EMU_PID=$!
  _emu_i=0
  while [ ! -s "$EMU_URLS" ]; do
    _emu_i=$((_emu_i + 1))
    if [ $_emu_i -gt 400 ] || ! kill -0 "$EMU_PID" 2>/dev/null; then
      cat "$_emu_dir/emulator.log" >&2
      echo "the emulator did not start" >&2
      return 1
    fi
    sleep 0.05
  done
}

emulator_url() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$EMU_URLS"; }
