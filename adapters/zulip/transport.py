"""Talking to the Zulip server: clients, error classes, retries with back-off.

The `zulip` client returns only the JSON body and drops the HTTP status and
the `X-RateLimit-*` headers. Rather than re-implement the client with httpx,
we keep the real client (its encoding, auth and user agent are what the
server expects) and add a `requests` response hook to its session: the hook
sees every response, records its status for the calling thread and feeds the
rate-limit headers into `RateBudget` (`pacing.py`). Clients are created with
`retry_on_errors=False` — the library would otherwise re-POST a message on a
5xx — and all retrying happens here, with tenacity.

`Transport.close` ends every request in flight at once (it shuts down the
sockets of the connections its clients opened: `_Connections`), so that
stopping never waits for a server that does not answer (SPEC §7: exit
within 10 s); the caller gets `ZulipStopping`.
"""

from __future__ import annotations

import logging
import socket
import threading
import weakref
from collections.abc import Callable
from configparser import ConfigParser
from configparser import Error as ConfigError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import requests.adapters
import tenacity
import urllib3
import zulip

from adapters.backoff import Backoff
from adapters.http_session import settle_environment
from adapters.ratelimit import read_rate_limit

from .pacing import RateBudget

log = logging.getLogger("deskbot.adapters.zulip")

USER_AGENT = "deskbot/0.1"


class ZulipApiError(Exception):
    """The server refused the request (a 4xx other than 429): retrying cannot help."""

    def __init__(self, status: int | None, code: str, msg: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {msg}" + (f" (HTTP {status})" if status else ""))
        self.status = status
        self.code = code
        self.msg = msg
        self.body = body or {}


class ZulipUnavailable(Exception):
    """5xx, connection failure or timeout: worth retrying.

    `maybe_processed` is true when the server may have acted on the request
    before the failure (a timeout, a cut connection, a 5xx after the fact).
    """

    def __init__(self, message: str, *, maybe_processed: bool = True) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed


class ZulipTimedOut(ZulipUnavailable):
    """No answer within the request's timeout: the server may have acted on the request."""


class ZulipStopping(ZulipUnavailable):
    """The transport was closed (the process is stopping): the request was refused, or cut off in
    flight. Not retried; whether the server acted on a cut request is unknown (`maybe_processed`),
    so a send cut off stays pending and its next attempt looks for it first (`reconcile`)."""


class ZulipRateLimited(ZulipUnavailable):
    """HTTP 429: wait `retry_after` seconds. The request was not processed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.1f}s", maybe_processed=False)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Credentials:
    site: str
    email: str
    api_key: str
    config_file: str | None = None
    #: Where the site was given, for the lines that blame it: ZULIP_SITE, or the zuliprc's `site`.
    site_setting: str = "ZULIP_SITE"
    #: The site was a bare host, to which https:// was added.
    https_assumed: bool = False

    def __repr__(self) -> str:  # never show the key
        return f"Credentials(site={self.site!r}, email={self.email!r})"


def load_credentials(site: str | None, email: str | None, api_key: str | None, config_file: str | None) -> Credentials:
    """Explicit values win; the zuliprc fills the gaps. Raises ValueError with one clear line."""
    site_setting = "ZULIP_SITE"
    if config_file is not None:
        path = Path(config_file).expanduser()
        parser = ConfigParser(interpolation=None)
        try:
            with path.open() as fh:
                parser.read_file(fh)
        except OSError as exc:
            raise ValueError(f"ZULIP_CONFIG: cannot read zuliprc {path}: {exc.strerror}") from None
        except ConfigError as exc:
            raise ValueError(f"ZULIP_CONFIG: zuliprc {path} is malformed: {exc.message.splitlines()[0]}") from None
        section = parser["api"] if parser.has_section("api") else {}
        if not site:
            site, site_setting = section.get("site"), f"ZULIP_CONFIG (the site in {path})"
        email = email or section.get("email")
        api_key = api_key or section.get("key")
    # Each missing value with the setting that gives it, and the zuliprc option that would do too.
    wanted = (("site", "ZULIP_SITE", site), ("email", "ZULIP_EMAIL", email), ("key", "ZULIP_API_KEY", api_key))
    missing = [(option, setting) for option, setting, value in wanted if not value]
    if missing:
        settings = " and ".join(setting for _option, setting in missing)
        if config_file is None:
            raise ValueError(f"{settings} not set (or ZULIP_CONFIG, a zuliprc file)")
        options = ", ".join(option for option, _setting in missing)
        raise ValueError(
            f"ZULIP_CONFIG: {Path(config_file).expanduser()} has no {options} in its [api] section, "
            f"and {settings} {'is' if len(missing) == 1 else 'are'} not set"
        )
    assert site and email and api_key
    https_assumed = not site.startswith(("http://", "https://"))
    if https_assumed:
        site = "https://" + site
    return Credentials(
        site.rstrip("/"),
        email,
        api_key,
        str(Path(config_file).expanduser()) if config_file else None,
        site_setting=site_setting,
        https_assumed=https_assumed,
    )


def _tls_reason(error: BaseException) -> str:
    """Why the TLS handshake failed, read from the error the zulip client wraps, and where to name
    a private certificate authority; empty when the error does not say."""
    cause = str(error.__cause__ or "")
    if "CERTIFICATE_VERIFY_FAILED" not in cause:
        return ""
    why = cause.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip(" )'\"")
    return (
        f": the server's certificate is not trusted ({why or 'verify failed'}); name a private"
        " certificate authority in REQUESTS_CA_BUNDLE"
    )


def _plain_http_hint(credentials: Credentials) -> str:
    """Where the site was a bare host: that https:// was added, and how to say http:// instead (a
    server that speaks plain HTTP answers a TLS handshake with what TLS cannot read)."""
    if not credentials.https_assumed:
        return ""
    host = credentials.site.removeprefix("https://")
    return f" (https:// was added to the bare host {host}; a server that speaks plain HTTP needs http://{host})"


class _Connections:
    """The HTTP connections a transport's clients opened, so that `cut` can end every request in
    flight, from another thread: a thread blocked reading an answer gets an error at once.

    `requests` offers no way to abort a request; closing a session only closes the idle
    connections of its pools, not the one a request is using. So each client's session gets an
    adapter (`_CuttableAdapter`) whose connections report here once connected, and `cut` shuts
    their sockets down. Not covered: a TLS handshake in progress (its socket is not reachable
    until it ends); the request timeout bounds it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()
        self._cut = False
        self._pool_classes: dict[type, type] = {}

    def pool_class(self, base: type[Any]) -> type[Any]:
        """`base` (a urllib3 connection pool class) whose connections report here."""
        with self._lock:
            if base in self._pool_classes.values():
                return base  # reported already (a proxy's manager is seen again at each request)
            made = self._pool_classes.get(base)
            if made is None:
                made = self._pool_classes[base] = type(
                    base.__name__, (base,), {"ConnectionCls": self._connection_class(base.ConnectionCls)}
                )
            return made

    def _connection_class(self, base: type[Any]) -> type[Any]:
        connections = self

        class Reporting(base):
            def connect(self) -> None:
                super().connect()
                connections._opened(self)

        return Reporting

    def _opened(self, connection: Any) -> None:
        with self._lock:
            if not self._cut:
                self._open.add(connection)
                return
        _shut(connection.sock)  # connected after `cut` (it was connecting then): cut it too

    def cut(self) -> None:
        """Shut down every connection's socket; connections made from now on are cut as they connect."""
        with self._lock:
            self._cut = True
            opened = list(self._open)
        for connection in opened:
            _shut(getattr(connection, "sock", None))


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        # The plain socket's shutdown, also for a TLS socket: it ends the other thread's read at the
        # OS level, where `SSLSocket.shutdown` would also drop the TLS object that thread reads through.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


class _CuttableAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its pools' connections reported to `_Connections` (direct and through a proxy)."""

    def __init__(self, connections: _Connections) -> None:
        self._connections = connections
        super().__init__()  # builds the pool manager (`init_poolmanager`)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._report(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._report(manager)
        return manager

    def _report(self, manager: urllib3.PoolManager) -> None:
        manager.pool_classes_by_scheme = {
            scheme: self._connections.pool_class(cls) for scheme, cls in manager.pool_classes_by_scheme.items()
        }


class _LastResponse(threading.local):
    status: int | None = None
    retry_after: float | None = None


class Transport:
    """Builds clients and makes single calls, turning every outcome into a value or one of our errors."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        request_timeout: float = 15.0,
        budget: RateBudget | None = None,
        sleep: Callable[[float], Any] | None = None,
        on_rate_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.credentials = credentials
        #: Told the seconds of every wait a rate limit imposes (pacing or 429), for /metrics.
        self.on_rate_wait = on_rate_wait
        self.request_timeout = request_timeout
        self.budget = budget or RateBudget()
        self._last = _LastResponse()
        self._closing = threading.Event()
        self._connections = _Connections()
        self.sleep = sleep or self._interruptible_sleep

    def note_rate_wait(self, seconds: float) -> None:
        if self.on_rate_wait is not None:
            self.on_rate_wait(seconds)

    def _interruptible_sleep(self, seconds: float) -> None:
        self._closing.wait(max(0.0, seconds))

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """Stop: wake every sleep, cut every request in flight, refuse new ones (`ZulipStopping`)."""
        self._closing.set()
        self._connections.cut()

    def new_client(self) -> zulip.Client:
        """A `zulip.Client` with library retries off and our response hook installed.

        Raises ZulipUnavailable (cannot connect) or ValueError (not a Zulip
        server, bad TLS or configuration), each with one clear line.
        """
        c = self.credentials
        try:
            client = zulip.Client(
                email=c.email,
                api_key=c.api_key,
                site=c.site,
                config_file=c.config_file,
                retry_on_errors=False,
                client=USER_AGENT,
            )
        except zulip.UnrecoverableNetworkError as exc:
            if "SSL" in str(exc):
                reason = _tls_reason(exc) or _plain_http_hint(c)
                raise ValueError(f"{c.site_setting}: TLS error talking to Zulip at {c.site}{reason}") from None
            raise ZulipUnavailable(
                f"cannot connect to Zulip at {c.site}: {network_failure(exc)}", maybe_processed=False
            ) from None
        except requests.RequestException as exc:
            raise ZulipUnavailable(
                f"cannot reach Zulip at {c.site}: {network_failure(exc)}", maybe_processed=False
            ) from None
        except AssertionError:
            raise ValueError(
                f"{c.site_setting}: {c.site} does not answer like a Zulip server (no zulip_version)"
            ) from None
        except zulip.ZulipError as exc:
            raise ValueError(f"Zulip client configuration: {exc}") from None
        client.ensure_session()
        assert client.session is not None
        for prefix in ("https://", "http://"):
            # Replaces the default adapter (and its pool: the constructor's one connection).
            previous = client.session.adapters.get(prefix)
            client.session.mount(prefix, _CuttableAdapter(self._connections))
            if previous is not None:
                previous.close()
        client.session.hooks["response"].append(self._on_response)
        settle_environment(client.session, c.site)
        return client

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.status = response.status_code
        seen = read_rate_limit(response.headers)
        self.budget.observe(seen)
        self._last.retry_after = seen.retry_after

    def call(
        self,
        client: zulip.Client,
        method: str,
        url: str,
        request: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        max_pause: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        files: list[Any] | None = None,
    ) -> dict[str, Any]:
        """One request, paced by the rate budget. Returns the JSON of a success.

        A pacing pause longer than `max_pause` is not slept here: it raises
        ZulipRateLimited so the caller can hand the wait back (a send must not
        hold its outbox row for a minute).
        """
        self._refuse_if_closing(method, url)
        wait = self.budget.delay()
        if wait > 0:
            if max_pause is not None and wait > max_pause:
                raise ZulipRateLimited(wait)
            log.info("pacing Zulip requests: waiting %.2fs for the rate-limit window", wait)
            self.note_rate_wait(wait)
            (sleep or self.sleep)(wait)
            self._refuse_if_closing(method, url)
        self._last.status = None
        self._last.retry_after = None
        seconds = timeout or self.request_timeout
        try:
            result = client.call_endpoint(url=url, method=method, request=request or {}, files=files, timeout=seconds)
        except Exception as exc:
            if self._closing.is_set():
                # Whatever the cut socket made the client raise: the request was cut off by `close`.
                raise ZulipStopping(f"{method} {url}: cut off, the Zulip channel is closing") from None
            if isinstance(exc, requests.Timeout):
                raise ZulipTimedOut(f"{method} {url}: no answer within {seconds:g}s") from None
            if isinstance(exc, (requests.RequestException, zulip.UnrecoverableNetworkError)):
                # Connection refused or cut, a truncated body (ChunkedEncodingError), …
                raise ZulipUnavailable(f"{method} {url}: {network_failure(exc)}") from None
            raise
        if self._closing.is_set() and result.get("result") != "success":
            # An answer spoilt by the cut (a body that was not JSON) is no word from the server.
            raise ZulipStopping(f"{method} {url}: cut off, the Zulip channel is closing")
        return self._classify(method, url, result)

    def _refuse_if_closing(self, method: str, url: str) -> None:
        if self._closing.is_set():
            raise ZulipStopping(f"{method} {url}: not sent, the Zulip channel is closing", maybe_processed=False)

    def _classify(self, method: str, url: str, result: dict[str, Any]) -> dict[str, Any]:
        status = self._last.status
        outcome = result.get("result")
        if outcome == "success":
            return result
        if outcome == "http-error":  # a body that was not JSON, e.g. a proxy's 502 page
            status = result.get("status_code", status)
        code = str(result.get("code") or "")
        if status == 429 or code == "RATE_LIMIT_HIT":
            after = result.get("retry-after", self._last.retry_after)
            return self._raise(ZulipRateLimited(float(after) if after is not None else 1.0))
        if status is None or status >= 500:
            return self._raise(ZulipUnavailable(f"{method} {url}: server error {status or '?'}"))
        return self._raise(ZulipApiError(status, code or "ERROR", str(result.get("msg", "")), result))

    @staticmethod
    def _raise(exc: Exception) -> dict[str, Any]:
        raise exc


def rate_aware_wait(
    backoff: Backoff, on_rate_wait: Callable[[float], None] | None = None
) -> Callable[[tenacity.RetryCallState], float]:
    """`backoff`'s waits; after a 429, exactly the wait the server asked for (told to `on_rate_wait`)."""
    grow = backoff.tenacity_wait()

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ZulipRateLimited):
            if on_rate_wait is not None:
                on_rate_wait(exc.retry_after)
            return exc.retry_after
        return grow(state)

    return wait


def retrying(
    backoff: Backoff,
    sleep: Callable[[float], Any],
    *,
    max_rate_wait: float,
    on_rate_wait: Callable[[float], None] | None = None,
) -> tenacity.Retrying:
    """Bounded retries of one operation (a send, the look-up for an earlier send): `backoff.attempts`
    tries, and none after a 429 that asks for more than `max_rate_wait` seconds (that wait is
    handed back to the caller).

    Nor after a timeout: a server that did not answer within the request timeout is most likely
    not answering at all (hung, or a path that drops packets). Retrying would hold the sender,
    and the channel's lock, for `attempts` timeouts and the look-ups between them (over a
    minute at 4 × 15 s) while every other row waits. The caller hands the row back to the
    dispatcher instead (`TransientSendError`), whose back-off tries it later; that next attempt
    looks for an earlier send first, so a post that did reach the server is not doubled. A cut
    connection or a 5xx, which come back at once, are still retried here. Nor after `close`
    (`ZulipStopping`): the process is stopping.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(backoff.attempts) | _rate_wait_too_long(max_rate_wait),
        wait=rate_aware_wait(backoff, on_rate_wait),
        retry=tenacity.retry_if_exception_type(ZulipUnavailable)
        & tenacity.retry_if_not_exception_type((ZulipTimedOut, ZulipStopping)),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_retry,
    )


def _rate_wait_too_long(limit: float) -> tenacity.stop.stop_base:
    class _Stop(tenacity.stop.stop_base):
        def __call__(self, state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return isinstance(exc, ZulipRateLimited) and exc.retry_after > limit

    return _Stop()


def network_failure(exc: BaseException) -> str:
    """What went wrong on the network, in a few words: "host not found", "connection refused" …"""
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = " ".join(chain)
    for needles, short in (
        (
            ("Name or service not known", "nodename nor servname", "No address associated", "name resolution"),
            "host not found",
        ),
        (("refused",), "connection refused"),
        (("timed out", "Timeout"), "timed out"),
        (("RemoteDisconnected", "Connection aborted", "reset by peer"), "connection closed by the server"),
    ):
        if any(needle in text for needle in needles):
            return short
    return f"connection failed ({type(exc).__name__})"


def _log_retry(state: tenacity.RetryCallState) -> None:
    # DEBUG: a send that still fails after its tries is logged by the dispatcher, and an outage
    # by the runtime once (bot.channel_health), not at every retry.
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.debug("Zulip request failed (%s); try %d, retrying in %.1fs", exc, state.attempt_number, wait)
