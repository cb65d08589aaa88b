"""`deskbot chat --as stranger` plays an account linked to no customer (issue 13, item 10)."""

from __future__ import annotations

from tests.cli.conftest import Run


def test_chat_plays_a_stranger(cli: Run) -> None:
    result = cli("chat", "--as", "stranger", input="help\nlink ZZZZ-ZZZZ-ZZZZ\n")
    assert result.code == 0, result
    assert result.stdout.startswith('deskbot console: you are a stranger: the console account "stranger"')
    assert '/credits grant "Demo customer" 3' in result.stdout
    assert "deskbot → stranger:" in result.stdout and "That code is not valid" in result.stdout
    assert "Traceback" not in result.output


def test_chat_help_names_the_three_roles(cli: Run) -> None:
    result = cli("chat", "--help")
    assert result.code == 0 and "stranger" in result.stdout


def test_a_name_no_customer_can_have_is_answered_and_the_session_goes_on(cli: Run) -> None:
    # "2" would be an id, a 300-character name is too long: each ended the whole session (rc 1).
    lines = ["\\as customer 2", "\\as customer " + "x" * 300, "\\as engineer", "\\as customer 2", "/help", ""]
    result = cli("chat", input="\n".join(lines))
    assert result.code == 0, result
    assert "(A customer name cannot be only digits (those are ids). You are still the customer Demo customer.)" in (
        result.stdout
    )
    assert "(A customer name must be 1 to 200 characters. You are still the customer Demo customer.)" in result.stdout
    assert "You are still the engineer." in result.stdout
    assert "deskbot → engineer@console:" in result.stdout  # /help, answered to the engineer
    assert "Traceback" not in result.output
