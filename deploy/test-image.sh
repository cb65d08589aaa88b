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
#    Zulip and Mastodon servers and its test mail servers (a Dovecot and an SMTP
#    submission server, `python -m tests.mail`), all started here from the
#    repository's .venv, with the secrets given as *_FILE: one customer DM on
#    each platform and one customer mail must be answered (the answer read in
#    the customer's mailbox), /healthz and /readyz must answer 200, the image's
#    HEALTHCHECK must pass, and SIGTERM must stop the container with status 0.
#
# Prints PASS/FAIL lines (each FAIL with its cause; see deploy/test-lib.sh, which
# this shares with deploy/compose-test.sh); exits non-zero on any failure.
# Everything it starts is removed on exit; the images stay for the next run and
# for deploy/compose-test.sh. Environment knobs:
#   DESKBOT_IMAGE                   image tag to build (localhost/deskbot:test)
#   DESKBOT_BASE_IMAGE              base image tag (localhost/deskbot-base)
#   DESKBOT_REBUILD_BASE=1          remake the base image even if podman has it
#   DESKBOT_DEBIAN_MIRROR           mirror for debootstrap (default: from apt's sources)
#   DESKBOT_IMAGE_TEST_CHANNELS     "zulip mastodon email" (default), or some of them
# shellcheck source=deploy/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/test-lib.sh"

IMAGE=${DESKBOT_IMAGE:-localhost/deskbot:test}
BASE_IMAGE=${DESKBOT_BASE_IMAGE:-localhost/deskbot-base}
# Bump when the recipe of the base image changes: an older base is then remade.
BASE_SUITE=trixie
BASE_KEY="debian-${BASE_SUITE}-minbase-python3-v1"
CHANNELS=${DESKBOT_IMAGE_TEST_CHANNELS:-zulip mastodon email}
WAIT=90            # seconds to wait for start-up and for each answer

CONTAINER="deskbot-image-test-$$"
PG_CREATED=""

cleanup_extra() {  # RC (called by test-lib.sh's exit trap)
    if podman container exists "$CONTAINER" 2>/dev/null; then
        if [ "$1" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
            echo "--- container logs (last 40 lines) ---"; podman logs --tail 40 "$CONTAINER" 2>&1
        fi
        podman rm -f -t 2 "$CONTAINER" >/dev/null 2>&1
    fi
    [ -n "$PG_CREATED" ] && pg drop "$PG_DB" >/dev/null 2>&1
}

[ -n "${CHANNELS// /}" ] || die "DESKBOT_IMAGE_TEST_CHANNELS is empty"
for channel in $CHANNELS; do
    case "$channel" in
        zulip|mastodon|email) ;;
        *) die "DESKBOT_IMAGE_TEST_CHANNELS: unknown channel '$channel' (zulip, mastodon, email)" ;;
    esac
done

# --- 1. tools ----------------------------------------------------------------------
install_tools podman buildah runc debootstrap curl
use_podman_with_runc
pass "podman $(podman version --format '{{.Client.Version}}' 2>/dev/null) with runc"

# --- 2. base image -----------------------------------------------------------------
debian_mirror() {  # the Debian mirror of apt's sources (read whole: no reader that stops early)
    if [ -n "${DESKBOT_DEBIAN_MIRROR:-}" ]; then echo "$DESKBOT_DEBIAN_MIRROR"; return; fi
    local files=() f uris m
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && files+=("$f")
    done
    uris=""
    [ "${#files[@]}" -eq 0 ] || uris=$(awk '
        /^URIs:/ {for (i = 2; i <= NF; i++) print $i}
        /^deb /  {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}' "${files[@]}")
    for m in $uris; do
        if [[ $m =~ /debian/?$ ]]; then echo "$m"; return; fi
    done
    echo http://deb.debian.org/debian
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
    # (through a file, not a pipe: a failure names the step that failed)
    tar -C "$rootfs" -cf "$WORK/rootfs.tar" . || die "tar of the debootstrap tree $rootfs"
    rm -rf "$rootfs"
    podman import -q --change "LABEL io.deskbot.base=$BASE_KEY" --change 'CMD ["/usr/bin/python3"]' \
        "$WORK/rootfs.tar" "$BASE_IMAGE" >"$WORK/podman-import.log" 2>&1 \
        || die "podman import $BASE_IMAGE: $(tail -n 3 "$WORK/podman-import.log")"
    rm -f "$WORK/rootfs.tar"
    pass "base image $BASE_IMAGE made with debootstrap ($BASE_KEY)"
fi

# --- 3. wheels and build -------------------------------------------------------------
# The build runs without network: pip inside it installs from wheels downloaded
# here (the host's pip knows this machine's package registry and its CA).
out=$(podman run --rm --network none "$BASE_IMAGE" python3 -c \
    'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}", platform.libc_ver()[1], platform.machine())' 2>&1) \
    || die "python3 in $BASE_IMAGE: $out"
read -r py_ver glibc arch <<<"$out"
say "base image: Python $py_ver, glibc $glibc, $arch"

ensure_venv

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
# Locked runtime packages published as source only (pure Python; authres, which the email
# channel reads Authentication-Results with): made into wheels here first, for any Python 3,
# where the download below (wheels only, for the image's platform) finds them.
SOURCE_ONLY=(authres)
mkdir -p "$WORK/wheels"
for pkg in "${SOURCE_ONLY[@]}"; do
    retry 2 timeout 600 "${PIP[@]}" wheel --quiet --disable-pip-version-check --no-deps \
        --constraint requirements.lock --wheel-dir "$WORK/wheels" "$pkg" >>"$WORK/pip-wheel.log" 2>&1 \
        || die "pip wheel $pkg, a locked package published as source only (see pip-wheel.log)"
done
for wheel in "$WORK"/wheels/*.whl; do
    [[ $wheel == *-none-any.whl ]] || die "$(basename "$wheel"), built from source here, is not pure Python: it cannot go into the image"
done
say "downloading the locked runtime wheels for cp${py_ver/./}"
retry 2 timeout 900 "${PIP[@]}" download --quiet --disable-pip-version-check --dest "$WORK/wheels" \
    --find-links "$WORK/wheels" \
    --only-binary=:all: --python-version "$py_ver" --implementation cp "${platforms[@]}" \
    --constraint requirements.lock --requirement "$WORK/runtime.txt" "setuptools>=69" wheel \
    >"$WORK/pip-download.log" 2>&1 || die "pip download of the locked wheels (see pip-download.log)"
wheels=("$WORK"/wheels/*.whl)
pass "${#wheels[@]} wheels for Python $py_ver"

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# The revision the image records (deskbot_build_info, the start-up line); "" outside a git checkout.
REVISION=$(git rev-parse --short HEAD 2>/dev/null || true)
say "podman build -f deploy/Dockerfile -t $IMAGE (BASE_IMAGE=$BASE_IMAGE, REVISION=${REVISION:-none})"
build_start=$(date +%s)
if ! timeout 1800 podman build --format docker --network none \
        --file deploy/Dockerfile --tag "$IMAGE" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg REVISION="$REVISION" \
        --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels \
        --volume "$WORK/wheels:/wheels:ro" \
        . >"$WORK/build.log" 2>&1; then
    tail -n 30 "$WORK/build.log"
    die "podman build of deploy/Dockerfile (the end of build.log above)"
fi
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true   # the superseded build of this tag
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
pass "image built in $(( $(date +%s) - build_start ))s: $IMAGE, $(( size / 1000000 )) MB (on $BASE_IMAGE)"

# --- 4a. the image's configuration --------------------------------------------------
podman image inspect "$IMAGE" >"$WORK/inspect.json"
if "$PY" - "$WORK/inspect.json" "$REVISION" <<'PY'
import json, sys
image = json.load(open(sys.argv[1]))[0]
config = image["Config"]
env = dict(item.split("=", 1) for item in config.get("Env", []))
problems = []
user = config.get("User", "")
if user in ("", "0", "root") or user.startswith(("0:", "root:")):
    problems.append(f"user {user!r} is root")
for name, want in {"DESKBOT_HTTP_ADDR": "0.0.0.0:8080", "DESKBOT_LOG_FORMAT": "json",
                   "DESKBOT_DATABASE_URL": "sqlite:////data/deskbot.db", "DESKBOT_REVISION": sys.argv[2]}.items():
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
    pass "image config: user $(podman image inspect --format '{{.Config.User}}' "$IMAGE"), CMD deskbot run, /data volume, env (revision ${REVISION:-none}), HEALTHCHECK"
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
SECRETS="$WORK/secrets"
mkdir -p "$SECRETS"
run_args=(-d --name "$CONTAINER" --network host --health-interval disable -v "$DATA:/data")
HTTP_PORT=$(free_port)
run_args+=(-e "DESKBOT_HTTP_ADDR=127.0.0.1:$HTTP_PORT")

if [[ " $CHANNELS " == *" zulip "* ]]; then
    start_fake_zulip 127.0.0.1
    printf '%s\n' "$ZULIP_KEY" >"$SECRETS/zulip_api_key"
    run_args+=(-e "ZULIP_SITE=$ZULIP_URL" -e ZULIP_EMAIL=deskbot-bot@example.com
               -e ZULIP_API_KEY_FILE=/run/secrets/zulip_api_key -e DESKBOT_ENGINEERS=eng@example.com
               -v "$SECRETS/zulip_api_key:/run/secrets/zulip_api_key:ro")
fi
if [[ " $CHANNELS " == *" mastodon "* ]]; then
    start_fake_mastodon
    printf '%s\n' "$MASTODON_TOKEN" >"$SECRETS/mastodon_access_token"
    run_args+=(-e "MASTODON_API_BASE_URL=$MASTODON_URL"
               -e MASTODON_ACCESS_TOKEN_FILE=/run/secrets/mastodon_access_token
               -v "$SECRETS/mastodon_access_token:/run/secrets/mastodon_access_token:ro")
fi
if [[ " $CHANNELS " == *" email "* ]]; then
    # The support mailbox over implicit TLS, the test CA given as EMAIL_CA_FILE.
    start_mail_servers
    printf '%s\n' "$MAIL_PASSWORD" >"$SECRETS/email_password"
    cp "$MAIL_CA_FILE" "$SECRETS/mail_ca.pem"
    run_args+=(-e EMAIL_ADDRESS=support@example.com -e "EMAIL_IMAP_URL=$MAIL_IMAPS_URL"
               -e "EMAIL_SMTP_URL=$MAIL_SMTPS_URL" -e EMAIL_PASSWORD_FILE=/run/secrets/email_password
               -e EMAIL_CA_FILE=/run/secrets/mail_ca.pem
               -v "$SECRETS/email_password:/run/secrets/email_password:ro"
               -v "$SECRETS/mail_ca.pem:/run/secrets/mail_ca.pem:ro")
fi
chmod 0444 "$SECRETS"/*

# (stderr: podman's complaint that no systemd can run the health-check timer)
podman run "${run_args[@]}" "$IMAGE" >"$WORK/podman-run.log" 2>&1 \
    || die "podman run $IMAGE (deskbot run): $(tail -n 3 "$WORK/podman-run.log")"
say "deskbot run in container $CONTAINER (channels: $CHANNELS; http 127.0.0.1:$HTTP_PORT)"
deadline=$(( $(date +%s) + WAIT ))
until curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; do
    [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ] \
        || die "deskbot run exited early (status $(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER" 2>/dev/null))"
    [ "$(date +%s)" -lt "$deadline" ] || die "deskbot run: /readyz not 200 within ${WAIT}s"
    sleep 1
done
pass "deskbot run is ready ($(( WAIT - deadline + $(date +%s) ))s)"

# a customer DM on each platform, then the bot's answer on the fake; a customer's
# mail, then the bot's answer in the customer's mailbox
for channel in $CHANNELS; do
    if [ "$channel" = email ]; then
        if answer=$(mail_answered "$WAIT" 2>"$WORK/dm.err"); then
            pass "email: customer mail \"help\" answered in $MAIL_CUSTOMER's mailbox: $answer"
        else
            fail "email: $(<"$WORK/dm.err")"
        fi
    elif answer=$(dm_answered "$channel" "$WAIT" 2>"$WORK/dm.err"); then
        pass "$channel: customer DM \"help\" answered: $answer"
    else
        fail "$channel: $(<"$WORK/dm.err")"
    fi
done

# /healthz, /readyz, /metrics: bodies go to files, then are read whole
for path in healthz readyz metrics; do
    if curl -fsS --max-time 5 -o "$WORK/$path.body" "http://127.0.0.1:$HTTP_PORT/$path" 2>"$WORK/curl.err"; then
        first=$(<"$WORK/$path.body"); first=${first%%$'\n'*}
        case "$path" in
            metrics) if grep -q '^# HELP ' "$WORK/$path.body"; then
                         pass "GET /metrics: Prometheus text"
                     else
                         fail "GET /metrics: 200, but no '# HELP' line; it begins: ${first:0:120}"
                     fi ;;
            *) pass "GET /$path: 200 $first" ;;
        esac
    else
        fail "GET /$path: $(<"$WORK/curl.err")"
    fi
done
if out=$(podman healthcheck run "$CONTAINER" 2>&1); then
    pass "the image's HEALTHCHECK: ${out:-healthy}"
else
    fail "the image's HEALTHCHECK: $out"
fi

podman logs "$CONTAINER" >"$WORK/container.log" 2>&1 || true
if out=$("$PY" - "$WORK/container.log" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.strip()]
if not lines:
    sys.exit("no log lines at all")
for n, line in enumerate(lines, 1):
    try:
        json.loads(line)
    except ValueError:
        sys.exit(f"line {n} is not JSON: {line[:160].rstrip()}")
print(len(lines))
PY
); then
    pass "logs are JSON lines ($out lines)"
else
    fail "logs: $out"
fi
leaked=0
for secret in ${ZULIP_KEY:-} ${MASTODON_TOKEN:-} ${MAIL_PASSWORD:-}; do
    grep -qF -- "$secret" "$WORK/container.log" && leaked=1
done
if [ "$leaked" -eq 0 ]; then pass "no secret in the logs"; else fail "a secret appears in the logs"; fi

stop_start=$(date +%s)
podman stop -t 20 "$CONTAINER" >"$WORK/podman-stop.log" 2>&1 || fail "podman stop: $(tail -n 3 "$WORK/podman-stop.log")"
status=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER" 2>&1) || status="unknown ($status)"
if [ "$status" = 0 ]; then
    pass "SIGTERM: deskbot run stopped with status 0 in $(( $(date +%s) - stop_start ))s"
else
    fail "SIGTERM: deskbot run stopped with status $status"
fi
# The exit trap (test-lib.sh) prints the summary and exits non-zero if any check failed.
