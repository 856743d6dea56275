# Start a throw-away PostgreSQL server for the journal tests; source this file.
#
#   . .ci/postgres.sh && start_test_postgres   # exports BTL_TEST_POSTGRES_URL
#   trap stop_test_postgres EXIT                 # the caller's trap stops it
#
# Installs nothing: it uses the PostgreSQL binaries on the machine (initdb,
# pg_ctl from /usr/lib/postgresql/*/bin or PATH), a temp data directory and a
# free port on 127.0.0.1. initdb refuses to run as root, so as root the server
# runs as an unprivileged user (BTL_PG_USER, default postgres, else nobody)
# that owns the temp directory.

_btl_pg_bin() {
    local dir
    for dir in ${BTL_PG_BIN:-} /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
    done
    return 1
}

_btl_pg_as() {     # run a command as the server's user
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u "$BTL_PG_RUNAS" -- "$@"
    else
        "$@"
    fi
}

start_test_postgres() {
    local bin port
    if ! bin="$(_btl_pg_bin)"; then
        echo "error: PostgreSQL (initdb, pg_ctl) not found; install PostgreSQL 15 or set BTL_PG_BIN" >&2
        return 1
    fi
    BTL_PG_RUNAS=""
    if [[ "$(id -u)" == 0 ]]; then
        BTL_PG_RUNAS="${BTL_PG_USER:-postgres}"
        id "$BTL_PG_RUNAS" >/dev/null 2>&1 || BTL_PG_RUNAS=nobody
    fi
    BTL_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/btl-pg.XXXXXX")"
    [[ -n "$BTL_PG_RUNAS" ]] && chown "$BTL_PG_RUNAS" "$BTL_PG_DIR"
    chmod 700 "$BTL_PG_DIR"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    BTL_PG_CTL="$bin/pg_ctl"
    echo "--- starting PostgreSQL ($bin) on 127.0.0.1:$port in $BTL_PG_DIR${BTL_PG_RUNAS:+ as $BTL_PG_RUNAS}"
    _btl_pg_as "$bin/initdb" -D "$BTL_PG_DIR/data" -U btl --auth=trust -E UTF8 >"$BTL_PG_DIR/initdb.log" 2>&1 \
        || { cat "$BTL_PG_DIR/initdb.log" >&2; return 1; }
    _btl_pg_as "$bin/pg_ctl" -D "$BTL_PG_DIR/data" -l "$BTL_PG_DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $BTL_PG_DIR -c fsync=off -c max_connections=50" start >/dev/null \
        || { cat "$BTL_PG_DIR/server.log" >&2; return 1; }
    export BTL_TEST_POSTGRES_URL="postgresql+psycopg://btl@127.0.0.1:$port/postgres"
    echo "--- PostgreSQL ready: BTL_TEST_POSTGRES_URL=$BTL_TEST_POSTGRES_URL"
}

stop_test_postgres() {
    if [[ -n "${BTL_PG_DIR:-}" && -d "$BTL_PG_DIR/data" ]]; then
        _btl_pg_as "$BTL_PG_CTL" -D "$BTL_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$BTL_PG_DIR"
    fi
    BTL_PG_DIR=""
}
