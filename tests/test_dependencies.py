"""`pyproject.toml`'s dependencies match what the code imports (issue 15, item 6).

* Every declared dependency is imported by deskbot's packages (or used without an import, for a
  reason written below), and nothing is imported that is not declared.
* The lowest versions the ranges allow really work: they are resolved with uv (`--resolution
  lowest-direct`), installed into a scratch virtual environment, and the command-line tests and
  the calendar tests run there, with every module of deskbot imported first.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "adapters", "storage")

#: Dependencies deskbot needs but never names in an import statement, and why.
USED_WITHOUT_IMPORT = {
    "tzdata": "zoneinfo's time-zone database where the system has none (slim container images)",
    "psycopg": "the driver SQLAlchemy loads for postgresql+psycopg:// URLs",
}

pytestmark = pytest.mark.timeout(1800)


def _declared() -> dict[str, str]:
    """Declared runtime dependencies: normalised distribution name → requirement."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normalise(Requirement(text).name): text for text in project["dependencies"]}


def _through_extras() -> set[str]:
    """Distributions a declared dependency brings with an extra named in pyproject (`Mastodon.py[grapheme]`)."""
    brought = set()
    for text in _declared().values():
        wanted = Requirement(text)
        for extra in wanted.extras:
            for dependency in map(Requirement, requires(wanted.name) or []):
                if dependency.marker is not None and dependency.marker.evaluate({"extra": extra}):
                    brought.add(_normalise(dependency.name))
    return brought


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> set[str]:
    """Top-level modules deskbot's packages import (at run time or for type checking)."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in PACKAGES}


def test_every_dependency_is_used_and_every_import_declared() -> None:
    declared = _declared()
    distributions = packages_distributions()
    imported: dict[str, str] = {}
    for module in _imported_top_levels():
        for dist in distributions.get(module, [module]):
            imported[_normalise(dist)] = module
    allowed = set(declared) | _through_extras()
    undeclared = sorted(f"{module} ({dist})" for dist, module in imported.items() if dist not in allowed)
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"
    unused = sorted(set(declared) - set(imported) - set(USED_WITHOUT_IMPORT))
    assert not unused, f"in pyproject.toml but never imported: {unused}"
    assert set(USED_WITHOUT_IMPORT) <= set(declared)


@pytest.mark.slow  # about a minute: resolves and installs from the package index, runs tests there
def test_the_lowest_allowed_versions_work(tmp_path: Path) -> None:
    uv = [sys.executable, "-m", "uv"]
    lowest = tmp_path / "lowest.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_", "PYTEST_"))}
    resolve = [
        *uv,
        "pip",
        "compile",
        "--quiet",
        str(ROOT / "pyproject.toml"),
        "--extra",
        "dev",
        "--resolution",
        "lowest-direct",
        "--python-version",
        "3.11.0",
        "-o",
        str(lowest),
    ]
    subprocess.run(resolve, check=True, env=env, timeout=300)
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lowest.read_text(), re.MULTILINE))
    for name, requirement in _declared().items():
        assert pins.get(name) in Requirement(requirement).specifier, f"{name}: {pins.get(name)} for {requirement!r}"

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env, timeout=120)
    subprocess.run(
        [*uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(lowest)], check=True, env=env, timeout=600
    )
    env["PYTHONPATH"] = str(ROOT)
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__main__.py" and "migrations" not in path.parts
    )
    imported = subprocess.run(
        [str(python), "-c", "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)", *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    tests = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-x",
            "tests/cli",
            "tests/policy/test_calendar.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
