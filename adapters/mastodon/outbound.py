"""deskbot's `Outbound` rows as Mastodon statuses: one thread a row, posted once.

A reply is a thread of `direct` statuses, each starting with the customer's
mention, part 1 answering the customer's status and each next part the one
before (`compose.thread_parts`). Every part carries the Idempotency-Key
`deskbot-<outbox id>-<part>`: when the answer to a POST is lost and the
transport retries at once, Mastodon gives back the status it already made.

That key is not the whole story. Mastodon keeps it one hour, and since its
2026 lock change a repeated key may answer HTTP 500 although the status
exists (mastodon/mastodon#40399): the outbox then retries the row later, with
`attempt > 1`, maybe hours later. So a retried row first looks for the parts
already posted (`reconcile.posted_parts`) and posts only the rest, the next
part answering the last one found. A look-up that fails for now makes the
send fail for now (TransientSendError), never post blind.

An engineer's files ride on the parts as media (`media.py`: grouped as the
instance allows, each uploaded once, its id recorded at once and re-used by a
retry, awaited while the instance processes it); a file the row says was
left out is named, with the row's sentence, at the end of the text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mastodon.errors import MastodonError, MastodonNetworkError, MastodonNotFoundError, MastodonServerError

from adapters.channel import FileStore, Outbound, OutboundFile, PermanentSendError, Sent, TransientSendError, size_text

from .compose import ReplyTooLong, media_part, mention_for, thread_parts
from .media import MediaUploader
from .mentions import third_party_mentions
from .pacing import STATUSES, Pacer
from .reconcile import posted_parts
from .transport import RateLimited, Transport, describe

log = logging.getLogger("deskbot.adapters.mastodon")


@dataclass(frozen=True)
class ReplyPoster:
    """Posts outbox rows as threads, for one signed-in account of one instance."""

    transport: Transport
    pacer: Pacer
    own_id: str
    domain: str
    max_characters: int
    #: The longest a send waits for the posting budget; beyond it, TransientSendError with retry_after.
    max_rate_wait: float
    #: Tries of one post.
    attempts: int
    stop: threading.Event
    #: Uploads an engineer's files as media (None: files are named, not sent).
    media: MediaUploader | None = None
    #: Where the bytes of a row's files wait (`Channel.files`, set late).
    files: Callable[[], FileStore | None] = lambda: None

    def send(self, message: Outbound) -> list[str]:
        """Post the reply as a thread of direct statuses; return the ids of all its parts."""
        if message.kind != "direct":
            raise PermanentSendError(
                f"the mastodon channel cannot send {message.kind!r} messages, only 'direct' (outbox {message.outbox_id})"
            )
        if not message.recipient:
            raise PermanentSendError(f"outbox {message.outbox_id} has no recipient")
        body = message.text if not message.quote else f"{message.text}\n\n{message.quote}"
        carried = [file for file in message.files if file.left_out is None]
        media: dict[int, str] = {}
        unsent: dict[int, str] = {}
        if carried and self.media is not None:
            with _send_errors(f"Mastodon did not take the media of outbox {message.outbox_id}"):
                media, unsent = self.media.prepare(message, carried, self.files())
            carried = [file for file in carried if file.id in media]
        left_out = _left_out_lines(message.files, unsent)
        if left_out:
            body = "\n".join([body, "", *left_out])
        groups = self.media.limits.groups(carried) if carried and self.media is not None else []
        mention = mention_for(message.recipient, self.domain)
        try:
            parts = thread_parts(mention, body, self.max_characters, statuses=len(groups))
        except ReplyTooLong as error:
            raise PermanentSendError(f"outbox {message.outbox_id}: {error}") from None
        # More groups of media than parts of text: the rest ride on parts of their own, numbered
        # out of the whole thread as the text's parts are.
        total = max(len(parts), len(groups))
        parts += [media_part(mention, n, total) for n in range(len(parts) + 1, len(groups) + 1)]
        # Composing neutralises every other mention; checked again here, by
        # Mastodon's rule, because a slip would message a stranger for good.
        strangers = [h for part in parts for h in third_party_mentions(part, message.recipient, self.domain)]
        if strangers:
            raise PermanentSendError(f"outbox {message.outbox_id}: would also mention {strangers}; not posted")
        ids: list[str] = []
        if message.attempt > 1:
            with _send_errors(f"cannot tell what outbox {message.outbox_id} already posted"):
                ids = posted_parts(self.transport, self.own_id, parts, message.conversation, self.stop)
            if ids:
                log.info(
                    "mastodon: outbox %d: %d of %d part(s) already posted", message.outbox_id, len(ids), len(parts)
                )
        missing = len(parts) - len(ids)
        wait = self.pacer.statuses_wait(missing) if missing else 0.0
        if wait > self.max_rate_wait:
            # Post a thread whole rather than half now and half hours later.
            raise TransientSendError(f"posting budget: no room for {missing} statuses now", retry_after=wait)
        reply_to = ids[-1] if ids else message.conversation
        for number in range(len(ids) + 1, len(parts) + 1):
            key = f"deskbot-{message.outbox_id}-{number}"
            media_ids = [media[file.id] for file in groups[number - 1]] if number <= len(groups) else []
            posted = self._post(
                parts[number - 1], reply_to, key, first=number == 1, media_ids=media_ids, language=message.lang
            )
            if number == 1 and not _mentions(posted, message.recipient, self.domain):
                # Taken, but addressed to nobody: the account is suspended, moved or gone, or its
                # server cannot be reached to resolve it (NOTES §8.5). The engineers must hear it.
                raise PermanentSendError(
                    f"outbox {message.outbox_id}: Mastodon took the reply but it reaches nobody: "
                    f"{message.recipient} could not be mentioned (account suspended, moved or gone?)"
                )
            reply_to = str(posted["id"])
            ids.append(reply_to)
        return Sent(ids, unsent_files=unsent) if unsent else ids

    def _post(
        self, text: str, reply_to: str | None, key: str, *, first: bool, media_ids: list[str], language: str | None
    ) -> Any:
        api = self.transport.send
        media = media_ids or None
        # Mastodon takes an ISO 639 code ("pt"), not a region; without one it tags the account's default.
        iso = language.partition("-")[0] if language else None

        def post(in_reply_to: str | None) -> Callable[[], Any]:
            return lambda: api.status_post(
                text,
                in_reply_to_id=in_reply_to,
                media_ids=media,
                visibility="direct",
                idempotency_key=key,
                language=iso,
            )

        with _send_errors("Mastodon did not take the status"):
            try:
                status = self.transport.request(STATUSES, post(reply_to), stop=self.stop, attempts=self.attempts)
            except MastodonNotFoundError:
                if not (first and reply_to):
                    raise
                # The customer deleted the status we answer: answer outside the thread.
                log.warning("mastodon: status %s is gone; replying without in_reply_to", reply_to)
                status = self.transport.request(STATUSES, post(None), stop=self.stop, attempts=self.attempts)
        return status


def _mentions(status: Any, recipient: str, local_domain: str) -> bool:
    """Does the posted `status` mention `recipient` (`user@domain`), so that it reaches them?"""
    wanted = recipient.lstrip("@").lower()
    for mention in status.get("mentions") or []:
        username, _, domain = str(mention.get("acct") or "").partition("@")
        if f"{username}@{domain or local_domain}".lower() == wanted:
            return True
    return False


def _left_out_lines(files: tuple[OutboundFile, ...], unsent: dict[int, str]) -> list[str]:
    """A line for each file the row does not carry: its name, its size, and the row's sentence
    saying why (in the customer's language): left out by the core (`left_out`), or found when
    sending not to go after all (`unsent`; a row written before rows carried that sentence gets
    English words). The name stays text: composing neutralises mentions."""
    lines = []
    for file in files:
        said = file.left_out or (file.unsent or "not sent" if file.id in unsent else None)
        if said:
            lines.append(f'- "{file.name}" ({size_text(file.size)}): {said}')
    return lines


@contextmanager
def _send_errors(doing: str) -> Iterator[None]:
    """Mastodon.py's errors as the channel's: worth retrying later, or never."""
    try:
        yield
    except RateLimited as error:
        raise TransientSendError(f"Mastodon rate limit: retry in {error.wait:.0f}s", retry_after=error.wait) from None
    except (MastodonNetworkError, MastodonServerError) as error:
        raise TransientSendError(f"{doing}: {describe(error)}") from None
    except MastodonError as error:
        raise PermanentSendError(f"{doing}: {describe(error)}") from None
