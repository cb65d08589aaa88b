"""DESKBOT_ENGINEERS: its parsing, and who it names on Zulip (`adapters.zulip.directory`), without a network.

The same through the whole bot and the fake over HTTP: tests/zulip/test_organisation.py.
"""

from __future__ import annotations

import logging

import pytest

from adapters.zulip.directory import Engineers
from bot.config import EngineerEntries, SettingsError, load_settings, parse_engineers


def test_ids_emails_and_groups_are_told_apart() -> None:
    entries = parse_engineers(" 26, Erin@Example.com ,@support-engineers, @*on call*,, 7")
    assert entries == EngineerEntries(
        user_ids=frozenset({26, 7}),
        emails=frozenset({"erin@example.com"}),
        groups=frozenset({"support-engineers", "on call"}),
    )
    assert parse_engineers("") == EngineerEntries()


@pytest.mark.parametrize("bad", ["erin", "0", "@", "@**erin**", "²6", "12345678901234567890", "a@b"])
def test_a_malformed_entry_stops_start_up_with_one_line_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESKBOT_ENGINEERS", f"26, {bad}")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    message = str(info.value)
    assert message.startswith("DESKBOT_ENGINEERS: ") and "\n" not in message and repr(bad) in message


def test_a_user_id_is_an_engineer_and_works_under_the_address_its_messages_show() -> None:
    engineers = Engineers(user_ids=[26])
    assert engineers.name_of(26, "user26@zulip.example.com") == "user26@zulip.example.com"
    assert engineers.name_of(27, "erin@example.com") is None


def test_an_email_counts_only_once_resolved_to_a_user_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deskbot.adapters.zulip")
    engineers = Engineers(emails=["Erin@Example.com", "hidden@example.com", "gone@example.com"])
    assert engineers.name_of(26, "erin@example.com") is None  # not before start
    unresolved = engineers.resolve_emails({"erin@example.com": 26}.get)
    assert unresolved == ["hidden@example.com", "gone@example.com"]
    # The configured address is the name, whatever the message shows (a stand-in where hidden).
    assert engineers.name_of(26, "user26@zulip.example.com") == "erin@example.com"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        warnings[0]
        .getMessage()
        .startswith("DESKBOT_ENGINEERS: cannot resolve hidden@example.com, gone@example.com to a Zulip user id")
    )
    assert "Zulip user id or as an @group" in warnings[0].getMessage()


def group(gid: int, name: str, members: list[int], subgroups: list[int] = ()) -> dict:  # type: ignore[assignment]
    return {"id": gid, "name": name, "members": members, "direct_subgroup_ids": list(subgroups)}


def test_groups_through_subgroups_and_kept_current_by_events(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="deskbot.adapters.zulip")
    engineers = Engineers(groups=["Support-Engineers", "missing"])
    engineers.load_groups([group(1, "support-engineers", [10], [2]), group(2, "oncall", [11]), group(3, "x", [12])])
    assert [engineers.name_of(i, f"u{i}@x") is not None for i in (10, 11, 12)] == [True, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        "DESKBOT_ENGINEERS: Zulip has no user group named 'missing'; its members are not engineers"
    ]
    engineers.apply_event({"type": "user_group", "op": "add_members", "group_id": 2, "user_ids": [12]})
    assert engineers.name_of(12, "u12@x") == "u12@x"
    engineers.apply_event({"type": "user_group", "op": "remove_members", "group_id": 1, "user_ids": [10]})
    assert engineers.name_of(10, "u10@x") is None
    engineers.apply_event({"type": "user_group", "op": "remove_subgroups", "group_id": 1, "direct_subgroup_ids": [2]})
    assert engineers.name_of(11, "u11@x") is None
    engineers.apply_event({"type": "user_group", "op": "add_subgroups", "group_id": 1, "direct_subgroup_ids": [2]})
    assert engineers.name_of(11, "u11@x") == "u11@x"
    # A rename keeps the members (until a restart binds the configured name again), and says so.
    engineers.apply_event({"type": "user_group", "op": "update", "group_id": 1, "data": {"name": "helpdesk"}})
    assert engineers.name_of(11, "u11@x") == "u11@x"
    assert "is now named 'helpdesk'" in caplog.records[-1].getMessage()
    engineers.apply_event({"type": "user_group", "op": "remove", "group_id": 1})
    assert engineers.name_of(11, "u11@x") is None
    # The same missing group is not told again at the next registration.
    engineers.load_groups([group(2, "oncall", [11])])
    assert sum("no user group named 'missing'" in r.getMessage() for r in caplog.records) == 1


def test_a_cycle_of_subgroups_ends() -> None:
    engineers = Engineers(groups=["a"])
    engineers.load_groups([group(1, "a", [10], [2]), group(2, "b", [11], [1])])
    assert engineers.name_of(11, "u11@x") == "u11@x"
