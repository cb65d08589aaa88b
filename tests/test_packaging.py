"""The locked dependencies install on every Python the project says it supports.

`pyproject.toml` says `requires-python >= 3.11`; Debian 12 ships 3.11.2. A
locked package that wants a later patch release (soupsieve 4.1 wants 3.11.5)
would break the README's install command there, so the lock is compiled for
3.11.0 and this test holds it to that.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> list[tuple[str, str]]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return [m.groups() for line in lines if (m := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line))]


def test_every_locked_package_accepts_the_oldest_supported_python() -> None:
    floor = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    oldest = "3.11.0"
    assert oldest in floor
    locked = _locked()
    assert len(locked) > 30  # the lock was read
    refused = []
    for name, version in locked:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a marker kept it off this machine
        assert dist.version == version, f"{name}: {dist.version} installed, {version} locked"
        wanted = dist.metadata.get("Requires-Python")
        if wanted and oldest not in SpecifierSet(wanted):
            refused.append(f"{name}=={version} needs Python {wanted}")
    assert not refused, refused
