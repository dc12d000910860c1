# Starting the Pulse binaries in the background and waiting for them; sourced by scripts/up.sh
# and scripts/browser-test.sh. Callers set `bin` (where the binaries are) and `run` (where the
# logs and pid files go).

# True when something listens on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_service NAME ARGS...: runs $bin/NAME in the background, log in $run/NAME.log, pid in
# $run/NAME.pid. Variables assigned before the call reach the process.
start_service() {
  local name=$1
  shift
  nohup "$bin/$name" "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

# wait_port PORT NAME: waits up to 60 s for NAME to listen on PORT; exits with its log if it
# dies first or never does. A failed binary ends its log with the error and, under
# RUST_BACKTRACE, a backtrace that would push the error out of view, so that part is left out.
wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    if ! kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
      echo "$name exited; its log (without the backtrace):" >&2
      sed '/^Stack backtrace:/,$d' "$run/$name.log" | tail -n 40 >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "$name did not open port $port" >&2
  exit 1
}
