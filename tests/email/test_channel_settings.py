"""The email channel's settings (SPEC §6), its wiring into the runtime, implicit TLS, and a
customer's email address as their email account (also for customers from before the channel)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from adapters.email import EmailChannel
from adapters.email.servers import parse_server_url
from bot.config import SettingsError, load_settings
from bot.runtime import Runtime, build_channels
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import make_engine, transaction, upgrade
from storage.models import Identity
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

from .channel_bot import FAST, EmailBot, deskbot_run_output, email_settings, from_bot, handled, wait_until

EMAIL_VARIABLES = (
    "EMAIL_ADDRESS",
    "EMAIL_IMAP_URL",
    "EMAIL_SMTP_URL",
    "EMAIL_USERNAME",
    "EMAIL_PASSWORD",
    "EMAIL_PASSWORD_FILE",
    "EMAIL_AUTHSERV_ID",
    "EMAIL_CA_FILE",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in EMAIL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMAIL_ADDRESS", "support@example.com")
    monkeypatch.setenv("EMAIL_IMAP_URL", "imaps://imap.example.com/Support")
    monkeypatch.setenv("EMAIL_SMTP_URL", "smtp://smtp.example.com:587")
    monkeypatch.setenv("EMAIL_PASSWORD", "s3cret-app-password")
    return monkeypatch


def test_the_channel_is_on_with_the_address_and_both_urls(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(None)
    (channel,) = [c for c in build_channels(settings) if c.name == "email"]
    assert isinstance(channel, EmailChannel)
    assert channel.settings.username == "support@example.com"  # the address by default
    assert channel.settings.imap.folder == "Support" and channel.settings.imap.port == 993
    assert channel.settings.smtp.security == "starttls" and channel.settings.smtp.port == 587
    assert channel.answers_per_hour == 5
    assert "s3cret-app-password" in settings.secrets  # scrubbed from every log line
    assert "s3cret" not in repr(channel) and "s3cret" not in repr(channel.settings)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("EMAIL_IMAP_URL", "https://imap.example.com", "EMAIL_IMAP_URL: "),
        ("EMAIL_IMAP_URL", "imaps://", "the host is missing"),
        ("EMAIL_IMAP_URL", "imaps://user:pw@imap.example.com", "EMAIL_USERNAME and EMAIL_PASSWORD"),
        ("EMAIL_SMTP_URL", "smtp://smtp.example.com:587/Sent", "EMAIL_SMTP_URL: "),
        ("EMAIL_SMTP_URL", "imaps://smtp.example.com", "smtps://HOST[:465]"),
        ("EMAIL_SMTP_URL", "smtp://smtp.example.com:notaport", "EMAIL_SMTP_URL: "),
        ("EMAIL_ADDRESS", "support", "EMAIL_ADDRESS: "),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(env: pytest.MonkeyPatch, name: str, value: str, said: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    assert said in str(raised.value) and "\n" not in str(raised.value)
    assert "pw@" not in str(raised.value)


def test_a_missing_piece_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("EMAIL_PASSWORD")
    with pytest.raises(SettingsError, match="^EMAIL_PASSWORD: the email channel needs"):
        load_settings(None)


def test_the_password_may_come_from_a_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "email_password"
    secret.write_text("from-a-file\n")
    env.delenv("EMAIL_PASSWORD")
    env.setenv("EMAIL_PASSWORD_FILE", str(secret))
    settings = load_settings(None)
    assert settings.email_password is not None and settings.email_password.get_secret_value() == "from-a-file"


def test_tls_is_optional_only_on_a_loopback_host() -> None:
    assert parse_server_url("imap://127.0.0.1:143", "imap").loopback
    assert parse_server_url("smtp://localhost:25", "smtp").loopback
    assert not parse_server_url("imap://mail.example.com", "imap").loopback


def test_deskbot_run_s_wiring_answers_a_mail_over_implicit_tls(
    mail: MailServers, env: pytest.MonkeyPatch, db_url: str, clock
) -> None:  # noqa: ANN001
    """The settings as an operator gives them (SSL_CERT_FILE for the test CA), the runtime as
    `deskbot run` builds it, IMAPS and SMTPS."""
    for name, value in mail.env("implicit").items():
        env.setenv(name, value)
    env.setenv("DESKBOT_DATABASE_URL", db_url)
    settings = load_settings(None)
    runtime = Runtime(settings, build_channels(settings), clock=clock, migrate=False)
    with transaction(runtime.engine) as session:
        ana, _code = customers.create_customer(session, "Ana's company", mail.customers[0].address, "en", clock())
        credit_service.grant_credits(session, ana, 2, clock().date(), "test", clock(), months=12)
    runtime.start()
    try:
        wait_until(lambda: runtime.channels["email"].connected, 10, "the IMAP session")  # past the first start
        sent = mail.customers[0].send("Quota", "open\nThe quota report is empty.")
        (answer,) = mail.customers[0].wait_for(from_bot, timeout=15)
        assert answer["In-Reply-To"] == sent["Message-ID"]
        assert all(m.tls for m in mail.smtp.accepted)
    finally:
        runtime.stop(drain_seconds=2)


def test_the_cap_setting_reaches_the_channel(mail: MailServers) -> None:
    channel = EmailChannel(email_settings(mail, answers_per_hour=2), tuning=FAST)
    assert channel.answers_per_hour == 2


def test_a_customer_from_before_the_email_channel_gets_their_address_as_an_email_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0008")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO customer (name, email, lang, created_at) VALUES ('Old Co', 'IT@Old.example', 'en', '2025-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO customer (name, email, lang, created_at) VALUES ('No Mail Co', NULL, 'en', '2025-01-01')"
            )
        )
    upgrade(url)
    with transaction(engine) as session:
        found = session.scalars(select(Identity).where(Identity.channel == "email")).all()
        assert [(i.address, i.customer_id) for i in found] == [("it@old.example", 1)]
    engine.dispose()


def test_an_address_of_another_customer_is_refused(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    bot = EmailBot(mail, engine, db_url, clock)
    bot.customer("First", "shared@example.com")
    with pytest.raises(customers.CustomerError, match="already linked to another customer"):
        bot.customer("Second", "Shared@Example.com")


def test_the_support_address_writing_to_itself_is_never_answered(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    bot = EmailBot(mail, engine, db_url, clock).start()
    try:
        mail.support.send("Loop?", "Hello me.", to=SUPPORT_ADDRESS)
        wait_until(lambda: handled(engine) == 1, 10, "the mail handled")
        threading.Event().wait(0.5)
        assert mail.smtp.accepted == []
    finally:
        bot.halt()


def test_deskbot_run_with_a_wrong_password_says_one_line_and_exits(mail: MailServers, tmp_path: Path) -> None:
    done = deskbot_run_output({**mail.env(), "EMAIL_PASSWORD": "not-the-password"}, tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "EMAIL_USERNAME and EMAIL_PASSWORD" in line]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr + done.stdout
    assert "([AUTHENTICATIONFAILED] Authentication failed.)" in errors[0]  # the server's words, not a repr


@pytest.fixture
def oauth_env(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A Microsoft 365 mailbox: an app's client credentials instead of a password."""
    env.delenv("EMAIL_PASSWORD")
    for name in OAUTH_VARIABLES:
        env.delenv(name, raising=False)
    env.setenv("EMAIL_OAUTH2_TOKEN_URL", "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token")
    env.setenv("EMAIL_OAUTH2_CLIENT_ID", "00000000-1111-2222-3333-444444444444")
    env.setenv("EMAIL_OAUTH2_CLIENT_SECRET", "app-s3cret-value")
    env.setenv("EMAIL_OAUTH2_SCOPE", "https://outlook.office365.com/.default")
    return env


OAUTH_VARIABLES = (
    "EMAIL_OAUTH2_TOKEN_URL",
    "EMAIL_OAUTH2_CLIENT_ID",
    "EMAIL_OAUTH2_CLIENT_SECRET",
    "EMAIL_OAUTH2_CLIENT_SECRET_FILE",
    "EMAIL_OAUTH2_SCOPE",
    "EMAIL_OAUTH2_REFRESH_TOKEN",
    "EMAIL_OAUTH2_REFRESH_TOKEN_FILE",
)


def test_oauth2_settings_log_in_instead_of_a_password(oauth_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(None)
    (channel,) = [c for c in build_channels(settings) if c.name == "email"]
    assert isinstance(channel, EmailChannel)
    oauth2 = channel.settings.oauth2
    assert oauth2 is not None and oauth2.client_id == "00000000-1111-2222-3333-444444444444"
    assert oauth2.client_secret == "app-s3cret-value" and oauth2.refresh_token is None
    assert oauth2.scope == "https://outlook.office365.com/.default"
    assert channel.settings.password == ""
    assert "app-s3cret-value" in settings.secrets  # scrubbed from every log line
    shown = repr(channel) + repr(channel.settings) + repr(oauth2) + repr(channel._login) + repr(channel._login.oauth2)
    assert "s3cret" not in shown
    # The secrets may come from files, in .env as in the environment.
    secret, refresh = tmp_path / "client_secret", tmp_path / "refresh_token"
    secret.write_text("from-a-file\n")
    refresh.write_text("1//refresh-from-a-file\n")
    oauth_env.delenv("EMAIL_OAUTH2_CLIENT_SECRET")
    oauth_env.setenv("EMAIL_OAUTH2_CLIENT_SECRET_FILE", str(secret))
    oauth_env.setenv("EMAIL_OAUTH2_REFRESH_TOKEN_FILE", str(refresh))
    settings = load_settings(None)
    assert settings.email_oauth2_client_secret is not None
    assert settings.email_oauth2_client_secret.get_secret_value() == "from-a-file"
    assert settings.email_oauth2_refresh_token is not None
    assert "1//refresh-from-a-file" in settings.secrets


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"EMAIL_PASSWORD": "pw"}, "EMAIL_PASSWORD and EMAIL_OAUTH2_*: set one way to log in"),
        ({"EMAIL_OAUTH2_TOKEN_URL": None}, "EMAIL_OAUTH2_TOKEN_URL: needed with the other EMAIL_OAUTH2_* settings"),
        ({"EMAIL_OAUTH2_CLIENT_ID": None}, "EMAIL_OAUTH2_CLIENT_ID: needed with EMAIL_OAUTH2_TOKEN_URL"),
        ({"EMAIL_OAUTH2_CLIENT_SECRET": None}, "EMAIL_OAUTH2_CLIENT_SECRET: needed with EMAIL_OAUTH2_TOKEN_URL"),
        ({"EMAIL_OAUTH2_TOKEN_URL": "http://login.example.com/token"}, "EMAIL_OAUTH2_TOKEN_URL: "),
        ({"EMAIL_OAUTH2_TOKEN_URL": "login.example.com/token"}, "EMAIL_OAUTH2_TOKEN_URL: "),
        ({"EMAIL_OAUTH2_TOKEN_URL": "https://app:pw@login.example.com/token"}, "EMAIL_OAUTH2_TOKEN_URL: "),
    ],
)
def test_a_bad_oauth2_setting_is_one_line_naming_it(
    oauth_env: pytest.MonkeyPatch, changes: dict[str, str | None], said: str
) -> None:
    for name, value in changes.items():
        if value is None:
            oauth_env.delenv(name)
        else:
            oauth_env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    assert str(raised.value).startswith(said) and "\n" not in str(raised.value)
    assert "s3cret" not in str(raised.value) and "pw@" not in str(raised.value)


def test_a_refresh_token_needs_no_client_secret(oauth_env: pytest.MonkeyPatch) -> None:
    oauth_env.delenv("EMAIL_OAUTH2_CLIENT_SECRET")
    oauth_env.setenv("EMAIL_OAUTH2_REFRESH_TOKEN", "1//refresh")
    settings = load_settings(None)
    (channel,) = [c for c in build_channels(settings) if c.name == "email"]
    assert isinstance(channel, EmailChannel) and channel.settings.oauth2 is not None
    assert channel.settings.oauth2.refresh_token == "1//refresh" and channel.settings.oauth2.client_secret is None
