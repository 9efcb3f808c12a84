#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL for the tests, on 127.0.0.1, stopped by its PID.
# usage: postgres.sh up STATE_DIR [PORT] | postgres.sh down STATE_DIR
# `up` appends CARBONPLAN_TEST_PG=<url> to STATE_DIR/env. Without PORT it takes a free one, so
# several test runs on one machine do not collide.
set -euo pipefail
cmd=$1; state=$(realpath -m "$2")
port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
dir=$state/postgres
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
case "$cmd" in
up)
  [ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 1; }
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "postgres.sh: something already answers on 127.0.0.1:$port" >&2; exit 1
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; as=(runuser -u postgres --); else as=(); fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log"
  "${as[@]}" "$bin/postgres" -D "$dir/data" -h 127.0.0.1 -p "$port" -k "$dir" \
      -c fsync=off -c full_page_writes=off >"$dir/server.log" 2>&1 &
  launcher=$!
  for _ in $(seq 1 100); do
    [ -s "$dir/data/postmaster.pid" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    kill -0 "$launcher" 2>/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"
  # the postmaster's own PID (runuser does not pass signals on)
  head -n1 "$dir/data/postmaster.pid" >"$state/postgres.pid"
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres carbonplan_test
  echo "CARBONPLAN_TEST_PG=postgresql://postgres@127.0.0.1:$port/carbonplan_test" >>"$state/env"
  echo "postgres up on 127.0.0.1:$port (pid $(cat "$state/postgres.pid"))"
  ;;
down)
  pidf=$state/postgres.pid
  [ -f "$pidf" ] || exit 0
  pid=$(cat "$pidf")
  kill -INT "$pid" 2>/dev/null || true   # fast shutdown
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidf"
  ;;
*) echo "usage: $0 up|down STATE_DIR [PORT]" >&2; exit 2 ;;
esac
