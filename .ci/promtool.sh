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
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
install -m 755 "$work/usr/bin/promtool" "$target"
echo "promtool: $("$target" --version 2>&1 | head -1)"
