#!/bin/sh
# Entrypoint of deploy/postgres/Containerfile, after the official image's: on an
# empty data directory, initdb with POSTGRES_USER as superuser and the password of
# POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD), then create POSTGRES_DB; local
# connections are trusted, TCP needs the password (scram-sha-256). Then run the
# server as the postgres user, listening on every address of the container.
set -eu

if [ "${1:-postgres}" != postgres ]; then
    exec "$@"
fi
if [ $# -gt 0 ]; then shift; fi
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        password=$(cat "$POSTGRES_PASSWORD_FILE")
    else
        password=${POSTGRES_PASSWORD:-}
    fi
    if [ -z "$password" ]; then
        echo "postgres-entrypoint: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$password" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        # single-user mode: no server to start and stop; its log is shown only on failure
        log=$(mktemp)
        if ! printf 'CREATE DATABASE "%s";\n' "$db" \
                | as_postgres postgres --single -j -D "$PGDATA" postgres >"$log" 2>&1; then
            cat "$log" >&2
            exit 1
        fi
        rm -f "$log"
    fi
    echo "postgres-entrypoint: initialised $PGDATA (superuser $user, database $db)"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
