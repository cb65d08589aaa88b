"""What an operator's Prometheus expects from `/metrics` of a running `deskbot run` (issue 15, item 4).

The process and Python collectors, `deskbot_build_info`, `deskbot_channel_up` per channel, and no
`*_created` series (a counter's creation time is noise). tests/drills/test_quiet_outage.py checks
`deskbot_channel_up` through an outage.
"""

from __future__ import annotations

import platform
import re
import time

import pytest

from .conftest import BotProcess, Fakes, drill_store, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the series `name{labels}` in Prometheus text, None when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name_found, _, label_text = series.partition("{")
        if name_found == name and ",".join(sorted(label_text.rstrip("}").split(","))) == wanted:
            return float(value)
    return None


def test_metrics_have_process_and_build_information_channel_up_and_no_created_series(
    fakes: Fakes, make_database, bots
) -> None:  # noqa: ANN001
    url = make_database("sqlite")
    engine, [person], ledger = drill_store(fakes, url, mastodon=0)
    bot: BotProcess = bots("deskbot", {**fakes.env(url), "DESKBOT_REVISION": "0123abc"})
    bot.start().wait_ready()
    fakes.dm(person, "open")  # so that counters and histograms have series
    wait_until(ledger.all_answered, 30, "the DM to be answered")
    status, text = bot.get("/metrics")
    assert bot.terminate() == 0
    engine.dispose()

    assert status == 200
    assert (metric(text, "process_resident_memory_bytes") or 0) > 10_000_000
    assert (metric(text, "process_cpu_seconds_total") or 0) > 0
    assert (metric(text, "process_open_fds") or 0) > 0
    assert (metric(text, "process_start_time_seconds") or 0) > time.time() - 600
    version = platform.python_version_tuple()
    assert metric(text, "python_info", implementation="CPython", major=version[0], minor=version[1],
                   patchlevel=version[2], version=platform.python_version()) == 1.0  # fmt: skip
    assert metric(text, "python_gc_collections_total", generation="0") is not None
    build = re.search(
        r'^deskbot_build_info\{python="([^"]+)",revision="([^"]+)",version="([^"]+)"\} 1\.0$', text, re.MULTILINE
    )
    assert build is not None, text
    assert build.group(1) == platform.python_version() and re.fullmatch(r"\d+\.\d+\.\d+.*", build.group(3))
    assert build.group(2) == "0123abc"  # the image's build revision
    assert metric(text, "deskbot_channel_up", channel="zulip") == 1.0
    assert metric(text, "deskbot_channel_up", channel="mastodon") == 1.0
    assert metric(text, "deskbot_messages_in_total", channel="zulip") == 1.0
    assert metric(text, "deskbot_incidents_opened_total") == 1.0
    assert [line for line in text.splitlines() if "_created" in line] == []
