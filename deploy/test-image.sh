#!/usr/bin/env bash
# Build the deskbot image with podman and exercise it (issue 6; run by CI).
#
#   bash deploy/test-image.sh            # as root, from anywhere in the repository
#
# 1. installs podman, buildah, runc and debootstrap from Debian if missing;
# 2. makes the base image localhost/deskbot-base with debootstrap (Debian trixie
#    minbase + python3) unless podman already has it (no registry is reachable,
#    so the official python image cannot be pulled);
# 3. downloads the locked runtime wheels on the host for the base image's Python
#    and builds deploy/Dockerfile offline against them (--network none);
# 4. runs the image: `deskbot --version`; `deskbot db upgrade` on a mounted
#    directory, and on the machine's PostgreSQL when there is one (a scratch
#    database); `deskbot run` on the host network against the project's fake
#    Zulip and Mastodon servers (started here from the repository's .venv), with
#    the secrets given as *_FILE: one customer DM on each platform must be
#    answered, /healthz and /readyz must answer 200, the image's HEALTHCHECK must
#    pass, and SIGTERM must stop the container with status 0.
#
# Prints PASS/FAIL lines; exits non-zero on any failure. Everything it starts is
# removed on exit. Environment knobs:
#   DESKBOT_IMAGE                   image tag to build (localhost/deskbot:test)
#   DESKBOT_BASE_IMAGE              base image tag (localhost/deskbot-base)
#   DESKBOT_REBUILD_BASE=1          remake the base image even if podman has it
#   DESKBOT_DEBIAN_MIRROR           mirror for debootstrap (default: from apt's sources)
#   DESKBOT_IMAGE_TEST_CHANNELS     "zulip mastodon" (default), "zulip" or "mastodon"
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

IMAGE=${DESKBOT_IMAGE:-localhost/deskbot:test}
BASE_IMAGE=${DESKBOT_BASE_IMAGE:-localhost/deskbot-base}
# Bump when the recipe of the base image changes: an older base is then remade.
BASE_SUITE=trixie
BASE_KEY="debian-${BASE_SUITE}-minbase-python3-v1"
CHANNELS=${DESKBOT_IMAGE_TEST_CHANNELS:-zulip mastodon}
WAIT=90            # seconds to wait for start-up and for each answer

START=$(date +%s)
FAILED=0
WORK=$(mktemp -d /tmp/deskbot-image-test.XXXXXX)
CONTAINER="deskbot-image-test-$$"
FAKE_PIDS=()
PG_CREATED=""

say()  { printf '%s [%4ss] %s\n' "==>" "$(( $(date +%s) - START ))" "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILED=$((FAILED + 1)); }
die()  { fail "$*"; exit 1; }

cleanup() {
    local rc=$?
    set +e
    if podman container exists "$CONTAINER" 2>/dev/null; then
        if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
            echo "--- container logs (last 40 lines) ---"; podman logs --tail 40 "$CONTAINER" 2>&1
        fi
        podman rm -f -t 2 "$CONTAINER" >/dev/null 2>&1
    fi
    for pid in "${FAKE_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${FAKE_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    [ -n "$PG_CREATED" ] && pg drop "$PG_DB" >/dev/null 2>&1
    if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            case "$f" in */podman-info.log|*/container.log) continue ;; esac
            [ -s "$f" ] || continue
            echo "--- $(basename "$f") (last 20 lines) ---"
            grep -v "is ignored: it is neither a file nor a directory" "$f" | tail -n 20
        done
    fi
    rm -rf "$WORK"
    local took=$(( $(date +%s) - START ))
    if [ "$rc" -eq 0 ] && [ "$FAILED" -eq 0 ]; then
        echo "PASS: deploy/test-image.sh (${took}s)"
    else
        echo "FAIL: deploy/test-image.sh (${FAILED} failed check(s), exit ${rc}, ${took}s)"
        [ "$rc" -eq 0 ] && rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "FAIL: unexpected error at line $LINENO: $BASH_COMMAND"' ERR

[ -n "${CHANNELS// /}" ] || die "DESKBOT_IMAGE_TEST_CHANNELS is empty"
for channel in $CHANNELS; do
    case "$channel" in
        zulip|mastodon) ;;
        *) die "DESKBOT_IMAGE_TEST_CHANNELS: unknown channel '$channel' (zulip, mastodon)" ;;
    esac
done

# --- 1. tools ----------------------------------------------------------------------
missing=()
for tool in podman buildah runc debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]} (or install them first)"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >"$WORK/apt.log" 2>&1 || true
    timeout 900 apt-get install -y -qq --no-install-recommends podman buildah runc debootstrap curl \
        ca-certificates uidmap >>"$WORK/apt.log" 2>&1 || die "apt-get install podman buildah runc debootstrap"
fi

# crun (podman's default here) fails on these machines: use runc and explicit ulimits.
export CONTAINERS_CONF="$WORK/containers.conf"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
podman info >"$WORK/podman-info.log" 2>&1 || { tail -n 20 "$WORK/podman-info.log"; die "podman info"; }
pass "podman $(podman version --format '{{.Client.Version}}' 2>/dev/null) with runc"

# --- 2. base image -----------------------------------------------------------------
debian_mirror() {
    if [ -n "${DESKBOT_DEBIAN_MIRROR:-}" ]; then echo "$DESKBOT_DEBIAN_MIRROR"; return; fi
    local m
    m=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
           grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
               | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}'
         } | grep -E '/debian/?$' | head -n 1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

have_base=0
if [ "${DESKBOT_REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
    label=$(podman image inspect --format '{{index .Config.Labels "io.deskbot.base"}}' "$BASE_IMAGE" 2>/dev/null || true)
    if [ "$label" = "$BASE_KEY" ]; then
        have_base=1
        pass "base image $BASE_IMAGE reused ($BASE_KEY)"
    else
        say "podman's $BASE_IMAGE is not this script's ($label != $BASE_KEY): making it again"
    fi
fi
if [ "$have_base" -eq 0 ]; then
    mirror=$(debian_mirror)
    say "debootstrap $BASE_SUITE from $mirror (about 40 s)"
    rootfs="$WORK/rootfs"
    ok=0
    for attempt in 1 2; do
        rm -rf "$rootfs"
        if timeout 900 debootstrap --variant=minbase --include=python3,python3-venv \
                "$BASE_SUITE" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
            ok=1; break
        fi
        say "debootstrap attempt $attempt failed"
    done
    [ "$ok" -eq 1 ] || die "debootstrap $BASE_SUITE (see debootstrap.log)"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import -q \
        --change "LABEL io.deskbot.base=$BASE_KEY" --change 'CMD ["/usr/bin/python3"]' \
        - "$BASE_IMAGE" >/dev/null || die "podman import $BASE_IMAGE"
    rm -rf "$rootfs"
    pass "base image $BASE_IMAGE made with debootstrap ($BASE_KEY)"
fi

# --- 3. wheels and build -------------------------------------------------------------
# The build runs without network: pip inside it installs from wheels downloaded
# here (the host's pip knows this machine's package registry and its CA).
read -r py_ver glibc arch < <(podman run --rm --network none "$BASE_IMAGE" python3 -c \
    'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}", platform.libc_ver()[1], platform.machine())') \
    || die "python3 in $BASE_IMAGE"
say "base image: Python $py_ver, glibc $glibc, $arch"

PY=.venv/bin/python
if ! { [ -x "$PY" ] && "$PY" -c 'import tests.fakes.zulip_server, tests.fakes.mastodon_server' 2>/dev/null; }; then
    say "setting up .venv from requirements.lock (as .ci/run does)"
    python3 -m venv .venv >/dev/null 2>&1 || true
    if ! .venv/bin/python -m uv --version >/dev/null 2>&1; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >"$WORK/venv.log" 2>&1 \
            || die "pip install uv into .venv"
    fi
    .venv/bin/python -m uv pip install --quiet --python .venv/bin/python -r requirements.lock >>"$WORK/venv.log" 2>&1 \
        || die "install requirements.lock into .venv"
fi

if "$PY" -m pip --version >/dev/null 2>&1; then
    PIP=("$PY" -m pip)
else
    python3 -m venv "$WORK/pip-venv" >/dev/null || die "python3 -m venv (for pip download)"
    PIP=("$WORK/pip-venv/bin/python" -m pip)
fi
"$PY" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
    >"$WORK/runtime.txt"
platforms=()
glibc_minor=${glibc#*.}
for ((m = glibc_minor; m >= 5; m--)); do platforms+=(--platform "manylinux_2_${m}_${arch}"); done
platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}"
            --platform "linux_${arch}")
say "downloading the locked runtime wheels for cp${py_ver/./}"
timeout 900 "${PIP[@]}" download --quiet --disable-pip-version-check --dest "$WORK/wheels" \
    --only-binary=:all: --python-version "$py_ver" --implementation cp "${platforms[@]}" \
    --constraint requirements.lock --requirement "$WORK/runtime.txt" "setuptools>=69" wheel \
    >"$WORK/pip-download.log" 2>&1 || die "pip download of the locked wheels (see pip-download.log)"
pass "$(find "$WORK/wheels" -name '*.whl' | wc -l) wheels for Python $py_ver"

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
say "podman build -f deploy/Dockerfile -t $IMAGE (BASE_IMAGE=$BASE_IMAGE)"
build_start=$(date +%s)
if ! timeout 1800 podman build --format docker --network none \
        --file deploy/Dockerfile --tag "$IMAGE" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels \
        --volume "$WORK/wheels:/wheels:ro" \
        . >"$WORK/build.log" 2>&1; then
    tail -n 30 "$WORK/build.log"
    die "podman build"
fi
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true   # the superseded build of this tag
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
pass "image built in $(( $(date +%s) - build_start ))s: $IMAGE, $(( size / 1000000 )) MB (on $BASE_IMAGE)"

# --- 4a. the image's configuration --------------------------------------------------
podman image inspect "$IMAGE" >"$WORK/inspect.json"
if "$PY" - "$WORK/inspect.json" <<'PY'
import json, sys
image = json.load(open(sys.argv[1]))[0]
config = image["Config"]
env = dict(item.split("=", 1) for item in config.get("Env", []))
problems = []
user = config.get("User", "")
if user in ("", "0", "root") or user.startswith(("0:", "root:")):
    problems.append(f"user {user!r} is root")
for name, want in {"DESKBOT_HTTP_ADDR": "0.0.0.0:8080", "DESKBOT_LOG_FORMAT": "json",
                   "DESKBOT_DATABASE_URL": "sqlite:////data/deskbot.db"}.items():
    if env.get(name) != want:
        problems.append(f"{name}={env.get(name)!r}, want {want!r}")
if config.get("Cmd") != ["deskbot", "run"]:
    problems.append(f"CMD {config.get('Cmd')!r}")
if "/data" not in (config.get("Volumes") or {}):
    problems.append("no /data volume")
if "healthz" not in " ".join((image.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test") or []):
    problems.append("no HEALTHCHECK on /healthz")
if problems:
    print("; ".join(problems))
sys.exit(1 if problems else 0)
PY
then
    pass "image config: user $(podman image inspect --format '{{.Config.User}}' "$IMAGE"), CMD deskbot run, /data volume, env, HEALTHCHECK"
else
    fail "image config (above)"
fi

# --no-healthcheck: podman runs a HEALTHCHECK on a systemd timer, and there is no
# systemd here (it would print an error per container). The `deskbot run`
# container below keeps it, and `podman healthcheck run` runs it by hand.
RUN=(podman run --rm --network none --no-healthcheck)
if out=$("${RUN[@]}" "$IMAGE" deskbot --version 2>&1) && [[ "$out" == deskbot\ * ]]; then
    pass "deskbot --version: $out"
else
    fail "deskbot --version: $out"
fi

if out=$("${RUN[@]}" -e PYTHONTZPATH=/nonexistent "$IMAGE" python -c \
        'import zoneinfo, datetime; print(datetime.datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Lisbon")).tzname())' 2>&1) \
        && [ "$out" = WEST ]; then
    pass "time zones: Europe/Lisbon (from the tzdata wheel alone: $out)"
else
    fail "time zones: $out"
fi

# --- 4b. deskbot db upgrade on a mounted volume --------------------------------------
DATA="$WORK/data"
mkdir -p "$DATA" && chown 10001:10001 "$DATA"
if "${RUN[@]}" -v "$DATA:/data" "$IMAGE" deskbot db upgrade >"$WORK/db-upgrade.log" 2>&1 \
        && "${RUN[@]}" -v "$DATA:/data" "$IMAGE" deskbot db upgrade >>"$WORK/db-upgrade.log" 2>&1 \
        && rev=$("$PY" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select version_num from alembic_version").fetchone()[0])' \
                 "$DATA/deskbot.db" 2>&1); then
    pass "deskbot db upgrade (twice) on a mounted /data: deskbot.db at revision $rev"
else
    fail "deskbot db upgrade: $(tail -n 5 "$WORK/db-upgrade.log")"
fi

# PostgreSQL (compose's database), when this machine runs one on 127.0.0.1:5432
# with trust authentication: a scratch database, its URL given as a *_FILE secret.
PG_DB="deskbot_image_test_$$"
pg() { "$PY" - "$@" <<'PY'
import sys, psycopg
action, db = sys.argv[1], sys.argv[2]
with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3,
                     autocommit=True) as c:
    if action == "create":
        c.execute(f'DROP DATABASE IF EXISTS "{db}"'); c.execute(f'CREATE DATABASE "{db}"')
    elif action == "drop":
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
if action == "revision":
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db}", connect_timeout=3) as c:
        print(c.execute("select version_num from alembic_version").fetchone()[0])
PY
}
if pg create "$PG_DB" 2>/dev/null; then
    PG_CREATED=1
    mkdir -p "$WORK/pg-secret"
    printf 'postgresql+psycopg://postgres@127.0.0.1:5432/%s\n' "$PG_DB" >"$WORK/pg-secret/url"
    chmod 0444 "$WORK/pg-secret/url"
    if podman run --rm --network host --no-healthcheck \
            -e DESKBOT_DATABASE_URL_FILE=/run/secrets/deskbot_database_url \
            -v "$WORK/pg-secret/url:/run/secrets/deskbot_database_url:ro" \
            "$IMAGE" deskbot db upgrade >"$WORK/db-upgrade-pg.log" 2>&1 \
            && rev=$(pg revision "$PG_DB" 2>&1); then
        pass "deskbot db upgrade on PostgreSQL (URL from DESKBOT_DATABASE_URL_FILE): revision $rev"
    else
        fail "deskbot db upgrade on PostgreSQL: $(tail -n 5 "$WORK/db-upgrade-pg.log")"
    fi
else
    echo "SKIP: deskbot db upgrade on PostgreSQL (none on 127.0.0.1:5432 with trust authentication)"
fi

# --- 4c. deskbot run against the fakes -------------------------------------------------
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {  # URL SECONDS: until it answers 200
    local deadline=$(( $(date +%s) + $2 ))
    until curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

SECRETS="$WORK/secrets"
mkdir -p "$SECRETS"
run_args=(-d --name "$CONTAINER" --network host --health-interval disable -v "$DATA:/data")
HTTP_PORT=$(free_port)
run_args+=(-e "DESKBOT_HTTP_ADDR=127.0.0.1:$HTTP_PORT")

if [[ " $CHANNELS " == *" zulip "* ]]; then
    ZULIP_PORT=$(free_port)
    ZULIP_KEY="zulip-key-$RANDOM$RANDOM$RANDOM"
    "$PY" -m tests.fakes.zulip_server --port "$ZULIP_PORT" --bot-email deskbot-bot@example.com \
        --api-key "$ZULIP_KEY" --stream support --engineer eng@example.com --customer alice@example.com \
        >"$WORK/fake-zulip.log" 2>&1 &
    FAKE_PIDS+=($!)
    wait_http "http://127.0.0.1:$ZULIP_PORT/_fake/state" 30 || die "fake Zulip server did not start"
    printf '%s\n' "$ZULIP_KEY" >"$SECRETS/zulip_api_key"
    run_args+=(-e "ZULIP_SITE=http://127.0.0.1:$ZULIP_PORT" -e ZULIP_EMAIL=deskbot-bot@example.com
               -e ZULIP_API_KEY_FILE=/run/secrets/zulip_api_key -e DESKBOT_ENGINEERS=eng@example.com
               -v "$SECRETS/zulip_api_key:/run/secrets/zulip_api_key:ro")
    pass "fake Zulip server on 127.0.0.1:$ZULIP_PORT"
fi
if [[ " $CHANNELS " == *" mastodon "* ]]; then
    MASTODON_PORT=$(free_port)
    MASTODON_TOKEN="mastodon-token-$RANDOM$RANDOM$RANDOM"
    "$PY" -m tests.fakes.mastodon_server --port "$MASTODON_PORT" --token "$MASTODON_TOKEN" \
        --account alice@remote.example:alice-token >"$WORK/fake-mastodon.log" 2>&1 &
    FAKE_PIDS+=($!)
    wait_http "http://127.0.0.1:$MASTODON_PORT/_fake/stats" 30 || die "fake Mastodon server did not start"
    printf '%s\n' "$MASTODON_TOKEN" >"$SECRETS/mastodon_access_token"
    run_args+=(-e "MASTODON_API_BASE_URL=http://127.0.0.1:$MASTODON_PORT"
               -e MASTODON_ACCESS_TOKEN_FILE=/run/secrets/mastodon_access_token
               -v "$SECRETS/mastodon_access_token:/run/secrets/mastodon_access_token:ro")
    pass "fake Mastodon server on 127.0.0.1:$MASTODON_PORT"
fi
chmod 0444 "$SECRETS"/*

# (stderr: podman's complaint that no systemd can run the health-check timer)
podman run "${run_args[@]}" "$IMAGE" >"$WORK/podman-run.log" 2>&1 || die "podman run $IMAGE (deskbot run)"
say "deskbot run in container $CONTAINER (channels: $CHANNELS; http 127.0.0.1:$HTTP_PORT)"
deadline=$(( $(date +%s) + WAIT ))
until curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; do
    [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ] \
        || die "deskbot run exited early (status $(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER" 2>/dev/null))"
    [ "$(date +%s)" -lt "$deadline" ] || die "deskbot run: /readyz not 200 within ${WAIT}s"
    sleep 1
done
pass "deskbot run is ready ($(( WAIT - deadline + $(date +%s) ))s)"

# a customer DM on each platform, then wait for the bot's answer on the fake
answered() {  # CHANNEL: prints the first line of the bot's answer to the customer
    case "$1" in
        zulip) curl -fsS --max-time 5 "http://127.0.0.1:$ZULIP_PORT/_fake/state" | "$PY" -c '
import json, sys
for m in json.load(sys.stdin)["messages"]:
    if m["sender"] == "deskbot-bot@example.com" and "alice@example.com" in m["to"] and m["stream"] is None:
        print(m["content"].splitlines()[0]); break' ;;
        mastodon) curl -fsS --max-time 5 "http://127.0.0.1:$MASTODON_PORT/_fake/posted?acct=deskbot" | "$PY" -c '
import json, sys
for p in json.load(sys.stdin):
    if any(r.startswith("alice@remote.example") for r in p["recipients"]) and p["visibility"] == "direct":
        print(p["text"].splitlines()[0]); break' ;;
    esac
}
for channel in $CHANNELS; do
    case "$channel" in
        zulip) curl -fsS --max-time 5 -o /dev/null -X POST "http://127.0.0.1:$ZULIP_PORT/_fake/dm" \
                   -d '{"from": "alice@example.com", "content": "help"}' || { fail "post a DM to the fake Zulip"; continue; } ;;
        mastodon) curl -fsS --max-time 5 -o /dev/null -X POST "http://127.0.0.1:$MASTODON_PORT/_fake/statuses" \
                   -d '{"from": "alice@remote.example", "text": "@deskbot help", "visibility": "direct"}' \
                   || { fail "post a DM to the fake Mastodon"; continue; } ;;
    esac
    deadline=$(( $(date +%s) + WAIT )); answer=""
    while [ -z "$answer" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.5
        answer=$(answered "$channel" 2>/dev/null || true)
    done
    if [ -n "$answer" ]; then
        pass "$channel: customer DM \"help\" answered: $answer"
    else
        fail "$channel: no answer to the customer's DM within ${WAIT}s"
    fi
done

for path in healthz readyz; do
    if body=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/$path" 2>&1); then
        pass "GET /$path: 200 $(echo "$body" | head -n 1)"
    else
        fail "GET /$path: $body"
    fi
done
if curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^# HELP'; then
    pass "GET /metrics: Prometheus text"
else
    fail "GET /metrics"
fi
if out=$(podman healthcheck run "$CONTAINER" 2>&1); then
    pass "the image's HEALTHCHECK: ${out:-healthy}"
else
    fail "the image's HEALTHCHECK: $out"
fi

podman logs "$CONTAINER" >"$WORK/container.log" 2>&1 || true
if "$PY" - "$WORK/container.log" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.strip()]
bad = [l for l in lines if not l.startswith("{")]
for l in lines:
    if l.startswith("{"):
        json.loads(l)
sys.exit(1 if not lines or bad else 0)
PY
then
    pass "logs are JSON lines ($(wc -l <"$WORK/container.log") lines)"
else
    fail "logs are not all JSON lines: $(grep -v '^{' "$WORK/container.log" | head -n 3)"
fi
leaked=0
for secret in ${ZULIP_KEY:-} ${MASTODON_TOKEN:-}; do
    grep -qF -- "$secret" "$WORK/container.log" && leaked=1
done
if [ "$leaked" -eq 0 ]; then pass "no secret in the logs"; else fail "a secret appears in the logs"; fi

podman stop -t 20 "$CONTAINER" >/dev/null 2>&1 || true
status=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER" 2>/dev/null || echo "?")
if [ "$status" = 0 ]; then
    pass "SIGTERM: deskbot run stopped with status 0"
else
    fail "SIGTERM: deskbot run stopped with status $status"
fi

[ "$FAILED" -eq 0 ]
