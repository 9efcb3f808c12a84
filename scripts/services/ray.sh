#!/usr/bin/env bash
# Start or stop local Ray heads for the tests: each its own cluster ("region"), with fake GPUs and
# region / market custom resources, on free ports, stopped by the PID of its `ray start --block`.
# Never `ray stop`: it kills every Ray process on the machine, other people's clusters included.
#
#   ray.sh up STATE_DIR                  # two clusters: eu-north-1 and us-east-1
#   ray.sh down STATE_DIR                # stop every cluster this script started under STATE_DIR
#   ray.sh head STATE_DIR NAME RESOURCES_JSON [NUM_GPUS]   # one more cluster (a test uses it);
#                                        # prints "ray NAME up: <dashboard URL> ..."
#   ray.sh stop STATE_DIR NAME           # stop one cluster, waiting until its ports are closed
#
# `up` appends CARBONPLAN_TEST_RAY_EU / _US (dashboard URLs) and CARBONPLAN_TEST_RAY_STATE to
# STATE_DIR/env. Every port a head listens on (GCS, dashboard, client server, agents, metrics,
# 50 worker ports) is picked free at start, so two test runs, or other people's Ray clusters on
# Ray's default ports, can share the machine.
# Ray must be on PATH (the project's venv activated): a job's `python` is the one on the PATH of
# whoever started the cluster.
set -euo pipefail
cmd=${1:-}; state=$(realpath -m "${2:-.}")
export RAY_USAGE_STATS_ENABLED=0
# a job whose resources no node has fails after this many seconds instead of 900 (Ray's default)
export RAY_JOB_START_TIMEOUT_SECONDS=${RAY_JOB_START_TIMEOUT_SECONDS:-15}
# a loaded machine (CI) may need more than Ray's default 30 s for the raylet to register
export RAY_raylet_start_wait_time_s=${RAY_raylet_start_wait_time_s:-90}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() {  # PID: running, not a zombie
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}

free_ports() {  # N distinct ports free right now
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

head_up() {  # NAME RESOURCES_JSON [NUM_GPUS]: up to three tries (a head can fail its start)
  local try
  for try in 1 2 3; do
    if head_try "$@"; then return 0; fi
    echo "ray.sh: $1 failed to start (try $try of 3)" >&2
    tail -5 "$state/ray/$1/ray.log" >&2 || true
    head_down "$1" >/dev/null 2>&1 || true
  done
  exit 1
}

head_try() {  # NAME RESOURCES_JSON [NUM_GPUS]; returns 1 when the head died while starting
  local name=$1 res=$2 gpus=${3:-4}
  local dir=$state/ray/$name ray_bin
  ray_bin=$(command -v ray) || { echo "ray.sh: ray is not on PATH (activate the venv)" >&2; exit 1; }
  PATH=$(dirname "$ray_bin"):$PATH  # the venv's python runs the jobs' entrypoints
  local -a p; read -r -a p <<<"$(free_ports 57)"
  local gcs=${p[0]} dash=${p[1]} workers
  workers=$(IFS=,; echo "${p[*]:7}")
  rm -rf "$dir"; mkdir -p "$dir"
  # Ray's temp dir holds unix sockets, whose paths may not pass 107 bytes; a checkout deep in the
  # file system (CI's is) overflows that under $dir, so the temp dir lives under /tmp, linked here
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/cpray.XXXXXX")
  ln -s "$tmp" "$dir/tmp"
  setsid "$ray_bin" start --head --block --disable-usage-stats \
    --node-ip-address 127.0.0.1 --port "$gcs" \
    --dashboard-host 127.0.0.1 --dashboard-port "$dash" --ray-client-server-port "${p[2]}" \
    --dashboard-agent-listen-port "${p[3]}" --dashboard-agent-grpc-port "${p[4]}" \
    --runtime-env-agent-port "${p[5]}" --metrics-export-port "${p[6]}" \
    --worker-port-list "$workers" \
    --num-cpus 1 --num-gpus "$gpus" --resources "$res" \
    --object-store-memory 200000000 --temp-dir "$tmp" \
    >"$dir/ray.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"; echo "$gcs $dash" >"$dir/ports"
  # up = the dashboard answers AND `ray start` says the runtime started: the dashboard can answer
  # while the raylet still fails to register, after which the whole head shuts down
  for _ in $(seq 1 1800); do
    if grep -q "Ray runtime started" "$dir/ray.log" 2>/dev/null &&
        curl -sf "http://127.0.0.1:$dash/api/version" >/dev/null 2>&1; then
      echo "ray $name up: http://127.0.0.1:$dash (pid $pid, ${SECONDS}s)"; return 0
    fi
    alive "$pid" || return 1
    sleep 0.1
  done
  echo "ray.sh: $name not up after 180 s" >&2; tail -30 "$dir/ray.log" >&2; return 1
}

url_of() { echo "http://127.0.0.1:$(cut -d' ' -f2 "$state/ray/$1/ports")"; }

head_down() {  # NAME: SIGTERM to the --block parent, which shuts its cluster down in order
  local dir=$state/ray/$1
  [ -f "$dir/pid" ] || return 0
  local pid gcs dash
  pid=$(cat "$dir/pid"); read -r gcs dash <"$dir/ports"
  kill -TERM "$pid" 2>/dev/null || true
  # a killed process lingers as a zombie for seconds here, so "down" means: its ports are closed
  for _ in $(seq 1 300); do
    port_open "$gcs" || port_open "$dash" || { rm -f "$dir/pid"; drop_tmp "$dir"; echo "ray $1 down"; return 0; }
    sleep 0.1
  done
  echo "ray.sh: $1 still answers after 30 s; killing its process group" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/pid"; drop_tmp "$dir"
}

drop_tmp() {  # DIR: remove the /tmp temp dir a head used (its logs go with it)
  local link=$1/tmp
  [ -L "$link" ] || return 0
  case "${KEEP_RAY_LOGS:-}" in 1) return 0 ;; esac
  # a child of the stopped head may still be writing its last file there: retry for a few seconds
  local target; target=$(readlink "$link")
  for _ in $(seq 1 25); do rm -rf "$target" 2>/dev/null && break; sleep 0.2; done
  [ -e "$target" ] && echo "ray.sh: could not remove $target" >&2
  rm -f "$link"
}

case "$cmd" in
up)
  head_up eu-north-1 '{"region:eu-north-1": 1000, "spot": 1000, "on_demand": 1000, "owned": 1000, "mig:3g.40gb": 2}'
  head_up us-east-1 '{"region:us-east-1": 1000, "spot": 1000, "on_demand": 1000}'
  {
    echo "CARBONPLAN_TEST_RAY_EU=$(url_of eu-north-1)"
    echo "CARBONPLAN_TEST_RAY_US=$(url_of us-east-1)"
    echo "CARBONPLAN_TEST_RAY_STATE=$state"
  } >>"$state/env"
  ;;
down)
  for d in "$state"/ray/*/; do [ -d "$d" ] && head_down "$(basename "$d")"; done
  ;;
head) head_up "$3" "$4" "${5:-4}" ;;
stop) head_down "$3" ;;
*) echo "usage: $0 up|down STATE_DIR | head STATE_DIR NAME RESOURCES_JSON [GPUS] | stop STATE_DIR NAME" >&2; exit 2 ;;
esac
