# shellcheck shell=bash
# Shared by deploy/test-image.sh and deploy/compose-test.sh (sourced, not run).
#
# What a caller gets: REPO (and the working directory set to it), WORK (a temporary
# directory, removed on exit), PY (the repository's .venv python), say/pass/fail/die,
# and an exit trap that runs the caller's `cleanup_extra` (if it defines one), stops
# the fake servers, shows the logs in $WORK on failure and prints one summary line.
#
# How failures are reported (CI must never fail without saying why, nor say it twice):
# every check prints PASS: or FAIL: with its cause; a command that fails where no
# check expected it prints one FAIL line naming the command, its status and its line
# (the ERR trap, inherited by functions with errtrace); the exit status is non-zero
# when any FAIL was printed. Output of commands is read from files or variables,
# never through a pipe into a reader that may stop early (curl piped into `grep -q` under
# pipefail fails at random on curl's SIGPIPE).

set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

SCRIPT_NAME=deploy/$(basename "$0")
START=$(date +%s)
FAILED=0
WORK=$(mktemp -d "/tmp/deskbot-$(basename "$0" .sh).XXXXXX")
FAKE_PIDS=()
PY=.venv/bin/python

say()  { printf '%s [%4ss] %s\n' "==>" "$(( $(date +%s) - START ))" "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILED=$((FAILED + 1)); }
die()  { fail "$*"; exit 1; }

on_error() {  # STATUS LINE COMMAND: a command failed where no check expected it
    # Only the shell that owns FAILED reports: a failing $(…) is reported once, by the
    # assignment or test around it in the main shell, with the same line.
    [ "$BASH_SUBSHELL" -eq 0 ] || return 0
    fail "unexpected error: \`$3\` exited with status $1 (${BASH_SOURCE[1]#"$REPO"/} line $2)"
}

show_logs() {  # the logs in $WORK, after a failure
    local f
    for f in "$WORK"/*.log; do
        [ -s "$f" ] || continue
        case "$f" in */podman-info.log|*/container.log) continue ;; esac
        echo "--- $(basename "$f") (last 20 lines) ---"
        grep -v "is ignored: it is neither a file nor a directory" "$f" >"$WORK/.tail" || true
        tail -n 20 "$WORK/.tail"
    done
}

on_exit() {
    local rc=$? pid
    set +eE
    trap - ERR
    if declare -F cleanup_extra >/dev/null; then cleanup_extra "$rc"; fi
    for pid in "${FAKE_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${FAKE_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then show_logs; fi
    rm -rf "$WORK"
    local took=$(( $(date +%s) - START ))
    if [ "$rc" -eq 0 ] && [ "$FAILED" -eq 0 ]; then
        echo "PASS: ${SCRIPT_NAME} (${took}s)"
    else
        if [ "$rc" -eq 130 ]; then
            echo "FAIL: ${SCRIPT_NAME} interrupted (${took}s)"
        else
            echo "FAIL: ${SCRIPT_NAME}: ${FAILED} check(s) failed (${took}s)"
        fi
        [ "$rc" -eq 0 ] && rc=1
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

retry() {  # ATTEMPTS COMMAND…: for steps that reach a package registry or mirror
    local n=$1 i; shift
    for ((i = 1; i <= n; i++)); do
        "$@" && return 0
        [ "$i" -lt "$n" ] && { say "attempt $i of $n failed: $*"; sleep 5; }
    done
    return 1
}

apt_install() {  # PACKAGE…: from Debian, as root
    [ "$(id -u)" -eq 0 ] || die "need root to install $* (or install them first)"
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >>"$WORK/apt.log" 2>&1 || true
    retry 2 timeout 900 apt-get install -y -qq --no-install-recommends "$@" \
        >>"$WORK/apt.log" 2>&1 || die "apt-get install $* (see apt.log)"
}

install_tools() {  # TOOL…: install the Debian packages of the same names where the command is missing
    local missing=() tool
    for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}" ca-certificates uidmap
}

install_debs() {  # PACKAGE…: install the Debian packages not installed yet
    local missing=() deb
    for deb in "$@"; do
        [ "$(dpkg-query -W -f '${Status}' "$deb" 2>/dev/null)" = "install ok installed" ] || missing+=("$deb")
    done
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
}

use_podman_with_runc() {  # crun (podman's default here) fails on these machines: runc, explicit ulimits
    export CONTAINERS_CONF="$WORK/containers.conf"
    cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
    podman info >"$WORK/podman-info.log" 2>&1 || { tail -n 20 "$WORK/podman-info.log"; die "podman info (above)"; }
}

ensure_venv() {  # the repository's .venv with the fake servers' dependencies (as .ci/run makes it)
    if [ -x "$PY" ] && "$PY" -c 'import tests.fakes.zulip, tests.fakes.mastodon' 2>/dev/null; then
        return 0
    fi
    say "setting up .venv from requirements.lock (as .ci/run does)"
    python3 -m venv .venv >/dev/null 2>&1 || true
    if ! "$PY" -m uv --version >/dev/null 2>&1; then
        retry 2 "$PY" -m pip install --quiet --disable-pip-version-check uv >>"$WORK/venv.log" 2>&1 \
            || die "pip install uv into .venv (see venv.log)"
    fi
    retry 2 "$PY" -m uv pip install --quiet --python "$PY" -r requirements.lock >>"$WORK/venv.log" 2>&1 \
        || die "install requirements.lock into .venv (see venv.log)"
}

# A free TCP port below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
# 32768-60999 by default), so that no connection made meanwhile can be given it
# between this check and the bind of the server it is for.
free_port() {
    "$PY" - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for port in random.sample(range(20000, min(low, 32768)), 200):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
    print(port)
    break
else:
    raise SystemExit("no free port found")
PY
}

wait_http() {  # URL SECONDS: until it answers 200
    local deadline=$(( $(date +%s) + $2 ))
    until curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# The fake Zulip server (tests/fakes/) with the bot, one engineer and one customer.
# Sets ZULIP_URL and ZULIP_KEY (the bot's API key).
start_fake_zulip() {  # HOST
    local port
    port=$(free_port)
    ZULIP_URL="http://$1:$port"
    ZULIP_KEY="zulip-key-$RANDOM$RANDOM$RANDOM"
    "$PY" -m tests.fakes.zulip --host "$1" --port "$port" --bot-email deskbot-bot@example.com \
        --api-key "$ZULIP_KEY" --stream support --engineer eng@example.com --customer alice@example.com \
        >"$WORK/fake-zulip.log" 2>&1 &
    FAKE_PIDS+=($!)
    wait_http "$ZULIP_URL/_fake/state" 30 || die "fake Zulip server did not answer on $ZULIP_URL within 30s"
    pass "fake Zulip server on $ZULIP_URL"
}

start_fake_mastodon() {  # sets MASTODON_URL and MASTODON_TOKEN
    local port
    port=$(free_port)
    MASTODON_URL="http://127.0.0.1:$port"
    MASTODON_TOKEN="mastodon-token-$RANDOM$RANDOM$RANDOM"
    "$PY" -m tests.fakes.mastodon --port "$port" --token "$MASTODON_TOKEN" \
        --account alice@remote.example:alice-token >"$WORK/fake-mastodon.log" 2>&1 &
    FAKE_PIDS+=($!)
    wait_http "$MASTODON_URL/_fake/stats" 30 || die "fake Mastodon server did not answer on $MASTODON_URL within 30s"
    pass "fake Mastodon server on $MASTODON_URL"
}

# The test mail servers (tests/mail: a Dovecot and a submission server, 127.0.0.1) with
# the support mailbox and one customer's. Sets MAIL_IMAPS_URL, MAIL_SMTPS_URL,
# MAIL_LMTP_PORT, MAIL_CA_FILE (the test CA), MAIL_PASSWORD (the support mailbox's) and
# MAIL_CUSTOMER / MAIL_CUSTOMER_PASSWORD. Dovecot comes from Debian's packages (root).
start_mail_servers() {
    install_debs dovecot-imapd dovecot-lmtpd
    local deadline=$(( $(date +%s) + 30 )) pid
    MAIL_PASSWORD="mail-pass-$RANDOM$RANDOM$RANDOM"
    MAIL_CUSTOMER=alice@customer.example
    MAIL_CUSTOMER_PASSWORD="alice-pass-$RANDOM$RANDOM"
    "$PY" -m tests.mail --user "support@example.com:$MAIL_PASSWORD" \
        --user "$MAIL_CUSTOMER:$MAIL_CUSTOMER_PASSWORD" --info "$WORK/mail-servers.env" \
        >"$WORK/mail-servers.log" 2>&1 &
    pid=$!
    FAKE_PIDS+=("$pid")
    until [ -s "$WORK/mail-servers.env" ]; do
        kill -0 "$pid" 2>/dev/null \
            || die "the test mail servers (python -m tests.mail) exited: $(tail -n 3 "$WORK/mail-servers.log")"
        [ "$(date +%s)" -lt "$deadline" ] || die "the test mail servers did not start within 30s (see mail-servers.log)"
        sleep 0.2
    done
    # shellcheck source=/dev/null
    . "$WORK/mail-servers.env"
    pass "mail servers: Dovecot ($MAIL_IMAPS_URL, LMTP port $MAIL_LMTP_PORT) and submission ($MAIL_SMTPS_URL)"
}

# The customer MAIL_CUSTOMER mails "help" to support@example.com (LMTP, as the
# internet's mail arrives); prints the subject and first line of the bot's answer
# once it is in the customer's mailbox (read over IMAPS, the test CA trusted).
# Returns 1, with the cause on stderr, when the delivery fails or no answer came
# within SECONDS.
mail_answered() {  # SECONDS
    "$PY" - "$1" "$MAIL_LMTP_PORT" "$MAIL_IMAPS_URL" "$MAIL_CA_FILE" "$MAIL_CUSTOMER" "$MAIL_CUSTOMER_PASSWORD" <<'PY'
import email.utils, smtplib, ssl, sys, time
from email import message_from_bytes, policy
from email.message import EmailMessage
from imapclient import IMAPClient

seconds, lmtp_port, imaps_url, ca_file, customer, password = sys.argv[1:]
mail = EmailMessage()
mail["From"] = f"Alice <{customer}>"
mail["To"] = "support@example.com"
mail["Subject"] = "Help, please"
mail["Date"] = email.utils.formatdate(localtime=True)
mail["Message-ID"] = email.utils.make_msgid(domain="customer.example")
mail.set_content("help\n")
try:
    with smtplib.LMTP("127.0.0.1", int(lmtp_port), timeout=30) as lmtp:
        lmtp.sendmail(customer, ["support@example.com"], mail.as_bytes())
except (OSError, smtplib.SMTPException) as error:
    sys.exit(f"delivering the customer's mail to support@example.com over LMTP failed: {error}")
host, port = imaps_url.removeprefix("imaps://").rsplit(":", 1)
deadline = time.monotonic() + float(seconds)
held = []
while True:
    time.sleep(0.5)
    try:
        with IMAPClient(host, port=int(port), ssl=True, ssl_context=ssl.create_default_context(cafile=ca_file), timeout=10) as imap:
            imap.login(customer, password)
            imap.select_folder("INBOX", readonly=True)
            uids = imap.search("ALL")
            fetched = imap.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
    except Exception as error:  # noqa: BLE001 — said on stderr if it lasts
        held = [f"(reading {customer}'s mailbox failed: {error})"]
        fetched = {}
    messages = [message_from_bytes(item[b"BODY[]"], policy=policy.default) for item in fetched.values()]
    answers = [m for m in messages if "support@example.com" in str(m["From"]) and m["In-Reply-To"] == mail["Message-ID"]]
    if answers:
        text = answers[0].get_body(preferencelist=("plain",)).get_content().strip()
        print(f"{answers[0]['Subject']}: {text.splitlines()[0] if text else '(empty)'}")
        sys.exit(0)
    if time.monotonic() > deadline:
        held = held or [f"{m['From']} | {m['Subject']}" for m in messages] or ["nothing"]
        sys.exit(f"no answer in {customer}'s mailbox within {seconds}s (it holds: {'; '.join(held)})")
PY
}

# The customer writes "help" to the bot on CHANNEL; prints the first line of the
# bot's answer once the fake has it. Returns 1, with the cause on stderr, when
# posting fails or no answer came within SECONDS.
dm_answered() {  # CHANNEL SECONDS
    local deadline=$(( $(date +%s) + $2 )) state="$WORK/fake-$1-state.json"
    case "$1" in
        zulip) curl -fsS --max-time 5 -o /dev/null -X POST "$ZULIP_URL/_fake/dm" \
                   -d '{"from": "alice@example.com", "content": "help"}' || { echo "posting a DM to the fake Zulip failed" >&2; return 1; } ;;
        mastodon) curl -fsS --max-time 5 -o /dev/null -X POST "$MASTODON_URL/_fake/statuses" \
                   -d '{"from": "alice@remote.example", "text": "@deskbot help", "visibility": "direct"}' \
                   || { echo "posting a DM to the fake Mastodon failed" >&2; return 1; } ;;
    esac
    while :; do
        sleep 0.5
        case "$1" in
            zulip) curl -fsS --max-time 5 -o "$state" "$ZULIP_URL/_fake/state" 2>/dev/null || : >"$state" ;;
            mastodon) curl -fsS --max-time 5 -o "$state" "$MASTODON_URL/_fake/posted?acct=deskbot" 2>/dev/null || : >"$state" ;;
        esac
        "$PY" - "$1" "$state" <<'PY' && return 0
import json, sys
channel, path = sys.argv[1], sys.argv[2]
try:
    data = json.load(open(path))
except ValueError:  # not fetched this time
    sys.exit(1)
if channel == "zulip":
    answers = [m["content"] for m in data["messages"]
               if m["sender"] == "deskbot-bot@example.com" and "alice@example.com" in m["to"] and m["stream"] is None]
else:
    answers = [p["text"] for p in data
               if any(r.startswith("alice@remote.example") for r in p["recipients"]) and p["visibility"] == "direct"]
if not answers:
    sys.exit(1)
print(answers[0].splitlines()[0])
PY
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "no answer to the customer's DM within $2s" >&2
            return 1
        fi
    done
}
