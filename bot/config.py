"""Settings (SPEC §6): environment, a `.env` file, and `NAME_FILE` secrets.

A missing or malformed setting stops start-up with one line naming it
(`SettingsError`); nothing here ever prints a secret's value.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable
from configparser import ConfigParser
from configparser import Error as ConfigError
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, SettingsConfigDict

from adapters.email.oauth import check_token_url
from adapters.email.servers import parse_server_url
from bot.numbers import whole_number
from bot.policy.calendar import BusinessCalendar, ServiceHours
from bot.setting_checks import check_database_url, file_problem, site_problem

#: Settings that may be given as `NAME_FILE` (a path whose content is the value).
SECRET_NAMES = (
    "ZULIP_API_KEY",
    "MASTODON_ACCESS_TOKEN",
    "DESKBOT_DATABASE_URL",
    "EMAIL_PASSWORD",
    "EMAIL_OAUTH2_CLIENT_SECRET",
    "EMAIL_OAUTH2_REFRESH_TOKEN",
)


#: The longest DESKBOT_PACK_VALIDITY_MONTHS: ten years.
MAX_PACK_VALIDITY_MONTHS = 120


class SettingsError(Exception):
    """One clear line naming the bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True, env_ignore_empty=True)

    database_url: str = Field("sqlite:///deskbot.db", validation_alias="DESKBOT_DATABASE_URL")

    zulip_site: str | None = Field(None, validation_alias="ZULIP_SITE")
    zulip_email: str | None = Field(None, validation_alias="ZULIP_EMAIL")
    zulip_api_key: SecretStr | None = Field(None, validation_alias="ZULIP_API_KEY")
    zulip_config: Path | None = Field(None, validation_alias="ZULIP_CONFIG")
    zulip_stream: str = Field("support", validation_alias="DESKBOT_ZULIP_STREAM")
    engineers: str = Field("", validation_alias="DESKBOT_ENGINEERS")

    mastodon_api_base_url: str | None = Field(None, validation_alias="MASTODON_API_BASE_URL")
    mastodon_access_token: SecretStr | None = Field(None, validation_alias="MASTODON_ACCESS_TOKEN")

    #: The support address; the email channel is on when it and both server URLs are set.
    email_address: str | None = Field(None, validation_alias="EMAIL_ADDRESS")
    email_imap_url: str | None = Field(None, validation_alias="EMAIL_IMAP_URL")
    email_smtp_url: str | None = Field(None, validation_alias="EMAIL_SMTP_URL")
    #: The login for both servers; the address when unset.
    email_username: str | None = Field(None, validation_alias="EMAIL_USERNAME")
    email_password: SecretStr | None = Field(None, validation_alias="EMAIL_PASSWORD")
    #: A mailbox that takes no password (Microsoft 365): OAuth 2 access tokens from this endpoint
    #: log in instead (XOAUTH2), for the app `EMAIL_OAUTH2_CLIENT_ID` (see adapters/email/oauth.py).
    email_oauth2_token_url: str | None = Field(None, validation_alias="EMAIL_OAUTH2_TOKEN_URL")
    email_oauth2_client_id: str | None = Field(None, validation_alias="EMAIL_OAUTH2_CLIENT_ID")
    email_oauth2_client_secret: SecretStr | None = Field(None, validation_alias="EMAIL_OAUTH2_CLIENT_SECRET")
    email_oauth2_scope: str | None = Field(None, validation_alias="EMAIL_OAUTH2_SCOPE")
    #: Set: the refresh-token grant (a mailbox whose owner consented once); unset: client credentials.
    email_oauth2_refresh_token: SecretStr | None = Field(None, validation_alias="EMAIL_OAUTH2_REFRESH_TOKEN")
    #: The receiving server's `Authentication-Results` id whose DMARC verdict is trusted (unset: none).
    email_authserv_id: str | None = Field(None, validation_alias="EMAIL_AUTHSERV_ID")
    #: The display name on the bot's mail (`From: Support <support@example.com>`).
    email_name: str = Field("Support", min_length=1, max_length=100, validation_alias="DESKBOT_EMAIL_NAME")
    #: The most automatic answers one address gets by email an hour (loops between robots end there).
    email_answers_per_hour: int = Field(5, ge=1, le=1000, validation_alias="EMAIL_ANSWERS_PER_HOUR")
    #: A file of CA certificates to trust for the mail servers instead of the system's (a private CA).
    email_ca_file: Path | None = Field(None, validation_alias="EMAIL_CA_FILE")
    #: Other addresses that reach the support mailbox (comma-separated): never learned as people a
    #: customer copies, never copied, and mail from them is the desk's own (never answered).
    email_aliases: str = Field("", validation_alias="EMAIL_ALIASES")

    timezone: str = Field("Europe/Lisbon", validation_alias="DESKBOT_TIMEZONE")
    service_hours: str = Field("mon-fri 08:00-18:00", validation_alias="DESKBOT_SERVICE_HOURS")
    holidays: str = Field("PT", validation_alias="DESKBOT_HOLIDAYS")
    #: Business days to a response: "2" for every severity, or per severity "1:1,2:2,3:2,4:3"
    #: (`response_targets`; a severity not named takes a plain number given with them, else 2).
    response_target_setting: str = Field("2", validation_alias="DESKBOT_RESPONSE_TARGET")
    #: Who a case topic mentions when the case becomes severity 1: Zulip mentions written by the
    #: operator (`@**Erin**`, `@*support-oncall*`), posted as they are.
    urgent_notify: str = Field("", validation_alias="DESKBOT_URGENT_NOTIFY")
    incident_price: Decimal = Field(Decimal("99.00"), ge=0, validation_alias="DESKBOT_INCIDENT_PRICE")
    currency: str = Field("EUR", validation_alias="DESKBOT_CURRENCY")
    #: Whole calendar months a credit pack is valid from its purchase date, its last day included
    #: (bot.policy.entitlements `pack_expires_on`); 12, the vendor's year: 29 Feb → 28 Feb. Fixed on
    #: each pack when it is granted (`CreditPack.valid_until`): a change applies to packs granted later.
    pack_validity_months: int = Field(12, validation_alias="DESKBOT_PACK_VALIDITY_MONTHS")
    #: Days before a pack's last valid day on which its customer is reminded, once, that its unused
    #: credits lapse (bot.reminders); 0 sends no reminders.
    credit_reminder_days: int = Field(30, ge=0, le=365, validation_alias="DESKBOT_CREDIT_REMINDER_DAYS")

    #: Minutes after a customer's message on an open case within which their next one is added
    #: without an answer of its own (bot.policy.acknowledgements); 0 answers every message.
    ack_quiet_minutes: int = Field(10, ge=0, le=1440, validation_alias="DESKBOT_ACK_QUIET_MINUTES")

    #: The largest file a customer's message keeps, in MB (MiB); the platforms' own limits apply too.
    max_attachment_mb: int = Field(25, gt=0, le=1024, validation_alias="DESKBOT_MAX_ATTACHMENT_MB")

    http_addr: str = Field("127.0.0.1:8080", validation_alias="DESKBOT_HTTP_ADDR")
    #: Seconds `deskbot run` waits for each channel's platform to answer at start before giving up.
    startup_timeout: float = Field(30.0, gt=0, le=3600, validation_alias="DESKBOT_STARTUP_TIMEOUT")
    log_format: Literal["console", "json"] = Field("console", validation_alias="DESKBOT_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias="DESKBOT_LOG_LEVEL"
    )

    # `NAME_FILE` of each secret, read from the environment or `.env` like any setting (the
    # environment first); `_read_secret_files` replaces NAME by the file's content.
    database_url_file: Path | None = Field(None, validation_alias="DESKBOT_DATABASE_URL_FILE", exclude=True)
    zulip_api_key_file: Path | None = Field(None, validation_alias="ZULIP_API_KEY_FILE", exclude=True)
    mastodon_access_token_file: Path | None = Field(None, validation_alias="MASTODON_ACCESS_TOKEN_FILE", exclude=True)
    email_password_file: Path | None = Field(None, validation_alias="EMAIL_PASSWORD_FILE", exclude=True)
    email_oauth2_client_secret_file: Path | None = Field(
        None, validation_alias="EMAIL_OAUTH2_CLIENT_SECRET_FILE", exclude=True
    )
    email_oauth2_refresh_token_file: Path | None = Field(
        None, validation_alias="EMAIL_OAUTH2_REFRESH_TOKEN_FILE", exclude=True
    )

    docs_url: str = Field("https://rockstor.com/docs/", validation_alias="DESKBOT_DOCS_URL")
    forum_url: str = Field("https://forum.rockstor.com/", validation_alias="DESKBOT_FORUM_URL")
    purchase_url: str = Field("https://rockstor.com/commercial_support.html", validation_alias="DESKBOT_PURCHASE_URL")

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, values: Any) -> Any:
        return _read_secret_files(values) if isinstance(values, dict) else values

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        # `debug`, `Info`, `JSON`: what the value means does not depend on its case.
        if not isinstance(value, str):
            return value
        return value.strip().lower() if info.field_name == "log_format" else value.strip().upper()

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"expected a three-letter currency code in capitals, such as EUR; got {value[:20]!r}")
        return value

    @field_validator("pack_validity_months", mode="before")
    @classmethod
    def _pack_validity_months(cls, value: Any) -> Any:
        number = whole_number(value.strip()) if isinstance(value, str) else value
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_PACK_VALIDITY_MONTHS:
            raise ValueError(
                f"expected whole months from 1 to {MAX_PACK_VALIDITY_MONTHS} (12: a year), got {str(value)[:20]!r}"
            )
        return number

    @field_validator("http_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, for example 127.0.0.1:8080")
        return value

    @field_validator("response_target_setting")
    @classmethod
    def _response_target(cls, value: str) -> str:
        parse_response_targets(value)
        return value

    @field_validator("urgent_notify")
    @classmethod
    def _urgent_notify(cls, value: str) -> str:
        return " ".join(parse_mentions(value))

    @field_validator("engineers")
    @classmethod
    def _engineers(cls, value: str) -> str:
        parse_engineers(value)
        return value

    @field_validator("email_imap_url", "email_smtp_url")
    @classmethod
    def _mail_server_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            parse_server_url(value, "imap" if info.field_name == "email_imap_url" else "smtp")
        return value

    @field_validator("email_oauth2_token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return check_token_url(value) if value is not None else None

    @field_validator("email_address")
    @classmethod
    def _email_address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_ADDRESS.fullmatch(value.strip()):
            raise ValueError(f"expected an email address such as support@example.com, got {value!r}")
        return value.strip() if value is not None else None

    @field_validator("email_aliases")
    @classmethod
    def _email_aliases(cls, value: str) -> str:
        for alias in _split_aliases(value):
            if not _EMAIL_ADDRESS.fullmatch(alias):
                raise ValueError(f"expected email addresses separated by commas, got {alias!r}")
        return value

    @field_validator("docs_url", "forum_url", "purchase_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        # Customers are sent these links: a typo must stop start-up, not reach them as a broken link.
        # (ZULIP_SITE and MASTODON_API_BASE_URL may name a bare host: both clients add https://.)
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value.strip():
            raise ValueError(f"expected a web address such as https://example.com/, got {value[:80]!r}")
        return value.strip()

    @field_validator("incident_price")
    @classmethod
    def _price(cls, value: Decimal) -> Decimal:
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError(f"expected an amount with at most two decimals, such as 99.00; got {value}")
        return value

    @field_validator("zulip_config")
    @classmethod
    def _zuliprc(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no zuliprc file at {str(value)[:200]}")
        return value

    @field_validator("zulip_site", "mastodon_api_base_url")
    @classmethod
    def _platform_site(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = site_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @field_validator("email_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            problem = file_problem(str(value), certificates=True)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        check_database_url(value)
        return value

    @property
    def max_attachment_bytes(self) -> int:
        return self.max_attachment_mb * 1024 * 1024

    @cached_property
    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar.from_settings(self.timezone, self.service_hours, self.holidays)

    @cached_property
    def response_targets(self) -> dict[int, int]:
        """Business days to a response, per severity (1 … 4)."""
        return parse_response_targets(self.response_target_setting)

    @property
    def response_target(self) -> int:
        """Business days to a response for the default severity (3)."""
        return self.response_targets[DEFAULT_SEVERITY]

    def target_days(self, severity: int) -> int:
        return self.response_targets.get(severity, self.response_target)

    def today(self, now: datetime) -> date:
        """The service time zone's date at `now` (pack validity is counted in it)."""
        return now.astimezone(self.calendar.tz).date()

    @cached_property
    def engineer_entries(self) -> EngineerEntries:
        """DESKBOT_ENGINEERS: Zulip user ids, emails and `@group` names (`parse_engineers`)."""
        return parse_engineers(self.engineers)

    @property
    def engineer_emails(self) -> frozenset[str]:
        """The emails DESKBOT_ENGINEERS names (lower case)."""
        return self.engineer_entries.emails

    @property
    def zulip_configured(self) -> bool:
        return bool(self.zulip_config or self.zulip_site or self.zulip_email or self.zulip_api_key)

    @property
    def mastodon_configured(self) -> bool:
        return bool(self.mastodon_api_base_url or self.mastodon_access_token)

    @property
    def email_configured(self) -> bool:
        return bool(self.email_address or self.email_imap_url or self.email_smtp_url)

    @property
    def email_alias_list(self) -> tuple[str, ...]:
        """EMAIL_ALIASES, in lower case."""
        return _split_aliases(self.email_aliases)

    @property
    def support_addresses(self) -> frozenset[str]:
        """The support address and its aliases, in lower case: the desk itself, never anyone copied."""
        own = (self.email_address or "").strip().lower()
        return frozenset([*([own] if own else []), *self.email_alias_list])

    @property
    def secrets(self) -> list[str]:
        """Secret values, so that log output can be scrubbed of them."""
        values = [
            self.zulip_api_key,
            self.mastodon_access_token,
            self.email_password,
            self.email_oauth2_client_secret,
            self.email_oauth2_refresh_token,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        zuliprc_key = _zuliprc_api(self.zulip_config).get("key") if self.zulip_config else None
        if zuliprc_key:
            found.append(zuliprc_key)
        # USER:PASSWORD before the host's `@` (a user name may hold an `@`: `user@server:…`).
        login = self.database_url.partition("://")[2].rpartition("@")[0]
        password = login.partition(":")[2] if self.database_url.startswith("postgresql") else ""
        if password:
            # As written, and as a driver may show it: percent-decoded (`Kx9%40vR2` → `Kx9@vR2`).
            found.extend(dict.fromkeys([password, unquote(password)]))
        return found


SEVERITIES = (1, 2, 3, 4)
DEFAULT_SEVERITY = 3
#: Business days a response target may be.
TARGET_DAYS = range(1, 31)
_TARGET_FORM = "expected business days (1-30), for every severity (2) or per severity (1:1,2:2,3:2,4:3)"


def parse_response_targets(text: str) -> dict[int, int]:
    """`DESKBOT_RESPONSE_TARGET`: "2" (every severity), "1:1,2:2,3:2,4:3", or both ("2,1:1").

    A severity not named takes the plain number given with them, else 2. ValueError says what is wrong.
    """

    def days(value: str) -> int:
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or int(value) not in TARGET_DAYS:
            raise ValueError(f"{_TARGET_FORM}; got {text!r}")
        return int(value)

    default, targets = None, {}
    for item in text.split(","):
        severity, sep, value = item.partition(":")
        if not sep:
            if default is not None:
                raise ValueError(f"{_TARGET_FORM}; got {text!r} (two plain numbers)")
            default = days(item)
            continue
        severity = severity.strip()
        if severity not in {str(s) for s in SEVERITIES}:
            raise ValueError(f"{_TARGET_FORM}; got {text!r} (severities are 1-4)")
        if int(severity) in targets:
            raise ValueError(f"{_TARGET_FORM}; got {text!r} (severity {severity} named twice)")
        targets[int(severity)] = days(value)
    return {s: targets.get(s, default if default is not None else 2) for s in SEVERITIES}


#: A Zulip mention of a user (`@**Name**`, `@**Name|12**`) or of a user group (`@*group*`).
_MENTION = re.compile(r"@_?\*\*[^*\n]+\*\*|@_?\*[^*\n]+\*")


def parse_mentions(text: str) -> list[str]:
    """`DESKBOT_URGENT_NOTIFY`: Zulip mentions, separated by spaces or commas. ValueError if anything else."""
    found = []
    rest = text.strip()
    while rest:
        match = _MENTION.match(rest)
        if match is None:
            raise ValueError(
                f"expected Zulip mentions such as @**Erin** or @*support-oncall*, separated by spaces; got {rest!r}"
            )
        found.append(match.group())
        rest = rest[match.end() :].lstrip(" ,")
    return found


@dataclass(frozen=True)
class EngineerEntries:
    """DESKBOT_ENGINEERS sorted by kind: who they are is the Zulip channel's to resolve (by user id)."""

    user_ids: frozenset[int] = frozenset()
    emails: frozenset[str] = frozenset()
    #: User group names, without the `@` (and without the `*…*` of a group mention).
    groups: frozenset[str] = frozenset()


#: A Zulip user id in DESKBOT_ENGINEERS: ASCII digits, not 0.
_USER_ID = re.compile(r"[1-9][0-9]{0,17}")
_EMAIL_ADDRESS = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


def _split_aliases(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip().lower() for a in value.split(",") if a.strip()))


def parse_engineers(text: str) -> EngineerEntries:
    """`DESKBOT_ENGINEERS`: comma-separated Zulip user ids (`12`), emails (`erin@example.com`) and user
    groups (`@support-engineers`, or as mentioned, `@*support engineers*`). ValueError names a bad entry."""
    ids, emails, groups = set(), set(), set()
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith("@"):
            name = entry[1:].strip()
            if name.startswith("*") and name.endswith("*") and len(name) > 2:
                name = name[1:-1].strip()
            if not name or "*" in name:
                raise ValueError(f"expected a user group as @name, got {entry!r}")
            groups.add(name)
        elif entry.isascii() and entry.isdigit():
            if not _USER_ID.fullmatch(entry):
                raise ValueError(f"expected a Zulip user id (digits), got {entry!r}")
            ids.add(int(entry))
        elif _EMAIL_ADDRESS.fullmatch(entry):
            emails.add(entry.lower())
        else:
            raise ValueError(f"expected Zulip user ids, emails or @group names, separated by commas; got {entry!r}")
    return EngineerEntries(frozenset(ids), frozenset(emails), frozenset(groups))


def _zuliprc_api(path: Path) -> dict[str, str]:
    """The [api] section of a zuliprc, read as the Zulip channel reads it: as written (a `%` is a
    `%`; the `zulip` client's interpolation would refuse a lone one, and Zulip's keys have none).

    A file that cannot be read, or is malformed, yields an empty section here: the Zulip channel
    refuses it at start-up with one line of its own (adapters/zulip/transport.py
    `load_credentials`), and until then there is no key that could leak.
    """
    parser = ConfigParser(interpolation=None)
    try:
        with path.expanduser().open(encoding="utf-8") as fh:
            parser.read_file(fh)
        return dict(parser["api"]) if parser.has_section("api") else {}
    except (OSError, UnicodeDecodeError, ConfigError):
        return {}


def _read_secret_files(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with each secret whose `NAME_FILE` is set replaced by that file's content.

    `values` are the settings as gathered from every source (the environment over `.env`), so a
    `NAME_FILE` in `.env` counts as one in the environment does; `NAME_FILE` wins over `NAME`.
    An unreadable file is a SettingsError (raised through pydantic, which wraps only ValueError).
    """
    values = dict(values)
    for name in SECRET_NAMES:
        path = values.get(f"{name}_FILE")
        if not path:
            continue
        try:
            values[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
        # Every command needs the database: an empty file would be refused as a URL of the wrong
        # form, without a word about the file. (An empty channel secret: `_check_empty_secret_files`.)
        if name == "DESKBOT_DATABASE_URL" and not values[name]:
            raise SettingsError(f"{name}_FILE: the file {path} is empty")
    return values


#: The start of a `.env` line that names a setting (`NAME=`, `export NAME=`).
_ENV_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")
#: python-dotenv (which pydantic-settings reads `.env` with) says so of a line it cannot read, and
#: goes on without it: the setting on that line quietly takes its default.
_DOTENV_LOG, _DOTENV_SKIPPED = "dotenv.main", "python-dotenv could not parse statement starting at line %s"


class _UnreadableEnvLines(logging.Filter):
    """Takes python-dotenv's warning of a `.env` line it skipped, to be told as a SettingsError
    (`check`) instead of a log line that nobody reads before the bot runs on the wrong settings."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _DOTENV_SKIPPED and record.args:
            self.lines.append(int(record.args[0]))  # type: ignore[index, arg-type]
            return False
        return True

    def check(self, env_file: str | None) -> None:
        """SettingsError naming the first skipped line of `env_file`: its number and the setting's
        name where it can be told, never its text, which may hold a secret."""
        if not self.lines or env_file is None:
            return
        try:
            lines = Path(env_file).read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        # python-dotenv counts from where it started reading: blank lines before the statement.
        number = self.lines[0]
        while number <= len(lines) and not lines[number - 1].strip():
            number += 1
        name = _ENV_NAME.match(lines[number - 1]) if number <= len(lines) else None
        raise SettingsError(
            f"{env_file}, line {number}{f' ({name.group(1)})' if name else ''}:"
            " cannot be read as NAME=value (is a quote left open?)"
        )


def _check_env_file(env_file: str | None) -> None:
    """SettingsError when `env_file` is there but cannot be read as settings: pydantic-settings would
    pass over a directory or a dangling symbolic link in silence, and stop at bytes that are not
    UTF-8 with a UnicodeDecodeError that names neither the file nor the line."""
    if env_file is None:
        return
    path = Path(env_file).expanduser()
    if path.is_symlink() and not path.exists():
        raise SettingsError(f"{env_file}: a symbolic link to {os.readlink(path)[:200]}, which does not exist")
    if not path.exists() or path.is_fifo():  # no file: no settings from it; a pipe is read once, by the settings
        return
    if path.is_dir():
        raise SettingsError(f"{env_file}: a directory, not a file of NAME=value lines")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{env_file}: cannot read it: {exc.strerror}") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        name = _ENV_NAME.match(data.split(b"\n")[number - 1].decode("utf-8", "replace"))
        raise SettingsError(
            f"{env_file}, line {number}{f' ({name.group(1)})' if name else ''}: not UTF-8 text (save the file as UTF-8)"
        ) from None


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read and check every setting; raise SettingsError with one line naming the first bad one.

    A name in the environment that looks like a setting but is none is warned of (`deskbot.settings`
    logger), not refused: the environment carries other programs' variables too."""
    _check_env_file(env_file)
    unreadable = _UnreadableEnvLines()
    dotenv_log = logging.getLogger(_DOTENV_LOG)
    dotenv_log.addFilter(unreadable)
    try:
        in_file = _env_file_values(env_file)
        unreadable.check(env_file)  # a name on a line python-dotenv skipped is not in `in_file`
        # Before the values are checked: a misspelt name is often why another setting is missing.
        for line in _unknown_names(os.environ, "the environment"):
            settings_log.warning("%s", line)
        # `.env` is deskbot's own: a name in it that is no setting is a slip, and the setting meant
        # would take its default without a word (a misspelt DESKBOT_DATABASE_URL: a new ./deskbot.db).
        unknown = _unknown_names(in_file, str(env_file))
        if unknown:
            raise SettingsError(unknown[0])
        _refuse_empty_file_names(in_file, env_file)
        settings = Settings(_env_file=env_file)
    except ValidationError as exc:
        unreadable.check(env_file)  # a setting lost on a skipped line may be why another is wrong
        error = exc.errors()[0]
        name = error["loc"][0] if error["loc"] else "settings"
        # A validator's own words, without pydantic's "Value error, " before them.
        said = str(error["ctx"]["error"]) if error["type"] == "value_error" and "ctx" in error else error["msg"]
        raise SettingsError(f"{name}: {said}") from None
    finally:
        dotenv_log.removeFilter(unreadable)
    unreadable.check(env_file)
    _check_calendar(settings)
    _check_empty_secret_files(settings)
    if settings.mastodon_configured and not (settings.mastodon_api_base_url and settings.mastodon_access_token):
        raise SettingsError("MASTODON_API_BASE_URL and MASTODON_ACCESS_TOKEN must be set together")
    if (
        settings.zulip_configured
        and not settings.zulip_config
        and not (settings.zulip_site and settings.zulip_email and settings.zulip_api_key)
    ):
        raise SettingsError("ZULIP_SITE, ZULIP_EMAIL and ZULIP_API_KEY must be set together (or ZULIP_CONFIG)")
    if settings.zulip_configured:
        _check_zulip_files(settings, _check_zuliprc(settings) if settings.zulip_config else {})
    if settings.email_configured:
        _check_oauth2(settings)
        missing = [
            name
            for name, value in (
                ("EMAIL_ADDRESS", settings.email_address),
                ("EMAIL_IMAP_URL", settings.email_imap_url),
                ("EMAIL_SMTP_URL", settings.email_smtp_url),
                ("EMAIL_PASSWORD", settings.email_password or settings.email_oauth2_token_url),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                f"{', '.join(missing)}: the email channel needs EMAIL_ADDRESS, EMAIL_IMAP_URL, EMAIL_SMTP_URL and "
                "EMAIL_PASSWORD (or EMAIL_OAUTH2_TOKEN_URL for a mailbox that takes no password)"
            )
    _check_ca_environment(settings)
    return settings


def _check_zuliprc(settings: Settings) -> dict[str, str]:
    """The [api] section of ZULIP_CONFIG, with its site checked as ZULIP_SITE is, unless
    ZULIP_SITE overrides it."""
    assert settings.zulip_config is not None
    section = _zuliprc_api(settings.zulip_config)
    problem = site_problem(section["site"]) if section.get("site") and not settings.zulip_site else None
    if problem:
        raise SettingsError(f"ZULIP_CONFIG: the site in {str(settings.zulip_config)[:200]}: {problem}")
    return section


#: The files the `zulip` client reads (its environment variable wins over the zuliprc's option):
#: the CA bundle it trusts, and a client certificate with its key.
_ZULIP_FILES = (
    ("ZULIP_CERT_BUNDLE", "cert_bundle", True),
    ("ZULIP_CERT", "client_cert", False),
    ("ZULIP_CERT_KEY", "client_cert_key", False),
)


def _check_zulip_files(settings: Settings, zuliprc: dict[str, str]) -> None:
    for name, option, certificates in _ZULIP_FILES:
        if os.environ.get(name):
            problem, where = file_problem(os.environ[name], certificates=certificates), name
        elif zuliprc.get(option):
            where = f"ZULIP_CONFIG: {option} in {str(settings.zulip_config)[:200]}"
            problem = file_problem(zuliprc[option], certificates=certificates)
        else:
            continue
        if problem:
            raise SettingsError(f"{where}: {problem}")


# -- names ---------------------------------------------------------------------------

#: The field of Settings each name is read into, for every name (`DESKBOT_TIMEZONE`, `ZULIP_API_KEY_FILE` …).
_FIELDS = {str(field.validation_alias): name for name, field in Settings.model_fields.items()}
SETTING_NAMES = frozenset(_FIELDS)
#: Their prefixes (`DESKBOT_`, `EMAIL_` …): a name with one of them that is no setting is a slip.
_PREFIXES = tuple(sorted({name.split("_", 1)[0] + "_" for name in SETTING_NAMES}))
#: Names with those prefixes that are read from the environment alone and are no settings: the
#: `zulip` client's files (`_ZULIP_FILES`) and its ZULIP_ALLOW_INSECURE, the image's revision
#: (bot.metrics), the switches of deskbot's tests and CI (tests/conftest.py, .ci/run, the
#: drills), which every process the tests start inherits, and the deployment's knobs.
ENVIRONMENT_ONLY = frozenset(
    {
        *(name for name, _option, _certificates in _ZULIP_FILES),
        "ZULIP_ALLOW_INSECURE",
        "DESKBOT_REVISION",
        "DESKBOT_NO_SKIPS",
        "DESKBOT_IMAGE_TEST",
        "DESKBOT_SKIP_IMAGE_TEST",
        "DESKBOT_DRILL_OUTAGE_SECONDS",
        "DESKBOT_ZULIP_REFERENCE",
        # deploy/compose.yaml's and the image scripts' knobs, read by compose and the shell on the
        # host, never by deskbot; an operator exports them beside deskbot's own.
        "DESKBOT_IMAGE",
        "DESKBOT_BASE_IMAGE",
        "DESKBOT_POSTGRES_IMAGE",
        "DESKBOT_HTTP_PORT",
        "DESKBOT_DEBIAN_MIRROR",
        "DESKBOT_REBUILD_BASE",
        "DESKBOT_IMAGE_TEST_CHANNELS",
        "DESKBOT_SRC",
    }
)
#: … and the test suite's settings of its own (DESKBOT_TEST_PG_URL, DESKBOT_TEST_BACKENDS).
_TEST_PREFIX = "DESKBOT_TEST_"

settings_log = logging.getLogger("deskbot.settings")


def _environment_only(name: str) -> bool:
    return name in ENVIRONMENT_ONLY or name.startswith(_TEST_PREFIX)


def _env_file_values(env_file: str | None) -> dict[str, str | None]:
    """Every name in `env_file` with its value as the settings read it, empty ones too (a line
    `NAME` without `=` gives None). A pipe is left to the settings, which can read it once only."""
    if env_file is None or not Path(env_file).expanduser().is_file():
        return {}
    source = DotEnvSettingsSource(Settings, env_file=env_file, env_ignore_empty=False)
    return dict(source.env_vars)


def _unknown_names(names: Iterable[str], where: str) -> list[str]:
    """A line for each of `names` that has a setting's prefix but is no name deskbot reads, with
    the setting it looks most like (names are case-sensitive: `deskbot_timezone` is a slip too)."""
    lines = []
    for name in sorted(names):
        if not name.upper().startswith(_PREFIXES) or name in SETTING_NAMES or _environment_only(name):
            continue
        # deskbot's own settings about a platform start with DESKBOT_ (DESKBOT_ZULIP_STREAM); else
        # the closest name, if it is close (the shared prefix alone makes any two look alike).
        close = [f"DESKBOT_{name.upper()}"] if f"DESKBOT_{name.upper()}" in SETTING_NAMES else []
        close = close or difflib.get_close_matches(name.upper(), SETTING_NAMES, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else " (README.md, Configuration, lists every setting)"
        lines.append(f"unknown setting {name} in {where}{hint}")
    return lines


def _refuse_empty_file_names(in_file: dict[str, str | None], env_file: str | None) -> None:
    """SettingsError for a `NAME_FILE` that is set but empty wherever it is set: empty values are
    read as unset, so the secret would quietly come from NAME or its default instead
    (DESKBOT_DATABASE_URL: ./deskbot.db). One that another source gives a path is that path."""
    sources = {"the environment": os.environ, str(env_file): in_file}
    for name in (f"{secret}_FILE" for secret in SECRET_NAMES):
        found = {where: source[name] for where, source in sources.items() if name in source}
        if found and not any(found.values()):
            raise SettingsError(f"{name} is set but empty (in {next(iter(found))}): give the file's path, or remove it")


def _check_empty_secret_files(settings: Settings) -> None:
    """SettingsError naming a channel secret's `NAME_FILE` whose file is empty while its channel is
    on: else the error would be that the secret is missing, without a word about the file. With the
    channel off, an empty file is how deploy/compose.yaml leaves it off."""
    channel_on = {
        "ZULIP": settings.zulip_configured,
        "MASTODON": settings.mastodon_configured,
        "EMAIL": settings.email_configured,
    }
    for secret in SECRET_NAMES:
        path, value = getattr(settings, _FIELDS[f"{secret}_FILE"]), getattr(settings, _FIELDS[secret])
        if path and channel_on.get(secret.split("_", 1)[0]) and not (value and value.get_secret_value()):
            raise SettingsError(f"{secret}_FILE: the file {path} is empty")


def _check_ca_environment(settings: Settings) -> None:
    """The CA certificates the environment names for the platforms' clients, checked now rather than
    at the first connection: REQUESTS_CA_BUNDLE (else CURL_CA_BUNDLE) for the `zulip` and Mastodon.py
    clients (requests: a file or a folder), SSL_CERT_FILE for Python's `ssl` and httpx."""
    names = []
    if settings.zulip_configured or settings.mastodon_configured:
        names.append("REQUESTS_CA_BUNDLE" if os.environ.get("REQUESTS_CA_BUNDLE") else "CURL_CA_BUNDLE")
    if settings.zulip_configured or settings.mastodon_configured or settings.email_configured:
        names.append("SSL_CERT_FILE")
    for name in names:
        path = os.environ.get(name)
        problem = file_problem(path, certificates=True, folder_too=name != "SSL_CERT_FILE") if path else None
        if problem:
            raise SettingsError(f"{name}: {problem}")


class _LogOutput(BaseSettings):
    """DESKBOT_LOG_FORMAT and DESKBOT_LOG_LEVEL alone, read from where every setting is read."""

    model_config = Settings.model_config
    log_format: str | None = Field(None, validation_alias="DESKBOT_LOG_FORMAT")
    log_level: str | None = Field(None, validation_alias="DESKBOT_LOG_LEVEL")


def log_output(env_file: str | None = ".env") -> tuple[str | None, str | None]:
    """(DESKBOT_LOG_FORMAT, DESKBOT_LOG_LEVEL) as the settings take them (`json`, `DEBUG`), whatever
    else is wrong with the settings: for the command line's own lines, which must be written even when
    the settings cannot be loaded. None for one that is unset or that the settings would refuse."""
    quiet = _UnreadableEnvLines()  # a line of `.env` it cannot read is load_settings' to tell
    dotenv_log = logging.getLogger(_DOTENV_LOG)
    dotenv_log.addFilter(quiet)
    try:
        try:
            found = _LogOutput(_env_file=env_file)
        except (OSError, ValueError):  # a `.env` that cannot be read: the environment alone
            found = _LogOutput(_env_file=None)
    finally:
        dotenv_log.removeFilter(quiet)
    fmt = (found.log_format or "").strip().lower()
    level = (found.log_level or "").strip().upper()
    return (
        fmt if fmt in ("console", "json") else None,
        level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else None,
    )


def _check_oauth2(settings: Settings) -> None:
    """One way to log in to the mailbox, and all that it needs."""
    oauth2 = (
        settings.email_oauth2_token_url,
        settings.email_oauth2_client_id,
        settings.email_oauth2_client_secret,
        settings.email_oauth2_scope,
        settings.email_oauth2_refresh_token,
    )
    if not any(oauth2):
        return
    if settings.email_password:
        raise SettingsError("EMAIL_PASSWORD and EMAIL_OAUTH2_*: set one way to log in to the mailbox, not both")
    if not settings.email_oauth2_token_url:
        raise SettingsError("EMAIL_OAUTH2_TOKEN_URL: needed with the other EMAIL_OAUTH2_* settings")
    if not settings.email_oauth2_client_id:
        raise SettingsError("EMAIL_OAUTH2_CLIENT_ID: needed with EMAIL_OAUTH2_TOKEN_URL")
    if not (settings.email_oauth2_client_secret or settings.email_oauth2_refresh_token):
        raise SettingsError(
            "EMAIL_OAUTH2_CLIENT_SECRET: needed with EMAIL_OAUTH2_TOKEN_URL (or EMAIL_OAUTH2_REFRESH_TOKEN, for a "
            "mailbox whose owner consented)"
        )


def _check_calendar(settings: Settings) -> None:
    """Validate the calendar settings now, each error naming its own variable."""
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"DESKBOT_TIMEZONE: unknown time zone {settings.timezone!r}") from None
    try:
        ServiceHours.parse(settings.service_hours)
    except ValueError as exc:
        raise SettingsError(f"DESKBOT_SERVICE_HOURS: {exc}") from None
    try:
        settings.calendar  # noqa: B018 (builds and caches the holiday table)
    except ValueError as exc:
        raise SettingsError(f"DESKBOT_HOLIDAYS: {exc}") from None
