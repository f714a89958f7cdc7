#!/usr/bin/env bash
# Starts and stops the real backends the app's production-backend tests use:
# a throwaway PostgreSQL 15 cluster (initdb + pg_ctl in a temp dir, run as
# the postgres user because PostgreSQL refuses root) and the moto server
# (S3 and SQS, from PyPI, in the ignored virtualenv .dev/venv).
#
#   scripts/services.sh start   # prints nothing on stdout; writes .dev/services/env
#   scripts/services.sh stop    # stops what start started, by PID file
#
# After `start`, `source .dev/services/env` exports:
#   RETAINWISE_TEST_DATABASE_URL  postgres://postgres@127.0.0.1:PORT/postgres (admin; tests create a database each)
#   RETAINWISE_TEST_AWS_ENDPOINT  http://127.0.0.1:PORT (moto: S3 and SQS)
#   RETAINWISE_TEST_PG_BIN        the PostgreSQL binaries (the restart test runs its own cluster)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION  dummy values for moto
set -euo pipefail
cd "$(dirname "$0")/.."

state=".dev/services"
venv=".dev/venv"
pg_bin="${RETAINWISE_PG_BIN:-/usr/lib/postgresql/15/bin}"
say() { printf '==> services: %s\n' "$*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port, what
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "services: $2 did not start on port $1" >&2
    return 1
}

start_postgres() {
    [ -x "$pg_bin/initdb" ] || { echo "services: PostgreSQL 15 not found in $pg_bin (apt-get install postgresql-15)" >&2; exit 1; }
    id postgres >/dev/null 2>&1 || { echo "services: no postgres user (apt-get install postgresql-15 creates it)" >&2; exit 1; }
    local dir port
    dir="$(mktemp -d /tmp/retainwise-pg.XXXXXX)"
    chown postgres: "$dir"
    port="$(free_port)"
    runuser -u postgres -- "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    echo "$dir" >"$state/pg.dir"
    echo "RETAINWISE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres" >>"$state/env"
    echo "RETAINWISE_TEST_PG_BIN=$pg_bin" >>"$state/env"
    say "PostgreSQL 15 on 127.0.0.1:$port ($dir)"
}

start_moto() {
    if [ ! -x "$venv/bin/moto_server" ]; then
        say "installing moto[server] into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
    fi
    local port
    port="$(free_port)"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    wait_for_port "$port" moto
    echo "RETAINWISE_TEST_AWS_ENDPOINT=http://127.0.0.1:$port" >>"$state/env"
    say "moto (S3, SQS) on 127.0.0.1:$port"
}

stop() {
    if [ -f "$state/moto.pid" ]; then
        kill "$(cat "$state/moto.pid")" 2>/dev/null || true
        rm -f "$state/moto.pid"
    fi
    if [ -f "$state/pg.dir" ]; then
        local dir
        dir="$(cat "$state/pg.dir")"
        runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$dir" "$state/pg.dir"
    fi
    rm -f "$state/env"
}

case "${1:-}" in
start)
    mkdir -p "$state"
    stop
    {
        echo "AWS_ACCESS_KEY_ID=test"
        echo "AWS_SECRET_ACCESS_KEY=test"
        echo "AWS_REGION=us-east-1"
    } >"$state/env"
    trap 'stop' ERR
    start_postgres
    start_moto
    sed -i 's/^/export /' "$state/env"
    ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
