"""Logging in with OAuth 2 access tokens (SASL XOAUTH2) instead of a password, as a Microsoft 365
mailbox needs: the token endpoint is the tests' authorization server over HTTP
(tests/mail/oauth.py), and the tokens are checked by the real Dovecot (its oauth2 passdb asks
that server) and by the tests' submission server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adapters.channel import PermanentChannelError, TransientChannelError
from adapters.email import EmailChannel
from adapters.email.oauth import OAuth2Settings, TokenSource
from adapters.email.servers import parse_server_url
from adapters.email.transport import Login, close_imap, close_smtp, open_imap, open_smtp
from bot.config import load_settings
from bot.runtime import build_channels
from tests.mail.dovecot import free_ports
from tests.mail.servers import OAUTH_CLIENT_ID, OAUTH_SCOPE, SUPPORT_ADDRESS, MailServers

from .channel_bot import EmailBot, deskbot_run_output, from_bot


def _tokens(mail: MailServers, **changes: object) -> TokenSource:
    settings = OAuth2Settings(
        token_url=mail.oauth.token_url,
        client_id=OAUTH_CLIENT_ID,
        client_secret=mail.oauth_client_secret,
        scope=OAUTH_SCOPE,
    )
    for name, value in changes.items():
        settings = OAuth2Settings(**{**settings.__dict__, name: value})
    return TokenSource(settings, timeout=5)


def _login(mail: MailServers, tokens: TokenSource) -> Login:
    return Login(SUPPORT_ADDRESS, "", str(mail.ca_file), 10.0, tokens)


def _grants(mail: MailServers) -> list[str]:
    return [grant for grant, _client in mail.oauth.requests]


def test_deskbot_run_s_settings_answer_a_mail_logging_in_with_one_token(
    mail: MailServers, engine, db_url, clock, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    for name in [n for n in os.environ if n.startswith("EMAIL_")]:
        monkeypatch.delenv(name)
    for name, value in mail.oauth_env().items():
        monkeypatch.setenv(name, value)
    assert "EMAIL_PASSWORD" not in os.environ
    (channel,) = [c for c in build_channels(load_settings(None)) if c.name == "email"]
    assert isinstance(channel, EmailChannel)
    bot = EmailBot(mail, engine, db_url, clock, channel=channel)
    bot.customer("Ana's company", mail.customers[0].address)
    bot.start()
    try:
        mail.customers[0].send("Scanner", "open\nThe scanner is broken.")
        (answer,) = mail.customers[0].wait_for(from_bot, timeout=20)
        assert "Incident #1 is open" in answer.get_content()
    finally:
        bot.halt()
    # One token served the IMAP sessions, the SMTP session and the Sent folder.
    assert _grants(mail) == ["client_credentials"]
    assert [m.login for m in mail.smtp.accepted] == [SUPPORT_ADDRESS]


def test_a_token_the_servers_refuse_is_replaced_once_and_the_login_goes_on(mail: MailServers) -> None:
    tokens = _tokens(mail)
    login = _login(mail, tokens)
    imap = parse_server_url(mail.imap_url, "imap")
    smtp = parse_server_url(mail.smtp_url, "smtp")
    close_imap(open_imap(imap, login))
    first = tokens.token()
    mail.oauth.revoke_all()  # revoked before its time: both servers refuse it now
    close_imap(open_imap(imap, login))
    second = tokens.token()
    assert second != first and _grants(mail) == ["client_credentials"] * 2
    mail.oauth.revoke_all()
    close_smtp(open_smtp(smtp, login))
    assert tokens.token() != second and _grants(mail) == ["client_credentials"] * 3


def test_a_token_is_asked_for_again_only_when_it_is_about_to_expire(mail: MailServers) -> None:
    tokens = _tokens(mail)
    mail.oauth.token_lifetime = 62  # used for 2 s (not in its last minute)
    login = _login(mail, tokens)
    imap = parse_server_url(mail.imap_url, "imap")
    close_imap(open_imap(imap, login))
    close_imap(open_imap(imap, login))
    assert len(mail.oauth.requests) == 1
    time.sleep(2.2)
    close_imap(open_imap(imap, login))
    assert len(mail.oauth.requests) == 2


def test_the_refresh_token_grant_uses_the_rotated_refresh_token(mail: MailServers) -> None:
    mail.oauth.rotate_refresh_tokens = True
    tokens = _tokens(mail, client_secret=None, refresh_token=mail.oauth_refresh_token)
    login = _login(mail, tokens)
    smtp = parse_server_url(mail.smtp_url, "smtp")
    close_smtp(open_smtp(smtp, login))
    mail.oauth.revoke_all()
    mail.oauth.revoke_refresh_token(mail.oauth_refresh_token)  # the first one no longer works
    close_smtp(open_smtp(smtp, login))  # with the refresh token the first answer handed back
    assert _grants(mail) == ["refresh_token"] * 2


def test_the_endpoint_refusing_the_app_is_permanent_and_its_silence_transient(mail: MailServers) -> None:
    imap = parse_server_url(mail.imap_url, "imap")
    wrong = _login(mail, _tokens(mail, client_secret="not-the-secret"))
    with pytest.raises(PermanentChannelError) as refused:
        open_imap(imap, wrong)
    said = str(refused.value)
    assert "refused deskbot (invalid_client" in said and "check EMAIL_OAUTH2_CLIENT_ID" in said
    assert "not-the-secret" not in said and "\n" not in said
    login = _login(mail, _tokens(mail))
    mail.oauth.fail_next(503, "busy")
    with pytest.raises(TransientChannelError, match="token endpoint .* answered HTTP 503"):
        open_imap(imap, login)
    close_imap(open_imap(imap, login))  # the next try gets a token
    port = free_ports(1)[0]
    gone = _login(mail, _tokens(mail, token_url=f"http://127.0.0.1:{port}/token"))
    with pytest.raises(TransientChannelError, match="cannot reach the OAuth 2 token endpoint") as unreachable:
        open_smtp(parse_server_url(mail.smtp_url, "smtp"), gone)
    assert str(unreachable.value).endswith(": connection refused")  # said as a mail server's would be


def test_deskbot_run_with_a_wrong_client_secret_says_one_line_and_exits(mail: MailServers, tmp_path: Path) -> None:
    done = deskbot_run_output({**mail.oauth_env(), "EMAIL_OAUTH2_CLIENT_SECRET": "not-the-client-secret"}, tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "refused deskbot" in line]
    assert len(errors) == 1, done.stderr
    assert "invalid_client" in errors[0] and "check EMAIL_OAUTH2_CLIENT_ID" in errors[0]
    assert "Traceback" not in done.stderr and "not-the-client-secret" not in done.stderr + done.stdout
