"""Every way a secret can be given reaches the log scrubber."""

from __future__ import annotations

import io
import logging

import pytest

from bot.config import SettingsError, load_settings
from bot.logs import configure

ZULIP_KEY = "zuliprc-key-7f3a9c0e41b2"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("ZULIP_SITE", "ZULIP_EMAIL", "ZULIP_API_KEY", "ZULIP_API_KEY_FILE", "ZULIP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in ("MASTODON_API_BASE_URL", "MASTODON_ACCESS_TOKEN", "MASTODON_ACCESS_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DESKBOT_DATABASE_URL", "sqlite:///unused.db")
    return monkeypatch


def _logged_with(secrets: list[str], message: str) -> str:
    stream = io.StringIO()
    configure("console", "INFO", secrets, stream=stream)
    try:
        logging.getLogger("deskbot.test").warning(message)
    finally:
        configure("console", "WARNING")
    return stream.getvalue()


def test_the_api_key_of_a_zuliprc_is_scrubbed_from_logs(clean_env, tmp_path):
    rc = tmp_path / "zuliprc"
    rc.write_text(f"[api]\nemail=deskbot-bot@zulip.example\nkey={ZULIP_KEY}\nsite=https://zulip.example\n")
    clean_env.setenv("ZULIP_CONFIG", str(rc))
    settings = load_settings(env_file=None)
    line = _logged_with(settings.secrets, f"GET /api/v1/users/me with key {ZULIP_KEY} failed")
    assert ZULIP_KEY not in line
    assert "with key *** failed" in line


def test_an_explicit_key_and_a_zuliprc_key_are_both_scrubbed(clean_env, tmp_path):
    rc = tmp_path / "zuliprc"
    rc.write_text(f"[api]\nkey={ZULIP_KEY}\n")
    clean_env.setenv("ZULIP_CONFIG", str(rc))
    clean_env.setenv("ZULIP_API_KEY", "explicit-key-5d1e")
    settings = load_settings(env_file=None)
    line = _logged_with(settings.secrets, f"keys {ZULIP_KEY} and explicit-key-5d1e")
    assert line.rstrip().endswith("keys *** and ***")


def test_a_zuliprc_key_is_scrubbed_as_written(clean_env, tmp_path):
    rc = tmp_path / "zuliprc"
    rc.write_text("[api]\nkey=ab%cd%%ef\n")
    clean_env.setenv("ZULIP_CONFIG", str(rc))
    settings = load_settings(env_file=None)
    assert _logged_with(settings.secrets, "key ab%cd%%ef").rstrip().endswith("key ***")


def test_a_missing_zuliprc_stops_start_up_naming_the_setting(clean_env, tmp_path):
    clean_env.setenv("ZULIP_CONFIG", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"^ZULIP_CONFIG: no zuliprc file at .*missing$"):
        load_settings(env_file=None)


def test_an_unreadable_zuliprc_adds_no_secret_and_does_not_fail_here(clean_env, tmp_path):
    # The Zulip adapter refuses the file at start-up with its own line; settings stay loadable.
    (tmp_path / "broken").write_text("key without a section\n")
    clean_env.setenv("ZULIP_CONFIG", str(tmp_path / "broken"))
    assert load_settings(env_file=None).secrets == []
