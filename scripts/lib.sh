# Helpers the scripts share; sourced, not run.

# Where cargo puts build output (CARGO_TARGET_DIR, a cargo config's target-dir, or ./target).
target_dir() {
  cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# Builds and starts a dev `gochat` on a free loopback port with its data in a fresh temporary
# directory, stopped (and the directory removed) when the calling script exits. Sets
# GOCHAT_URL (http://127.0.0.1:PORT), GOCHAT_PID, GOCHAT_LOG (its output) and GOCHAT_SCRATCH
# (an empty directory removed with the rest).
start_gochat() {
  local target data log
  target=$(target_dir)
  cargo build --quiet --locked -p gochat --bin gochat
  data=$(mktemp -d)
  log=$data/gochat.log
  GOCHAT_LOG=$log
  GOCHAT_SCRATCH=$data/scratch
  mkdir -p "$GOCHAT_SCRATCH"
  GOCHAT_LOG__LEVEL=warn "$target/debug/gochat" --http-addr 127.0.0.1:0 --data-dir "$data/data" >"$log" 2>&1 &
  GOCHAT_PID=$!
  # shellcheck disable=SC2064 # expand now: the values are this call's
  trap "kill $GOCHAT_PID 2>/dev/null; wait $GOCHAT_PID 2>/dev/null; rm -rf '$data'" EXIT
  GOCHAT_URL=
  for _ in $(seq 1 200); do
    GOCHAT_URL=$(sed -n 's/^gochat: listening on //p' "$log")
    [[ -n $GOCHAT_URL ]] && return 0
    kill -0 "$GOCHAT_PID" 2>/dev/null || { cat "$log" >&2; echo "gochat exited" >&2; return 1; }
    sleep 0.1
  done
  echo "gochat did not start within 20 s" >&2
  return 1
}
