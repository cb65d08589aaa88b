"""deploy/alerts.yml: valid for Prometheus, each alert firing when (and only when) it should, on metrics that exist.

`promtool` is Prometheus's own checker (Debian package `prometheus`; `.ci/promtool.sh` unpacks just
that binary into .venv/bin). `promtool check rules` parses every expression and template;
`promtool test rules` runs the cases in tests/ops/alerts_test.yml, series as two replicas would
expose them, against the rules. The rest is read here: every metric a rule names is one that
`/metrics` serves, and every alert has a case.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from bot.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "alerts.yml"
CASES = REPO / "tests" / "ops" / "alerts_test.yml"


def promtool() -> str:
    found = shutil.which("promtool") or str(REPO / ".venv" / "bin" / "promtool")
    assert Path(found).is_file(), "promtool not found: run `bash .ci/promtool.sh` (CI's .ci/run does)"
    return found


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


def test_each_alert_fires_when_it_should_and_not_before() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", CASES.name], cwd=CASES.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerts_operators_need_each_with_a_severity_a_summary_a_description_and_a_case() -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for needed in ("DeskbotChannelDown", "DeskbotOutboxGrowing", "DeskbotOutboxStuck", "DeskbotResponseTargetMissed"):
        assert needed in names
    tested = {
        case["alertname"] for test in yaml.safe_load(CASES.read_text())["tests"] for case in test["alert_rule_test"]
    }
    assert set(names) <= tested, f"alerts without a case in {CASES.name}: {set(names) - tested}"
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_every_metric_a_rule_names_is_served() -> None:
    metrics = Metrics()
    metrics.channel_up.labels("zulip").set(1)
    metrics.delivery_failures.labels("zulip", "failed").inc()
    served = {line.split("{")[0].split(" ")[0] for line in generate_latest(metrics.registry).decode().splitlines()}
    named = {name for rule in _rules() for name in re.findall(r"\bdeskbot_[a-z_]+", rule["expr"])}
    assert named, "no deskbot metric named"
    assert named <= served, f"named by rules but not served: {named - served}"
