#!/usr/bin/env bash
# promtool, Prometheus's rule checker, into .venv/bin for tests/ops/test_alert_rules.py.
# It comes from Debian's "prometheus" package; only that one binary is unpacked from it, because
# installing the package would also install (and start) a Prometheus server.
set -euo pipefail
cd "$(dirname "$0")/.."

target=.venv/bin/promtool
if command -v promtool >/dev/null 2>&1 || [ -x "$target" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt-get download writes as the _apt user when it can
if ! (cd "$work" && apt-get download prometheus >"$work/apt.log" 2>&1); then
    apt-get update -qq >>"$work/apt.log" 2>&1 || true
    (cd "$work" && apt-get download prometheus >>"$work/apt.log" 2>&1) || {
        echo "FAIL: cannot download Debian's prometheus package for promtool:" >&2
        tail -5 "$work/apt.log" >&2
        exit 1
    }
fi
# No pipes (as in deploy/test-lib.sh): a reader that stops early fails a pipefail pipeline by chance.
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
install -m 755 "$work/root/usr/bin/promtool" "$target"
version=$("$target" --version 2>&1) || true
echo "promtool: ${version%%$'\n'*}"
