"""DESKBOT_RESPONSE_TARGET per severity and DESKBOT_URGENT_NOTIFY (issue 13, item 1; SPEC §6):
what each accepts, and one clear line naming the setting for anything else."""

from __future__ import annotations

import pytest

from bot.config import Settings, SettingsError, load_settings, parse_response_targets


def test_response_target_per_severity_or_one_for_all() -> None:
    assert parse_response_targets("2") == {1: 2, 2: 2, 3: 2, 4: 2}
    assert parse_response_targets("1:1,2:2,3:2,4:3") == {1: 1, 2: 2, 3: 2, 4: 3}
    assert parse_response_targets(" 3, 1:1 ") == {1: 1, 2: 3, 3: 3, 4: 3}  # a plain number: the others
    assert parse_response_targets("1:1") == {1: 1, 2: 2, 3: 2, 4: 2}  # the others keep the default, 2
    settings = Settings(_env_file=None, DESKBOT_RESPONSE_TARGET="1:1,4:5")  # type: ignore[call-arg]
    assert settings.target_days(1) == 1 and settings.target_days(4) == 5 and settings.response_target == 2


@pytest.mark.parametrize("value", ["abc", "0", "31", "1:1,1:2", "5:1", "0:2", "2,3", "1:", ":2", "1:x", "1;1", "²"])
def test_a_bad_response_target_is_one_line_naming_the_setting(monkeypatch, value: str) -> None:  # noqa: ANN001
    monkeypatch.setenv("DESKBOT_RESPONSE_TARGET", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    message = str(raised.value)
    assert message.startswith("DESKBOT_RESPONSE_TARGET: ") and "\n" not in message
    assert "1:1,2:2,3:2,4:3" in message  # says what form it takes


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("DESKBOT_RESPONSE_TARGET", "abc", "DESKBOT_RESPONSE_TARGET: expected business days (1-30)"),
        ("DESKBOT_HTTP_ADDR", "nonsense", "DESKBOT_HTTP_ADDR: expected HOST:PORT, for example 127.0.0.1:8080"),
        ("DESKBOT_CURRENCY", "eur", "DESKBOT_CURRENCY: expected a three-letter currency code in capitals, such as EUR"),
        ("DESKBOT_LOG_FORMAT", "xml", "DESKBOT_LOG_FORMAT: Input should be 'console' or 'json'"),
        ("DESKBOT_LOG_LEVEL", "LOUD", "DESKBOT_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or"),
        # Links customers are sent, and money: a typo stops start-up rather than reach them.
        ("DESKBOT_DOCS_URL", "notaurl", "DESKBOT_DOCS_URL: expected a web address such as https://example.com/"),
        ("DESKBOT_PURCHASE_URL", "ftp://x.example/", "DESKBOT_PURCHASE_URL: expected a web address"),
        ("DESKBOT_FORUM_URL", "https:// forum", "DESKBOT_FORUM_URL: expected a web address"),
        ("DESKBOT_INCIDENT_PRICE", "0.005", "DESKBOT_INCIDENT_PRICE: expected an amount with at most two decimals"),
    ],
)
def test_a_bad_setting_says_what_it_takes_in_plain_words(monkeypatch, name: str, value: str, said: str) -> None:  # noqa: ANN001
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    message = str(raised.value)
    assert message.startswith(said) and "\n" not in message
    # Neither pydantic's prefix nor a regular expression reaches the operator.
    assert "Value error" not in message and "pattern" not in message


def test_urgent_notify_holds_zulip_mentions(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DESKBOT_URGENT_NOTIFY", "@*support-oncall*, @**Erin Engineer|12**")
    assert load_settings(None).urgent_notify == "@*support-oncall* @**Erin Engineer|12**"
    for value in ("support-oncall", "@**Erin** and Bob", "erin@example.com"):
        monkeypatch.setenv("DESKBOT_URGENT_NOTIFY", value)
        with pytest.raises(SettingsError, match=r"^DESKBOT_URGENT_NOTIFY: .*@\*\*Erin\*\*"):
            load_settings(None)
