#!/usr/bin/env bash
# Start deploy/compose.yaml for real with podman-compose and exercise it (issue 15;
# run by CI right after deploy/test-image.sh, whose images it reuses).
#
#   bash deploy/compose-test.sh          # as root, after deploy/test-image.sh
#
# 1. installs podman, runc, curl and (podman on CNI) the dnsname plugin from Debian
#    if missing, and podman-compose from PyPI (pinned below) into a virtualenv of
#    its own in the scratch directory;
# 2. builds the PostgreSQL image deploy/postgres/Containerfile on the Debian base
#    that test-image.sh made (no registry is reachable here, so postgres:17 cannot
#    be pulled; podman's build cache makes this instant after the first time);
# 3. sets up a project directory as deploy/README.md tells a maintainer to:
#    compose.yaml copied unchanged from deploy/, deskbot.env from the example,
#    secrets/ (700) with the four files (444), Mastodon's empty (channel off);
# 4. brings the services up with podman-compose, each once what it depends on is
#    ready: postgres until its compose health check passes, `migrate` until it
#    exits 0 having upgraded the schema, then `deskbot run`, which must become
#    ready on the published loopback port, answer a customer's DM on the fake
#    Zulip server (on the compose network's gateway, so the container reaches it
#    through compose's own network, as it would reach a real Zulip), pass its
#    compose health check and record the DM in compose's PostgreSQL;
# 5. stops deskbot (status 0) and then PostgreSQL (status 0), and `down -v` must
#    leave no container, volume or network behind.
#
# Why the services are started one by one: podman 4.3 (Debian 12) cannot wait for
# a container to be healthy (podman-compose ignores `service_healthy` below podman
# 4.6), runs no health checks by itself without systemd, and fails to start a
# container whose `--requires` chain is two deep; and podman-compose stops every
# service at once. This script does in order what compose's `depends_on`
# conditions mean, and checks each condition itself (deploy/README.md tells
# podman users the same steps).
#
# Prints PASS/FAIL lines; exits non-zero on any failure. Everything it starts is
# removed on exit. Environment knobs:
#   DESKBOT_IMAGE             deskbot image to run (localhost/deskbot:test, from test-image.sh)
#   DESKBOT_BASE_IMAGE        base of the PostgreSQL image (localhost/deskbot-base, from test-image.sh)
#   DESKBOT_POSTGRES_IMAGE    PostgreSQL image tag to build (localhost/deskbot-postgres:17)

# shellcheck source=deploy/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/test-lib.sh"

IMAGE=${DESKBOT_IMAGE:-localhost/deskbot:test}
BASE_IMAGE=${DESKBOT_BASE_IMAGE:-localhost/deskbot-base}
PG_IMAGE=${DESKBOT_POSTGRES_IMAGE:-localhost/deskbot-postgres:17}
PODMAN_COMPOSE_VERSION=1.6.0
PROJECT="deskbot-ci-$$"      # never the maintainers' own project name (`deskbot`)
CDIR="$WORK/project"         # the compose project directory
WAIT=90                      # seconds for each service to become ready and for the answer

compose() {  # podman-compose in the project directory; output in $WORK/compose-<first arg>.log
    compose_out "$@" >>"$WORK/compose-$1.log"
}
compose_out() {  # the same, its standard output on standard output
    (cd "$CDIR" && "$WORK/compose-venv/bin/podman-compose" -p "$PROJECT" "$@") 2>>"$WORK/compose-$1.log"
}
container_of() {  # SERVICE: the name of its container
    podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}'
}
state_of() {  # CONTAINER: "running", "exited 0" …
    local out status code
    out=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>&1) || { echo "gone ($out)"; return; }
    read -r status code <<<"$out"
    if [ "$status" = running ]; then echo running; else echo "$status $code"; fi
}

cleanup_extra() {  # RC (called by test-lib.sh's exit trap)
    local names name
    names=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' 2>/dev/null)
    for name in $names; do
        if [ "$1" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
            echo "--- $name: $(state_of "$name"), logs (last 30 lines) ---"
            podman logs --tail 30 "$name" 2>&1
        fi
        podman rm -f -t 2 "$name" >/dev/null 2>&1
    done
    podman volume rm -f "${PROJECT}_pgdata" >/dev/null 2>&1
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
}

# --- 1. tools ----------------------------------------------------------------------
install_tools podman runc curl
use_podman_with_runc
# Compose's service names (`postgres` in the database URL) resolve on podman's CNI
# networks through the dnsname plugin, which Debian packages apart from podman.
if [ "$(podman info --format '{{.Host.NetworkBackend}}' 2>&1)" = cni ]; then
    install_debs golang-github-containernetworking-plugin-dnsname
fi
ensure_venv
for image in "$IMAGE" "$BASE_IMAGE"; do
    podman image exists "$image" || die "no image $image: deploy/test-image.sh makes it (run that first)"
done
"$PY" -m uv venv -q "$WORK/compose-venv" >"$WORK/compose-venv.log" 2>&1 || die "uv venv (see compose-venv.log)"
retry 2 "$PY" -m uv pip install -q --python "$WORK/compose-venv/bin/python" \
    "podman-compose==$PODMAN_COMPOSE_VERSION" >>"$WORK/compose-venv.log" 2>&1 \
    || die "pip install podman-compose==$PODMAN_COMPOSE_VERSION (see compose-venv.log)"
pass "podman-compose $PODMAN_COMPOSE_VERSION (PyPI), podman $(podman version --format '{{.Client.Version}}') with runc"

# --- 2. the PostgreSQL image ------------------------------------------------------------
build_start=$(date +%s)
old_id=$(podman image inspect --format '{{.Id}}' "$PG_IMAGE" 2>/dev/null || true)
retry 2 timeout 900 podman build --quiet --format docker --network host \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --tag "$PG_IMAGE" deploy/postgres >"$WORK/postgres-build.log" 2>&1 \
    || die "podman build deploy/postgres (see postgres-build.log)"
new_id=$(podman image inspect --format '{{.Id}}' "$PG_IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true   # the superseded build of this tag
fi
out=$(podman run --rm --network none --entrypoint postgres "$PG_IMAGE" --version 2>&1) || die "postgres --version in $PG_IMAGE: $out"
pass "PostgreSQL image $PG_IMAGE in $(( $(date +%s) - build_start ))s: $out"

# --- 3. the project directory, as deploy/README.md sets it up ---------------------------------
mkdir -p "$CDIR"
cp deploy/compose.yaml "$CDIR/compose.yaml"
install -d -m 700 "$CDIR/secrets"
pg_password=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
printf '%s' "$pg_password" >"$CDIR/secrets/postgres_password"
printf 'postgresql+psycopg://deskbot:%s@postgres:5432/deskbot' "$pg_password" >"$CDIR/secrets/deskbot_database_url"
: >"$CDIR/secrets/zulip_api_key"             # written once the fake Zulip server runs
: >"$CDIR/secrets/mastodon_access_token"     # empty: no Mastodon
chmod 444 "$CDIR"/secrets/*
set_env() {  # ZULIP_SITE: deskbot.env from the example, its three settings filled in
    sed -e "s|^ZULIP_SITE=.*|ZULIP_SITE=$1|" -e 's|^ZULIP_EMAIL=.*|ZULIP_EMAIL=deskbot-bot@example.com|' \
        -e 's|^DESKBOT_ENGINEERS=.*|DESKBOT_ENGINEERS=eng@example.com|' deploy/deskbot.env.example >"$CDIR/deskbot.env"
}
set_env http://zulip.invalid
export DESKBOT_IMAGE="$IMAGE" POSTGRES_IMAGE="$PG_IMAGE" DESKBOT_HTTP_PORT
DESKBOT_HTTP_PORT=$(free_port)
compose config || die "podman-compose config: $(tail -n 5 "$WORK/compose-config.log")"
pass "compose.yaml (as in deploy/) with deskbot.env from the example and secrets/ as files"

# --- 4. up, one service at a time ---------------------------------------------------------
say "podman-compose up -d postgres (project $PROJECT)"
compose up -d postgres || die "podman-compose up -d postgres: $(tail -n 5 "$WORK/compose-up.log")"
PG_CONTAINER=$(container_of postgres)
[ -n "$PG_CONTAINER" ] || die "podman-compose up -d postgres made no container"
up_start=$(date +%s)
until podman healthcheck run "$PG_CONTAINER" >"$WORK/pg-health.log" 2>&1; do
    state=$(state_of "$PG_CONTAINER")
    [ "$state" = running ] || die "postgres stopped before it was healthy ($state)"
    [ $(( $(date +%s) - up_start )) -lt "$WAIT" ] \
        || die "postgres not healthy within ${WAIT}s: $(tail -n 3 "$WORK/pg-health.log")"
    sleep 1
done
pass "postgres healthy by its compose health check (pg_isready) in $(( $(date +%s) - up_start ))s"

# The fake Zulip server listens on the gateway of compose's network: deskbot reaches
# it through that network, by address, like any outside server.
gateway=$(podman network inspect "${PROJECT}_default" --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>&1) \
    || die "podman network inspect ${PROJECT}_default: $gateway"
[ -n "$gateway" ] || die "no gateway on network ${PROJECT}_default"
start_fake_zulip "$gateway"
set_env "$ZULIP_URL"
chmod 644 "$CDIR/secrets/zulip_api_key"
printf '%s' "$ZULIP_KEY" >"$CDIR/secrets/zulip_api_key"
chmod 444 "$CDIR/secrets/zulip_api_key"

say "podman-compose up -d --no-deps migrate"
compose up -d --no-deps migrate || die "podman-compose up -d migrate: $(tail -n 5 "$WORK/compose-up.log")"
MIGRATE_CONTAINER=$(container_of migrate)
[ -n "$MIGRATE_CONTAINER" ] || die "podman-compose up -d migrate made no container"
status=$(timeout "$WAIT" podman wait "$MIGRATE_CONTAINER" 2>&1) || die "migrate did not finish within ${WAIT}s ($status)"
podman logs "$MIGRATE_CONTAINER" >"$WORK/migrate.log" 2>&1 || true
migrated=$(<"$WORK/migrate.log")
if [ "$status" = 0 ] && [[ $migrated == *"upgraded from revision"* ]]; then
    pass "migrate exited 0: ${migrated##*$'\n'}"
else
    die "migrate exited $status: $(tail -n 5 "$WORK/migrate.log")"
fi

say "podman-compose up -d --no-deps deskbot (http 127.0.0.1:$DESKBOT_HTTP_PORT)"
compose up -d --no-deps deskbot || die "podman-compose up -d deskbot: $(tail -n 5 "$WORK/compose-up.log")"
DESKBOT_CONTAINER=$(container_of deskbot)
[ -n "$DESKBOT_CONTAINER" ] || die "podman-compose up -d deskbot made no container"
up_start=$(date +%s)
until curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$DESKBOT_HTTP_PORT/readyz" 2>/dev/null; do
    state=$(state_of "$DESKBOT_CONTAINER")
    [ "$state" = running ] || die "deskbot stopped before it was ready ($state)"
    [ $(( $(date +%s) - up_start )) -lt "$WAIT" ] || die "deskbot: /readyz on 127.0.0.1:$DESKBOT_HTTP_PORT not 200 within ${WAIT}s"
    sleep 1
done
pass "deskbot ready on the published port 127.0.0.1:$DESKBOT_HTTP_PORT in $(( $(date +%s) - up_start ))s"

if answer=$(dm_answered zulip "$WAIT" 2>"$WORK/dm.err"); then
    pass "zulip: customer DM \"help\" answered: $answer"
else
    fail "zulip: $(<"$WORK/dm.err")"
fi
if out=$(podman healthcheck run "$DESKBOT_CONTAINER" 2>&1); then
    pass "deskbot healthy by its compose health check: ${out:-healthy}"
else
    fail "deskbot's compose health check: $out"
fi
# The DM and the answer are in compose's PostgreSQL (deskbot's tables, read with psql in its container).
if out=$(compose_out exec -T postgres psql -U deskbot -d deskbot -Atc \
        "select (select version_num from alembic_version), (select count(*) from processedinbound where channel = 'zulip'), (select count(*) from outbox where channel = 'zulip' and state = 'sent')") \
        && [[ $out =~ ^[0-9a-z_]+\|[1-9][0-9]*\|[1-9][0-9]*$ ]]; then
    IFS='|' read -r rev received sent <<<"$out"
    pass "compose's PostgreSQL: schema $rev, $received Zulip message(s) received, $sent answer(s) sent"
else
    fail "compose's PostgreSQL does not hold the DM and its answer: ${out:-$(tail -n 3 "$WORK/compose-exec.log")}"
fi

# --- 5. stop and down ---------------------------------------------------------------------
# deskbot first: it drains in-flight sends to the database on SIGTERM.
stop_start=$(date +%s)
compose stop deskbot || fail "podman-compose stop deskbot: $(tail -n 3 "$WORK/compose-stop.log")"
state=$(state_of "$DESKBOT_CONTAINER")
if [ "$state" = "exited 0" ]; then
    pass "deskbot stopped (SIGTERM) with status 0 in $(( $(date +%s) - stop_start ))s"
else
    fail "deskbot after podman-compose stop: $state"
fi
stop_start=$(date +%s)
compose stop || fail "podman-compose stop: $(tail -n 3 "$WORK/compose-stop.log")"
state=$(state_of "$PG_CONTAINER")
if [ "$state" = "exited 0" ]; then
    pass "postgres stopped with status 0 in $(( $(date +%s) - stop_start ))s"
else
    fail "postgres after podman-compose stop: $state"
fi
# What the containers logged (start, the DM, the stop) holds neither secret.
: >"$WORK/containers.out"
for name in "$MIGRATE_CONTAINER" "$DESKBOT_CONTAINER" "$PG_CONTAINER"; do
    podman logs "$name" >>"$WORK/containers.out" 2>&1 || fail "podman logs $name"
done
leaked=()
grep -qF -- "$ZULIP_KEY" "$WORK/containers.out" && leaked+=("the Zulip API key")
grep -qF -- "$pg_password" "$WORK/containers.out" && leaked+=("the database password")
if [ "${#leaked[@]}" -eq 0 ]; then
    pass "no secret in the containers' logs ($(wc -l <"$WORK/containers.out") lines)"
else
    fail "the containers' logs show ${leaked[*]}"
fi
compose down -v || fail "podman-compose down -v: $(tail -n 3 "$WORK/compose-down.log")"
left=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}')
podman volume exists "${PROJECT}_pgdata" && left+=" volume ${PROJECT}_pgdata"
podman network exists "${PROJECT}_default" && left+=" network ${PROJECT}_default"
if [ -z "${left// /}" ]; then
    pass "podman-compose down -v left no container, volume or network"
else
    fail "podman-compose down -v left:${left}"
fi
# The exit trap (test-lib.sh) prints the summary and exits non-zero if any check failed.
