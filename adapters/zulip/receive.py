"""The receive loop: register, catch up, long-poll; nothing lost across queue expiry or outages.

Order of work after every (re-)registration (NOTES §2):

1. `POST /register` first, so every later message is buffered in the queue.
2. Note the newest message id visible now (the *horizon*).
3. Catch up on edits no queue told of: the newest messages up to the stored
   cursor are read again, and the edits of direct messages among them made
   since the message at the cursor was sent are handed over (`_catch_up_edits`).
4. Catch up with `GET /messages` from the stored cursor: direct messages and
   the support stream, separately (a narrow cannot say "or"), paged until
   `found_newest`, merged and handed over in id order.
5. Process the queue's events, skipping ids already handed over.

A topic of the support stream moved whole to another name (`update_message` with `orig_subject`;
`_whole_topic_moved`) is told to the sink (`InboundSink.topic_renamed`) so that its case follows.
A catch-up cannot see moves (messages show where they are now, not where they were): a case topic
renamed while the bot was not receiving keeps its old name in the store, and the bot's next post
about the case opens a topic of that name again beside the renamed one (moving that one into the
renamed topic then brings the case there).

A customer's edit of a message (`update_message`) is handed over as a message of its own
(`inbound.edit_to_inbound`), after the message is read from the server; the cursor stays where it
is (it counts messages, not edits). An edit made while no queue listened is handed over the same
way by the next catch-up (step 3), with the same key, so an edit is handled once whichever way it
comes; a message after the cursor is read with the words it has by then.

Threads: the loop runs in a worker thread that both long-polls and hands
messages over, so nothing is passed between threads on the way from the
server to the sink. The thread that called `receive()` only watches `stop`:
when it is set, it waits for any hand-over in progress to finish, closes the
gate to the sink, and returns at once — a long-poll still waiting on the
server is abandoned (its events are not acknowledged, so they are not lost).

A server that takes requests in but answers none (a hung process, a proxy
holding the request) is noticed by the long-poll's timeout: Zulip answers an
idle poll with a heartbeat within 55 s, so a poll unanswered for 60 s
(`long_poll_timeout`) is told as an outage at once, and retried with back-off
until the server answers again.

The cursor ("all relevant messages up to this id are stored") only moves
forward, and during catch-up only up to the horizon: a stream message newer
than the horizon may have a direct message with a smaller id that the DM
query ran too early to see; it arrives through the queue, and the cursor
follows once the queue is processed in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import tenacity
import zulip

from adapters.backoff import Backoff
from adapters.channel import Inbound, InboundSink, PermanentChannelError
from adapters.paging import pages

from .directory import Engineers
from .files import upload_links
from .inbound import CHANNEL, TopicMove, edit_to_inbound, edited_message_id, to_inbound, topic_move
from .state import ServerState
from .transport import (
    Transport,
    ZulipApiError,
    ZulipRateLimited,
    ZulipStopping,
    ZulipTimedOut,
    ZulipUnavailable,
    rate_aware_wait,
)

log = logging.getLogger("deskbot.adapters.zulip")

CURSOR_KEY = "zulip:last_message_id"
SKIPPED_CURSOR_FLUSH_SECONDS = 30.0
#: Bytes of customers' files a catch-up page holds before what it fetched is handed over (and
#: stored), so that a page of messages with files never holds more than this and one more file.
HELD_FILE_BYTES = 32 * 1024 * 1024
#: Messages handed to the sink together while catching up (one transaction).
HAND_OVER_PAGE = 50
#: Messages up to the cursor a catch-up reads again for edits of DMs no queue told of
#: (`_catch_up_edits`): the newest, those a customer could still edit when the bot stopped listening.
EDITS_PAGE = 200
EVENT_TYPES = ["message", "update_message", "stream", "subscription", "user_group"]
#: What the register answer carries besides the queue: limits, the support stream's flags, the user
#: groups (engineers named as `@group`; `GET /user_groups` is closed to bots).
FETCH_EVENT_TYPES = ["realm", "subscription", "realm_user_groups"]

#: The longest Zulip leaves a long-poll unanswered: on an idle queue it answers with a heartbeat
#: event 45-55 s after the poll came in (NOTES §1, from the server's zerver/tornado/event_queue.py).
HEARTBEAT_MAX_SECONDS = 55.0
#: On top of that, for the heartbeat's way to us (network, proxies, a busy server).
HEARTBEAT_MARGIN_SECONDS = 5.0
#: The long-poll timeout Zulip announces with that heartbeat (`event_queue_longpoll_timeout_seconds`).
ZULIP_LONGPOLL_SECONDS = 90.0
#: Seconds to delete the event queue on the way out: a courtesy (the server drops an unpolled
#: queue after 10 minutes anyway) that must not use up the receive loop's share of the time
#: to stop (SPEC §7: exit within 10 s; the runtime waits 5 s for receive loops) when Zulip hangs.
FORGET_QUEUE_TIMEOUT = 2.0


def long_poll_timeout(announced: float | None) -> float:
    """How long a `GET /events` may go unanswered before the server counts as not answering.

    Zulip answers an idle long-poll with a heartbeat within HEARTBEAT_MAX_SECONDS, so no answer
    for that plus a margin (60 s in all) means the server is not answering: a hung process, a
    proxy that holds the request. Waiting `event_queue_longpoll_timeout_seconds` (90 s, which the
    API documentation suggests as the client timeout; this loop waited it + 10 s) would leave a
    hung server looking healthy for 100 s and more, an at-once retry as long again. A server that
    announces a longer long-poll than 90 s may have lengthened its heartbeat with it (the field
    exists for that): the timeout then grows in the same proportion (60/90 of it).
    """
    heartbeat_based = HEARTBEAT_MAX_SECONDS + HEARTBEAT_MARGIN_SECONDS
    if not announced:
        return heartbeat_based
    return max(heartbeat_based, heartbeat_based * announced / ZULIP_LONGPOLL_SECONDS)


class _Stopped(Exception):
    """`stop` was set while waiting."""


class _QueueGone(Exception):
    """BAD_EVENT_QUEUE_ID: the server dropped our queue."""


def _next_anchor(page: dict[str, Any]) -> int | None:
    """Where the page after `page` starts: its last message; None when it reached the newest."""
    batch = page.get("messages", [])
    return None if page.get("found_newest") or not batch else int(batch[-1]["id"])


class Receiver:
    """One `Channel.receive` call: runs until `stop` is set."""

    def __init__(
        self,
        transport: Transport,
        state: ServerState,
        sink: InboundSink,
        stop: threading.Event,
        *,
        policy: Backoff,
        page_size: int = 1000,
        poll_timeout: float | None = None,
        on_trouble: Callable[[str], None] | None = None,
        engineers: Engineers | None = None,
        with_files: Callable[[Inbound], Inbound] | None = None,
    ) -> None:
        self.transport = transport
        #: Fetches the files a direct message links (`ZulipChannel._with_files`).
        self.with_files = with_files
        self.state = state
        #: Kept current from the register answer and `user_group` events.
        self.engineers = engineers or Engineers()
        self.sink = sink
        self.stop = stop
        self.policy = policy
        self.page_size = page_size
        self.poll_timeout = poll_timeout
        #: Told why each retry of the loop is needed (the runtime tells an outage once); None: logged.
        self.on_trouble = on_trouble
        self.connected = False
        self.queue_id: str | None = None
        self._client: zulip.Client | None = None
        self._last_event_id = -1
        self._longpoll = 90.0
        stored = sink.get_cursor(CURSOR_KEY)
        self._cursor: int | None = int(stored) if stored and stored.lstrip("-").isdigit() else None
        self._pending_cursor: int | None = None
        self._flushed_at = time.monotonic()
        self._seen: set[int] = set()
        #: Held while the worker talks to the sink; `_closed` shuts the gate for good.
        self._gate = threading.Lock()
        self._closed = False
        self._done = threading.Event()
        self._error: BaseException | None = None

    # -- the loop ----------------------------------------------------------------
    def run(self) -> None:
        """Receive until `stop` is set; re-raise what ended the worker otherwise."""
        worker = threading.Thread(target=self._work, name="zulip-receive", daemon=True)
        worker.start()
        while not self._done.wait(0.2):
            if self.stop.is_set():
                break
        with self._gate:  # waits for a hand-over in progress
            self._closed = True
            self.connected = False
            if self._error is None:
                self._flush_cursor()
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        try:
            while not self.stop.is_set():
                self._connect()
                try:
                    self._pump()
                except _QueueGone:
                    self.connected = False
                    self.queue_id = None  # nothing left to delete on the server
                    if self.stop.is_set():
                        break  # stopping: the queue going away is expected, not news
                    log.warning("Zulip event queue expired; registering again and catching up")
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the thread that called receive()
            self._error = exc
        finally:
            self.connected = False
            self._done.set()

    @contextlib.contextmanager
    def _sink_turn(self) -> Iterator[None]:
        """The worker's exclusive, still-open access to the sink."""
        with self._gate:
            if self._closed or self.stop.is_set():
                raise _Stopped
            yield

    def _retrying(self) -> tenacity.Retrying:
        """Unbounded back-off for the loop: an outage is waited out, not given up on.

        The first failure is retried at once: a long-poll whose answer was lost (a proxy or
        NAT cutting a waiting connection) is asked again right away, so that the messages it
        carried are not held up by a back-off meant for outages (1-2 s each, issue 15). A
        platform that is really down fails that retry too, and the back-off follows.

        Not a timeout: a request that went unanswered for its whole timeout (a minute for a
        long-poll, `long_poll_timeout`) is the server not answering, told at once
        (`_before_sleep`: `connected` false, `on_trouble`) rather than after another timeout.
        Nor `ZulipStopping`: the channel was closed.
        """
        backoff = rate_aware_wait(self.policy, self.transport.note_rate_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if state.attempt_number == 1 and not isinstance(exc, (ZulipRateLimited, ZulipTimedOut)):
                return 0.0
            return backoff(state)

        return tenacity.Retrying(
            stop=tenacity.stop_never,
            wait=wait,
            retry=tenacity.retry_if_exception_type(ZulipUnavailable)
            & tenacity.retry_if_not_exception_type(ZulipStopping),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._before_sleep,
        )

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Stopped

    def _before_sleep(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if state.next_action is not None and state.next_action.sleep == 0:
            log.debug("Zulip request failed (%s); trying again at once", exc)
            return
        self.connected = False
        wait = state.next_action.sleep if state.next_action else 0
        if self.on_trouble is None:
            log.warning("Zulip unavailable (%s); retrying in %.1fs", exc, wait)
        else:
            log.debug("Zulip unavailable (%s); retrying in %.1fs", exc, wait)
            self.on_trouble(str(exc))

    def _connect(self) -> None:
        for attempt in self._retrying():
            with attempt:
                if self.stop.is_set():
                    raise _Stopped
                if self._client is None:
                    self._client = self.transport.new_client()
                self._register()
                self._catch_up()
        self.connected = True

    # -- register and catch up ---------------------------------------------------------
    def _call(
        self, method: str, url: str, request: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        assert self._client is not None
        try:
            return self.transport.call(self._client, method, url, request, timeout=timeout, sleep=self._sleep)
        except ZulipApiError as exc:
            if exc.code in ("INVALID_API_KEY", "USER_DEACTIVATED", "UNAUTHORIZED"):
                raise PermanentChannelError(f"Zulip rejected the bot's credentials ({exc.code}): {exc.msg}") from None
            raise

    def _register(self) -> None:
        if self.queue_id is not None:
            self._forget_queue()
        try:
            res = self._call(
                "POST",
                "register",
                {
                    "event_types": EVENT_TYPES,
                    "fetch_event_types": FETCH_EVENT_TYPES,
                    "apply_markdown": False,
                    "client_gravatar": True,
                },
            )
        except ZulipApiError as exc:
            raise PermanentChannelError(f"Zulip refused to register an event queue: {exc}") from None
        self.queue_id = res["queue_id"]
        self._last_event_id = int(res.get("last_event_id", -1))
        if isinstance(res.get("max_file_upload_size_mib"), int):
            self.state.max_file_upload_mib = res["max_file_upload_size_mib"]
        if isinstance(res.get("max_message_length"), int):
            self.state.max_message_length = res["max_message_length"]
        self._longpoll = float(res.get("event_queue_longpoll_timeout_seconds") or 90)
        if isinstance(res.get("subscriptions"), list):
            self.state.apply_subscriptions(res["subscriptions"])
        if isinstance(res.get("realm_user_groups"), list):
            self.engineers.load_groups(res["realm_user_groups"])
        log.info("Zulip event queue registered")

    def _forget_queue(self) -> None:
        """Best effort: tell the server we no longer need the old queue."""
        queue_id, self.queue_id = self.queue_id, None
        if queue_id is None or self._client is None:
            return
        try:
            self.transport.call(self._client, "DELETE", "events", {"queue_id": queue_id}, timeout=FORGET_QUEUE_TIMEOUT)
        except (ZulipApiError, ZulipUnavailable):
            pass

    def _catch_up(self) -> None:
        horizon = self._newest_id()
        if self._cursor is None:
            # First start ever: history from before the bot existed is not replayed.
            # Stored at once (0 for an empty realm) so a re-registration catches up from here.
            start = horizon if horizon is not None else 0
            with self._sink_turn():
                self.sink.set_cursor(CURSOR_KEY, str(start))
            self._cursor = start
            log.info("no stored Zulip cursor: starting after message %s", start)
            return
        self._catch_up_edits()
        found: dict[int, dict[str, Any]] = {}
        narrows = [[{"operator": "is", "operand": "dm"}]]
        if self.state.stream_id is not None:
            narrows.append([{"operator": "stream", "operand": self.state.stream_id}])
        for narrow in narrows:
            for res in pages(partial(self._messages_after, narrow), self._cursor, _next_anchor):
                found.update((int(m["id"]), m) for m in res.get("messages", []))
        if found:
            log.info("caught up on %d Zulip message(s) since %s", len(found), self._cursor)
        # Handed over a page at a time (one transaction each): `stop` waits for one page at most.
        ordered = [found[mid] for mid in sorted(found)]
        for start in range(0, len(ordered), HAND_OVER_PAGE):
            with self._sink_turn():
                self._handle_many(
                    ordered[start : start + HAND_OVER_PAGE],
                    safe_upto=horizon if horizon is not None else -1,
                    backlog=True,
                )
        with self._sink_turn():
            self._flush_cursor()

    def _catch_up_edits(self) -> None:
        """Hand over the edits of direct messages up to the cursor that no queue told of.

        The catch-up after the cursor reads messages with the words they have by then, but a DM at
        or before it is stored with the words it had when it came: an edit of it made while no queue
        listened (the bot stopped, the queue expired, an outage) reached nobody. So the newest
        EDITS_PAGE messages up to the cursor are read again, and each DM among them edited since the
        message at the cursor was sent is handed over as the live edit would have been
        (`edit_to_inbound`: the same key of message, edit time and words), so that an edit handled
        live, or by an earlier catch-up, changes nothing. The cursor stays where it is: it counts
        messages, not edits.

        Why "since the message at the cursor": the bot was listening when its cursor passed that
        message, after it was sent, so an older edit reached it through a queue, or was in the words
        a catch-up read (the cursor passes the bot's own post of such a message in its case topic
        too). Only the server's times are compared. The realm's edit window needs no reading: no
        edit is made after its message's window closed, and an edit made in a long outage, of a
        message whose window has closed since, is still found.

        What this cannot tell apart: a DM that a catch-up read already edited, when the cursor is
        still at it (or at a message of the same second as the edit) at the next catch-up, as after
        the bot is killed before its own posts moved the cursor: its edit is added once more, in the
        words the case has already.

        Files the edit added are not fetched: the words before it are not known here. A failure to
        read the messages is logged and the catch-up goes on without these edits: they are looked
        for again at the next one.
        """
        request = {
            "anchor": str(self._cursor),
            "include_anchor": True,
            "num_before": EDITS_PAGE,
            "num_after": 0,
            "apply_markdown": False,
        }
        self._check_stop()
        try:
            page = self._call("GET", "messages", request).get("messages", [])
        except ZulipStopping:
            raise
        except (ZulipApiError, ZulipUnavailable) as exc:
            log.warning("cannot read Zulip messages for edits made while not receiving (%s); not caught up now", exc)
            return
        since = int(page[-1].get("timestamp", 0)) if page else 0  # the message at the cursor (oldest first)
        for message in page:
            edited_at = message.get("last_edit_timestamp")
            if message.get("type") != "private" or not isinstance(edited_at, int) or edited_at < since:
                continue
            try:
                edit = edit_to_inbound(
                    {"content": message["content"], "edit_timestamp": edited_at}, message, self.state
                )
            except Exception:
                # As for a live edit (`_edit`): logged whole, and the channel goes on.
                log.exception(
                    "cannot read the edit of Zulip message %s; skipped", message.get("id"), extra={"channel": "zulip"}
                )
                continue
            if edit is not None:  # None: the bot's own, a group DM
                with self._sink_turn():
                    self.sink.deliver(edit)

    def _messages_after(self, narrow: list[dict[str, Any]], anchor: int) -> dict[str, Any]:
        """One page of `narrow`: the messages after `anchor`, oldest first."""
        self._check_stop()
        return self._call(
            "GET",
            "messages",
            {
                "anchor": str(anchor),
                "include_anchor": False,
                "num_before": 0,
                "num_after": self.page_size,
                "narrow": narrow,
                "apply_markdown": False,
            },
        )

    def _newest_id(self) -> int | None:
        res = self._call(
            "GET", "messages", {"anchor": "newest", "num_before": 0, "num_after": 0, "apply_markdown": False}
        )
        ids = [int(m["id"]) for m in res.get("messages", [])]
        return max(ids) if ids else None

    # -- events ------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self.stop.is_set():
            for attempt in self._retrying():
                with attempt:
                    events = self._poll()
            self.connected = True
            # Messages in a row go over together; other events (stream changes) apply in between.
            run: list[dict[str, Any]] = []
            for index, event in enumerate(events):
                if event.get("type") == "message":
                    run.append(event["message"])
                    if index + 1 < len(events) and events[index + 1].get("type") == "message":
                        continue
                # An edit's message (and what is left of a moved topic) is read before the sink's turn,
                # as a long-poll is: `stop` never waits on it.
                edit = move = None
                if event.get("type") == "update_message":
                    edit, move = self._edit(event), self._whole_topic_moved(event)
                with self._sink_turn():
                    if run:
                        self._handle_many(run, safe_upto=None)
                        run = []
                    elif edit is not None or move is not None:
                        if move is not None:  # first: an edit moved with it is mirrored in the new topic
                            self.sink.topic_renamed(CHANNEL, move.old, move.new)
                        if edit is not None:
                            self.sink.deliver(edit)
                    else:
                        self._on_event(event)
                # Acknowledged with the next poll only once handled.
                self._last_event_id = max(self._last_event_id, int(event.get("id", -1)))
            if time.monotonic() - self._flushed_at > SKIPPED_CURSOR_FLUSH_SECONDS:
                with self._sink_turn():
                    self._flush_cursor()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "stream":
            self.state.apply_stream_event(event)
        elif kind == "user_group":
            self.engineers.apply_event(event)
        elif kind == "subscription" and event.get("op") == "remove":
            if any(s.get("stream_id") == self.state.stream_id for s in event.get("subscriptions", [])):
                self.state.apply_subscriptions([])

    def _edit(self, event: dict[str, Any]) -> Inbound | None:
        """The edit an `update_message` event tells of, as an Inbound, if the bot handles it: the message
        is read (`GET /messages/{id}`: the event does not say to whom it went), retried through an
        outage like a long-poll; one the server no longer shows the bot (deleted) is skipped."""
        mid = edited_message_id(event, self.state)
        if mid is None:
            return None
        try:
            for attempt in self._retrying():
                with attempt:
                    message = self._call("GET", f"messages/{mid}", {"apply_markdown": False}).get("message")
        except ZulipApiError as exc:
            log.info("cannot read edited Zulip message %s (%s); its edit is skipped", mid, exc)
            return None
        try:
            inbound = edit_to_inbound(event, message, self.state) if isinstance(message, dict) else None
        except Exception:
            # As for a message (`_handle_many`): logged whole, and the channel goes on.
            log.exception("cannot read the edit of Zulip message %s; skipped", mid, extra={"channel": "zulip"})
            return None
        return None if inbound is None else self._edit_files(inbound, str(event.get("orig_content") or ""))

    def _whole_topic_moved(self, event: dict[str, Any]) -> TopicMove | None:
        """The move an `update_message` event tells of, if it took a whole topic of the support stream
        to another (`topic_move`); None for a part of a topic, which leaves the case where the rest
        of it is. A move of the message `first` and every later one took the whole topic when the
        old name keeps no message older than `first`: one newer than the move there (posted after
        it, as Zulip's notice of the move may be) is no part of it. Asked of the server, retried
        through an outage like a long-poll; if it refuses, the move is taken as partial (logged)."""
        move = topic_move(event, self.state)
        if move is None or move.whole is False:
            return None
        if move.whole:
            return move
        narrow = [
            {"operator": "stream", "operand": self.state.stream_id},
            {"operator": "topic", "operand": move.old},
        ]
        request = {
            "anchor": str(move.first),
            "include_anchor": False,
            "num_before": 1,
            "num_after": 0,
            "narrow": narrow,
            "apply_markdown": False,
        }
        try:
            for attempt in self._retrying():
                with attempt:
                    left = self._call("GET", "messages", request).get("messages", [])
        except ZulipApiError as exc:
            log.warning("cannot tell whether topic %r moved whole (%s); its case stays under that name", move.old, exc)
            return None
        if left:
            log.info("part of topic %r moved to %r; its case stays under the old name", move.old, move.new)
            return None
        return move

    def _edit_files(self, inbound: Inbound, before: str) -> Inbound:
        """`inbound` with the files its edit added, fetched as a new message's are: those the message
        linked `before` came with it and are on the case already, so they are not fetched again."""
        earlier = {path for _name, path in upload_links(before)}
        added = [f"[{name}]({path})" for name, path in upload_links(inbound.text) if path not in earlier]
        if not added:
            return inbound
        fetched = self._fetch_files(dataclasses.replace(inbound, text="\n".join(added)))
        return dataclasses.replace(inbound, attachments=fetched.attachments)

    def _poll(self) -> list[dict[str, Any]]:
        """One long-poll of the queue (the worker may be abandoned while it waits)."""
        request = {"queue_id": self.queue_id, "last_event_id": self._last_event_id}
        timeout = self.poll_timeout or long_poll_timeout(self._longpoll)
        try:
            result = self._call("GET", "events", request, timeout=timeout)
        except ZulipTimedOut:
            raise ZulipTimedOut(
                f"Zulip did not answer the event long-poll within {timeout:g}s, though it answers"
                f" one within {HEARTBEAT_MAX_SECONDS:g}s (a heartbeat at the latest): the server is not answering"
            ) from None
        except ZulipApiError as exc:
            if exc.code != "BAD_EVENT_QUEUE_ID":
                # Any other refusal of our queue: start over with a fresh one.
                log.warning("Zulip refused GET /events (%s); registering again", exc)
            raise _QueueGone from None
        return list(result.get("events", []))

    # -- handing messages over -----------------------------------------------------------
    def _handle_many(self, messages: list[dict[str, Any]], *, safe_upto: int | None, backlog: bool = False) -> None:
        """Deliver messages (in id order) once; `safe_upto`: the highest id the cursor may take now (None: any)."""
        items: list[tuple[Inbound, tuple[str, str] | None]] = []
        moved_to = self._cursor
        held = 0  # bytes of files in `items`
        for message in messages:
            mid = int(message["id"])
            may_move = safe_upto is None or mid <= safe_upto
            if mid in self._seen or (self._cursor is not None and mid <= self._cursor):
                if may_move:
                    self._note_cursor(mid)
                continue
            self._seen.add(mid)
            try:
                inbound = to_inbound(message, self.state)
            except Exception:
                # A payload this code cannot read would otherwise stop the channel at every restart;
                # log it whole (with the traceback) and go on, so every other customer is still served.
                log.exception(
                    "cannot read Zulip message %s; skipped", mid, extra={"channel": "zulip", "message_id": mid}
                )
                inbound = None
            if inbound is None:
                if may_move:
                    self._note_cursor(mid)
                continue
            inbound = self._fetch_files(inbound)
            cursor = None
            if may_move and (moved_to is None or mid > moved_to):
                cursor, moved_to = (CURSOR_KEY, str(mid)), mid
            items.append((inbound, cursor))
            held += sum(len(file.data or b"") for file in inbound.attachments)
            if held > HELD_FILE_BYTES:  # files are big: hand over what is fetched before fetching more
                self.sink.deliver_many(items, backlog=backlog)
                self._cursor = moved_to
                items, held = [], 0
        if items:
            self.sink.deliver_many(items, backlog=backlog)
            self._cursor = moved_to
            self._prune_seen()

    def _fetch_files(self, inbound: Inbound) -> Inbound:
        """`inbound` with the files of a direct message, or of a slash command in a case topic (an
        engineer's `/reply` or `/note`), fetched; without them if that fails unexpectedly (the words
        still count: the message is handled, the failure logged). Files engineers share among
        themselves in a topic are not fetched: only a command can send or keep them."""
        if self.with_files is None:
            return inbound
        if inbound.kind != "direct" and not inbound.text.lstrip().startswith("/"):
            return inbound
        try:
            return self.with_files(inbound)
        except Exception:
            log.exception("cannot fetch the files of Zulip message %s; handled without them", inbound.message_id)
            return inbound

    def _note_cursor(self, mid: int) -> None:
        if self._cursor is None or mid > self._cursor:
            self._pending_cursor = max(self._pending_cursor or mid, mid)

    def _flush_cursor(self) -> None:
        """Store the cursor moved past messages that needed no handling (the bot's own, …).

        Not urgent: such messages are only skipped again after a restart. So it is
        written at most every SKIPPED_CURSOR_FLUSH_SECONDS while running (and on the
        way out), rather than costing a database write for every message the bot sends.
        """
        self._flushed_at = time.monotonic()
        pending, self._pending_cursor = self._pending_cursor, None
        if pending is not None and (self._cursor is None or pending > self._cursor):
            self.sink.set_cursor(CURSOR_KEY, str(pending))
            self._cursor = pending

    def _prune_seen(self) -> None:
        if len(self._seen) > 10000 and self._cursor is not None:
            self._seen = {i for i in self._seen if i > self._cursor}

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stopped

    def close(self) -> None:
        """Drop the server-side queue (best effort)."""
        self._forget_queue()
