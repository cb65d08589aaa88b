"""Why a setting's value cannot work, in a few words that name no secret: a platform's web address,
a file deskbot is to read (a CA bundle), the database URL. Pure: they read only the value (and, for a
file or a database folder, whether it is there); `bot.config` says which setting was wrong.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

#: A URL scheme, as in `ftp://`.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: A host name (IDNA too), an IPv4 address, or an IPv6 address (given in brackets).
_HOST = re.compile(r"[\w.-]+|[0-9a-f:.]*:[0-9a-f:.]*")


def site_problem(value: str) -> str | None:
    """Why `value` cannot be a platform's web address (ZULIP_SITE, MASTODON_API_BASE_URL), in a few
    words; None when it can. A bare host is taken, as both clients take it: they add https://."""
    text = value.strip()
    shown = re.sub(r"^([^/]*//)?[^/@]*@", r"\1…@", text)[:80]  # never a login given in the address
    form = f"expected a web address such as https://chat.example.com, got {shown!r}"
    if _SCHEME.match(text) and not text.startswith(("http://", "https://")):
        return f"expected an http:// or https:// address (or a bare host name), got {shown!r}"
    if not text or any(c.isspace() for c in text):
        return form
    try:
        parts = urlsplit(text if text.startswith(("http://", "https://")) else "https://" + text)
    except ValueError:  # a bracket left open
        return form
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        return form
    try:
        port = parts.port  # ValueError for a port that is no number or out of range
    except ValueError:
        port = 0
    if port == 0:
        return f"expected a web address with a port from 1 to 65535, got {shown!r}"
    return None


def file_problem(path: str, *, certificates: bool = False, folder_too: bool = False) -> str | None:
    """Why the file at `path` cannot be used, in a few words; None when it can be read (and, with
    `certificates`, holds PEM certificates, as `ssl` loads them). `folder_too`: a directory is taken
    as it is (requests takes a folder of certificates)."""
    shown = path[:200]
    target = Path(path)
    if folder_too and target.is_dir():
        return None
    if not target.exists():
        return f"no file at {shown}"
    if target.is_dir():
        return f"{shown} is a directory, not a file"
    try:
        with target.open("rb"):
            pass
    except OSError as exc:
        return f"cannot read {shown}: {exc.strerror}"
    if certificates:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except (ssl.SSLError, ValueError):
            return f"{shown} holds no PEM certificates"
    return None


#: The database drivers deskbot runs on, per database: SQLite's (Python's own) and psycopg 3.
DATABASE_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
_DATABASE_FORM = "expected sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
_SUPPORTED = "deskbot runs on postgresql+psycopg:// (psycopg 3) and sqlite:///"


def check_database_url(value: str) -> None:
    """ValueError saying what is wrong with DESKBOT_DATABASE_URL `value`, in words that never hold
    its password: its form, characters of the password left as they are, the port, the driver, a
    database named, the folder of an SQLite file.

    For the URL an operator gives: tests may build engines on `sqlite://` (in memory) directly."""
    if not value.startswith(("sqlite:", "sqlite+", "postgresql")):
        raise ValueError(_DATABASE_FORM)
    # SQLAlchemy ends the password at its first `@`: the rest of it would be read as the host, and
    # shown as such in the errors. A `#` is where a URL's fragment starts. (An `@` in the user name,
    # `user@server:…`, is read as meant.)
    login = value.partition("://")[2].rpartition("@")[0]
    if value.startswith("postgresql") and ("#" in value or "@" in login.partition(":")[2]):
        raise ValueError(
            "an '@' in the password or a '#' in the URL: percent-encode special characters in the password"
            " (@ as %40, # as %23, % as %25)"
        )
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            f"cannot be read as a database URL ({_DATABASE_FORM}; SQLite takes three slashes before a"
            " relative path, four before an absolute one)"
        ) from None
    except ValueError:  # SQLAlchemy reads the port as a number
        raise ValueError("the port is not a number (postgresql+psycopg://USER@HOST:PORT/DB)") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError("the port is not from 1 to 65535")
    backend, _plus, driver = url.drivername.partition("+")
    if backend not in DATABASE_DRIVERS:
        raise ValueError(_DATABASE_FORM)
    if driver and driver != DATABASE_DRIVERS[backend]:
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(f"unknown database driver {driver!r}: {_SUPPORTED}") from None
        except ImportError:
            raise ValueError(f"the database driver {driver} is not installed: {_SUPPORTED}") from None
        raise ValueError(f"the database driver {driver} is not supported: {_SUPPORTED}")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError(f"an SQLite database in memory keeps nothing once deskbot stops; {_DATABASE_FORM}")
    if backend == "postgresql" and not url.database:
        # libpq would take the database named as the user: for `postgres`, the server's maintenance database.
        raise ValueError(f"no database name; {_DATABASE_FORM}")
    if backend == "sqlite" and not url.database.startswith("file:"):
        folder = Path(url.database).parent
        if not folder.is_dir():
            where = "is not a directory" if folder.exists() else "does not exist"
            raise ValueError(f"the directory of the SQLite file, {str(folder)[:200]}, {where}")
