"""Every setting deskbot reads is documented where operators look: `deploy/deskbot.env.example`
(which says it has every setting, with its default) and the README's settings table."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), f"{name}: one environment name expected, got {alias!r}"
        names.append(alias)
    return names


def test_the_example_env_file_names_every_setting() -> None:
    example = (ROOT / "deploy" / "deskbot.env.example").read_text()
    # As a line of its own (`# NAME=default`) or, for secrets, in the text about giving them; a
    # secret may be named only as the file that holds it (`NAME_FILE`).
    named = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", example))
    assert len(_names()) > 40
    assert [n for n in _names() if n not in named and f"{n}_FILE" not in named] == []


def test_the_readme_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    # `NAME_FILE` variants are written once, as "(`_FILE`)" beside the setting they hold.
    missing = [n for n in _names() if not n.endswith("_FILE") and f"`{n}`" not in readme]
    assert missing == []
