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
