"""`ZulipChannel`: customers' direct messages and the engineers' case topics on Zulip."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from typing import ClassVar
from urllib.parse import quote

import zulip

from adapters.channel import (
    Channel,
    FileRefusal,
    Inbound,
    InboundSink,
    Kind,
    Outbound,
    OutboundFile,
    PermanentChannelError,
    PermanentSendError,
    TransientChannelError,
    TransientSendError,
    size_text,
)
from adapters.topics import case_topic_name

from . import markup, plain
from .compose import MAX_TOPIC_LENGTH
from .directory import Engineers
from .files import fetch_uploads, upload_links, without_upload_links
from .outbound import MessagePoster
from .pacing import RateBudget
from .receive import Receiver
from .startup import check_account, check_support_stream, find_user, find_user_id
from .state import ServerState
from .transport import (
    USER_AGENT,
    Credentials,
    Transport,
    ZulipApiError,
    ZulipStopping,
    ZulipUnavailable,
    load_credentials,
)
from .tuning import ZulipTuning

log = logging.getLogger("deskbot.adapters.zulip")

#: How long `close` waits for the sending client to be free before it leaves it to the exit: the
#: request holding it is cut at once (`Transport.close`), so this passes only when a client is
#: still being built (its first request cannot be cut); stopping must not wait for that.
CLOSE_LOCK_WAIT = 1.0
#: A mention's look-up of an account (`GET /users/{email}`) waits this long at most, and the account
#: found is asked again after `MENTION_FRESH` seconds (its name may change; a stale name mentions nobody).
MENTION_LOOKUP_TIMEOUT = 3.0
MENTION_FRESH = 3600.0
#: Characters that would make a name act as other markdown inside `@**…**` (or end it early).
_NOT_IN_MENTION = frozenset("*`$~[]<>|\\")


class ZulipChannel(Channel):
    """The Zulip channel (SPEC §4, issue 3).

    Give either `api_key` (with `site` and `email`) or `config_file` (a
    zuliprc; explicit values override it). `stream` is the private stream
    that carries the case topics. `engineers` are DESKBOT_ENGINEERS: user ids,
    emails and user group names (`directory.Engineers`). `tuning` holds the
    knobs (`ZulipTuning`).
    """

    name: ClassVar[str] = "zulip"
    carries_case_topics: ClassVar[bool] = True
    #: Zulip's default `api_by_user` limit: 200 requests a minute; a message of up to
    #: max_message_length (10,000) characters is one request.
    posting_budget: ClassVar[tuple[int, float] | None] = (200, 60.0)
    post_size: ClassVar[int | None] = 10_000

    def __init__(
        self,
        *,
        site: str | None = None,
        email: str | None = None,
        api_key: str | None = None,
        config_file: str | None = None,
        stream: str = "support",
        engineer_ids: Iterable[int] = (),
        engineer_emails: Iterable[str] = (),
        engineer_groups: Iterable[str] = (),
        tuning: ZulipTuning = ZulipTuning(),
    ) -> None:
        try:
            self._credentials: Credentials | None = load_credentials(site, email, api_key, config_file)
            self._config_error: str | None = None
        except ValueError as exc:
            self._credentials, self._config_error = None, str(exc)
        self.tuning = tuning
        self.state = ServerState(stream_name=stream, max_message_length=tuning.max_message_length)
        self.engineers = Engineers(engineer_ids, engineer_emails, engineer_groups)
        self._budget = RateBudget()
        self._transport: Transport | None = None
        self._tx: zulip.Client | None = None
        self._tx_lock = threading.Lock()
        self._started = False
        self._receiver: Receiver | None = None
        self._poster: MessagePoster | None = None
        #: Held while a background look-up of the support stream's privacy runs (one at a time).
        self._refreshing = threading.Lock()
        #: Engineers' accounts by the name they work under: (user id, full name, when learnt), for
        #: `mention` (from their own messages, or looked up).
        self._accounts: dict[str, tuple[int, str, float]] = {}

    def __repr__(self) -> str:
        return f"ZulipChannel({self._credentials!r}, stream={self.state.stream_name!r})"

    def case_topic(self, number: int, customer: str, subject: str) -> str:
        """`#N customer: subject` on one line, cut with "…" to Zulip's 60-character limit, without
        the control and format characters Zulip refuses in a topic name (`adapters.topics`)."""
        return case_topic_name(number, customer, subject, MAX_TOPIC_LENGTH)

    # -- start-up ---------------------------------------------------------------------
    def _connect(self) -> tuple[Transport, zulip.Client]:
        """The transport and the sending client, built once (called with `_tx_lock` held)."""
        if self._config_error is not None:
            raise PermanentChannelError(self._config_error)
        assert self._credentials is not None
        transport = self._transport or Transport(
            self._credentials,
            request_timeout=self.tuning.request_timeout,
            budget=self._budget,
            on_rate_wait=self.report_rate_limit_wait,
        )
        self._transport = transport
        try:
            self._tx = self._tx or transport.new_client()
        except ValueError as exc:
            raise PermanentChannelError(str(exc)) from None
        except ZulipUnavailable as exc:
            raise TransientChannelError(f"Zulip at {self._credentials.site} is unreachable: {exc}") from None
        return transport, self._tx

    def start(self) -> None:
        """Check credentials and the support stream, resolve the engineers' emails; one clear line on failure."""
        with self._tx_lock:
            transport, client = self._connect()
            assert self._credentials is not None
            site = self._credentials.site
            try:
                check_account(transport, client, self._credentials, self.state)
                check_support_stream(transport, client, self.state)
                self.engineers.resolve_emails(lambda email: find_user_id(transport, client, email))
            except ZulipUnavailable as exc:
                raise TransientChannelError(f"Zulip at {site} is unreachable: {exc}") from None
            self._poster = self._poster or MessagePoster(
                transport,
                client,
                self.state,
                self._tx_lock,
                retry=self.tuning.send_retry,
                max_rate_wait=self.tuning.max_rate_wait,
                lookup_depth=self.tuning.lookup_depth,
                recorded_elsewhere=lambda: self.recorded_elsewhere,
                topics_held=self._topics_held,
                files=lambda: self.files,
            )
        self._started = True
        log.info(
            "Zulip channel ready: %s as %s (user %s), stream '%s'",
            site,
            self.state.email,
            self.state.user_id,
            self.state.stream_name,
        )

    # -- receiving --------------------------------------------------------------------
    def _with_files(self, message: Inbound) -> Inbound:
        """`message` with the uploads its content links, fetched with the bot's credentials
        (`files.fetch_uploads`), each capped at the lower of our limit and the server's."""
        if not upload_links(message.text):
            return message
        import httpx  # only when a file comes (it is off the start-up path)

        assert self._credentials is not None
        limit = min(self.max_attachment_bytes, self.state.max_file_upload_mib * 1024 * 1024)
        credentials = self._credentials
        with httpx.Client(timeout=self.tuning.request_timeout, headers={"User-Agent": USER_AGENT}) as http:
            files = fetch_uploads(http, credentials.site, (credentials.email, credentials.api_key), message.text, limit)
        if self.engineer_name(message) is None:
            return dataclasses.replace(message, attachments=files)
        # An engineer's words go to customers on other platforms too: the files travel as files,
        # so their Zulip links leave the text (a relative link means nothing outside Zulip).
        return dataclasses.replace(message, attachments=files, text=without_upload_links(message.text))

    def cannot_carry(self, file: OutboundFile) -> FileRefusal | None:
        """A file over the server's `max_file_upload_size_mib` (Zulip uploads any type)."""
        limit = self.state.max_file_upload_mib * 1024 * 1024
        if file.size > limit:
            return FileRefusal("size", limit, f"over Zulip's {size_text(limit)} upload limit")
        return None

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        if not self._started:
            self.start()
        assert self._transport is not None
        receiver = Receiver(
            self._transport,
            self.state,
            sink,
            stop,
            policy=self.tuning.receive_retry,
            page_size=self.tuning.catch_up_page,
            poll_timeout=self.tuning.poll_timeout,
            on_trouble=self.report_trouble,
            engineers=self.engineers,
            with_files=self._with_files,
        )
        self._receiver = receiver
        try:
            receiver.run()
        except ValueError as exc:  # the client could not be built: configuration
            raise PermanentChannelError(str(exc)) from None
        except ZulipApiError as exc:
            raise TransientChannelError(f"Zulip refused a request while receiving: {exc}") from None
        except ZulipStopping as exc:
            raise TransientChannelError(f"the Zulip channel was closed while receiving: {exc}") from None
        finally:
            receiver.close()
            self._receiver = None

    @property
    def connected(self) -> bool:
        return self._receiver is not None and self._receiver.connected

    def words_for_customer(self, text: str, customer_channel: str) -> str:
        """Without links into the organisation (they name the private stream and other customers'
        topics); to a customer on another channel, without Zulip's markup either (`plain`)."""
        site = self._credentials.site if self._credentials is not None else ""
        return plain.for_customer(text, site, on_zulip=customer_channel == self.name) if site else text

    def their_words(self, value: str) -> str:
        """Inert unless no markdown rule could act on it (`markup.their_words`)."""
        return markup.their_words(value)

    def engineer_name(self, message: Inbound) -> str | None:
        """By the sender's user id (`directory.Engineers`), never by the email the message shows."""
        if message.channel != self.name or message.sender_platform_id is None:
            return None
        shown = str(message.raw.get("sender_email") or "")
        name = self.engineers.name_of(int(message.sender_platform_id), shown)
        if name is not None and message.sender_name:
            self._accounts[name] = (int(message.sender_platform_id), message.sender_name, time.monotonic())
        return name

    def engineer_at(self, email: str, configured: frozenset[str]) -> str | None:
        """By the account's user id, as every engineer is known (SPEC §3): an address the setting
        names is its engineer's; any other is looked up on Zulip (an engineer named by user id or
        group works under the address their messages show: where the bot may see hidden addresses,
        Zulip finds them by the real one too, and the name is still the one their messages show)."""
        email = email.strip().lower()
        if email in self.engineers.emails:
            return email
        found = self._account_at(email)
        return None if found is None else self.engineers.name_of(*found)

    def is_engineer(self, address: str) -> bool:
        """By user id, the address of a Zulip account's identity (an older identity keyed by email is not one)."""
        return address.isascii() and address.isdigit() and self.engineers.name_of(int(address), "") is not None

    def mention(self, engineer: str) -> str:
        """`@**Full Name|id**` for the account the engineer works under: known from their own
        messages, else looked up by the address they work under (`GET /users/{email}`). "" when
        Zulip shows the bot no such account, cannot be asked now, or the name cannot be written
        in a mention: the bot's line then mentions nobody, rather than carrying a broken mention."""
        name = engineer.strip().lower()
        known = self._accounts.get(name)
        if (known is None or time.monotonic() - known[2] >= MENTION_FRESH) and "@" in name:
            known = self._account_named(name) or known
        if known is None:
            return ""
        user_id, full_name, _learnt = known
        full_name = full_name.strip()
        if not full_name.isprintable() or _NOT_IN_MENTION.intersection(full_name):
            return ""
        return f"@**{full_name}|{user_id}**"

    def _account_named(self, address: str) -> tuple[int, str, float] | None:
        """The account `address` names (remembered for `mention`), or None; never waits long."""
        with self._tx_lock:
            transport, client = self._transport, self._tx
            if transport is None or client is None:
                return None
            try:
                found = transport.call(
                    client, "GET", f"users/{quote(address, safe='@')}", timeout=MENTION_LOOKUP_TIMEOUT, max_pause=1.0
                )
            except (ZulipApiError, ZulipUnavailable) as exc:
                log.debug("cannot look up %s for a mention: %s", address, exc)
                return None
        user = found.get("user") or {}
        if "user_id" not in user or not user.get("full_name"):
            return None
        account = (int(user["user_id"]), str(user["full_name"]), time.monotonic())
        self._accounts[address] = account
        return account

    # -- the support stream's privacy ----------------------------------------------------
    def held_back(self) -> dict[Kind, str]:
        """Case topics, while the support stream is not private (SPEC §3).

        The privacy is learnt from the event queue; where no queue of this process listens (another
        replica receives, or Zulip is unreachable) it is looked up again, in the background, once
        the last word is `privacy_max_age` seconds old (and right before a case-topic post, see
        `_topics_held`), so that this never waits for the network.
        """
        if self._privacy_stale():
            self._refresh_in_background()
        problem = self.state.privacy_problem()
        return {"topic": problem} if problem else {}

    def _topics_held(self) -> str | None:
        """Why case-topic posts are held back, looked up first if the last word is stale (before a post)."""
        if self._privacy_stale():
            self._refresh_privacy()
        return self.state.privacy_problem()

    def _privacy_stale(self) -> bool:
        return (
            self._started
            and not self.connected
            and time.monotonic() - self.state.privacy_checked_at >= self.tuning.privacy_max_age
        )

    def _refresh_in_background(self) -> None:
        if self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, name="zulip-privacy", daemon=True).start()

    def _refresh_then_release(self) -> None:
        try:
            self._refresh_privacy()
        finally:
            self._refreshing.release()

    def _refresh_privacy(self) -> None:
        """`GET /users/me/subscriptions`: the support stream's flags now (failures keep the last word)."""
        with self._tx_lock:
            transport, client = self._transport, self._tx
            if transport is None or client is None:
                return
            try:
                subscriptions = transport.call(client, "GET", "users/me/subscriptions", timeout=5.0)
            except (ZulipApiError, ZulipUnavailable) as exc:
                log.debug("cannot look up the support stream's privacy: %s", exc)
                return
        self.state.apply_subscriptions(subscriptions.get("subscriptions", []))

    # -- accounts --------------------------------------------------------------------------
    def user_id_of(self, email: str) -> int | None:
        """The Zulip user id of the account `email` names, where Zulip shows the bot that address
        (`deskbot customers add --zulip-email`); None where it does not (the organisation restricts
        email visibility, or there is no such account).

        Raises PermanentChannelError (configuration, credentials) or TransientChannelError (unreachable).
        """
        found = self._account_at(email)
        return None if found is None else found[0]

    def _account_at(self, email: str) -> tuple[int, str] | None:
        """`find_user`: the user id and the address its messages show, of the account `email` names."""
        with self._tx_lock:
            transport, client = self._connect()
            assert self._credentials is not None
            try:
                check_account(transport, client, self._credentials, self.state)
                return find_user(transport, client, email)
            except ZulipUnavailable as exc:
                raise TransientChannelError(f"Zulip at {self._credentials.site} is unreachable: {exc}") from None

    # -- sending ----------------------------------------------------------------------
    def send(self, message: Outbound) -> list[str]:
        """Post one outbox row (several messages if it is long); return their ids."""
        if not self._started:
            # The runtime dispatches even when start() failed for a transient reason.
            try:
                self.start()
            except TransientChannelError as exc:
                raise TransientSendError(str(exc)) from None
            except PermanentChannelError as exc:
                raise PermanentSendError(str(exc)) from None
        assert self._poster is not None, "start() builds it"
        return self._poster.send(message)

    # -- shutdown --------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections, at once even while Zulip hangs (SPEC §7: exit within 10 s).

        Every request in flight is cut (`Transport.close`): a send or a look-up for an earlier
        send blocked on a server that does not answer ends with `ZulipStopping`, which the send
        path turns into `TransientSendError`, so its row stays pending and is tried again after
        the restart, looking first for a post that reached the server (`reconcile`). The event
        queue is not deleted here: the receive loop deletes it on its way out, and a queue left
        behind expires on the server after 10 idle minutes.
        """
        if self._transport is not None:
            self._transport.close()
        if not self._tx_lock.acquire(timeout=CLOSE_LOCK_WAIT):
            log.debug("Zulip channel closed with the sending client still busy")
            return
        try:
            if self._tx is not None and self._tx.session is not None:
                self._tx.session.close()
        finally:
            self._tx_lock.release()
