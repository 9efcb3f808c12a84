#!/usr/bin/env bash
# Start or stop local Ray heads for the tests: each its own cluster ("region"), with fake GPUs and
# region / market custom resources, on its own ports, stopped by the PID of its `ray start --block`.
# Never `ray stop`: it kills every Ray process on the machine, other people's clusters included.
#
#   ray.sh up STATE_DIR                  # two clusters: eu-north-1 (slot 0) and us-east-1 (slot 1)
#   ray.sh down STATE_DIR                # stop every cluster this script started under STATE_DIR
#   ray.sh head STATE_DIR NAME SLOT RESOURCES_JSON [NUM_GPUS]   # one more cluster (tests use it)
#   ray.sh stop STATE_DIR NAME           # stop one cluster, waiting until its ports are closed
#
# `up` appends CARBONPLAN_TEST_RAY_EU / _US (dashboard URLs) and CARBONPLAN_TEST_RAY_STATE to
# STATE_DIR/env. SLOT picks a block of ports that no default Ray uses (slot i: GCS 6390+i,
# dashboard 8275+i, client 10101+100i, agents 5237x+i, workers 24000+1000i..24999+1000i).
# Ray must be on PATH (the project's venv activated): a job's `python` is the one on the PATH of
# whoever started the cluster.
set -euo pipefail
cmd=${1:-}; state=$(realpath -m "${2:-.}")
export RAY_USAGE_STATS_ENABLED=0
# a job whose resources no node has fails after this many seconds instead of 900 (Ray's default)
export RAY_JOB_START_TIMEOUT_SECONDS=${RAY_JOB_START_TIMEOUT_SECONDS:-15}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

head_up() {  # NAME SLOT RESOURCES_JSON [NUM_GPUS]
  local name=$1 slot=$2 res=$3 gpus=${4:-4}
  local dir=$state/ray/$name gcs=$((6390 + slot)) dash=$((8275 + slot))
  local ray_bin
  ray_bin=$(command -v ray) || { echo "ray.sh: ray is not on PATH (activate the venv)" >&2; exit 1; }
  PATH=$(dirname "$ray_bin"):$PATH  # the venv's python runs the jobs' entrypoints
  if port_open "$gcs" || port_open "$dash"; then
    echo "ray.sh: port $gcs or $dash is already in use (another Ray?)" >&2; exit 1
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  setsid "$ray_bin" start --head --block --disable-usage-stats \
    --node-ip-address 127.0.0.1 --port "$gcs" \
    --dashboard-host 127.0.0.1 --dashboard-port "$dash" \
    --ray-client-server-port $((10101 + 100 * slot)) \
    --dashboard-agent-listen-port $((52375 + slot)) --dashboard-agent-grpc-port $((52385 + slot)) \
    --runtime-env-agent-port $((52395 + slot)) --metrics-export-port $((52405 + slot)) \
    --node-manager-port $((52415 + slot)) --object-manager-port $((52425 + slot)) \
    --min-worker-port $((24000 + 1000 * slot)) --max-worker-port $((24999 + 1000 * slot)) \
    --num-cpus 1 --num-gpus "$gpus" --resources "$res" \
    --object-store-memory 200000000 --temp-dir "$dir/tmp" \
    >"$dir/ray.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"; echo "$gcs $dash" >"$dir/ports"
  for _ in $(seq 1 1200); do
    if curl -sf "http://127.0.0.1:$dash/api/version" >/dev/null 2>&1; then
      echo "ray $name up: http://127.0.0.1:$dash (pid $pid, ${SECONDS}s)"; return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "ray.sh: $name died" >&2; tail -30 "$dir/ray.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "ray.sh: $name not up after 120 s" >&2; tail -30 "$dir/ray.log" >&2; exit 1
}

head_down() {  # NAME: SIGTERM to the --block parent, which shuts its cluster down in order
  local dir=$state/ray/$1
  [ -f "$dir/pid" ] || return 0
  local pid gcs dash
  pid=$(cat "$dir/pid"); read -r gcs dash <"$dir/ports"
  kill -TERM "$pid" 2>/dev/null || true
  # a killed process lingers as a zombie for seconds here, so "down" means: its ports are closed
  for _ in $(seq 1 300); do
    port_open "$gcs" || port_open "$dash" || { rm -f "$dir/pid"; echo "ray $1 down"; return 0; }
    sleep 0.1
  done
  echo "ray.sh: $1 still answers after 30 s; killing its process group" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
up)
  head_up eu-north-1 0 '{"region:eu-north-1": 1000, "spot": 1000, "on_demand": 1000, "owned": 1000, "mig:3g.40gb": 2}'
  head_up us-east-1 1 '{"region:us-east-1": 1000, "spot": 1000, "on_demand": 1000}'
  {
    echo "CARBONPLAN_TEST_RAY_EU=http://127.0.0.1:8275"
    echo "CARBONPLAN_TEST_RAY_US=http://127.0.0.1:8276"
    echo "CARBONPLAN_TEST_RAY_STATE=$state"
  } >>"$state/env"
  ;;
down)
  for d in "$state"/ray/*/; do [ -d "$d" ] && head_down "$(basename "$d")"; done
  ;;
head) head_up "$3" "$4" "$5" "${6:-4}" ;;
stop) head_down "$3" ;;
*) echo "usage: $0 up|down STATE_DIR | head STATE_DIR NAME SLOT RESOURCES_JSON [GPUS] | stop STATE_DIR NAME" >&2; exit 2 ;;
esac
