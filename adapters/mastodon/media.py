"""An engineer's files as Mastodon media: what the instance takes, in which statuses, uploaded once.

What the instance takes is its own word, read at start from the instance
entity (`configuration.media_attachments`: `supported_mime_types`,
`image_size_limit`, `video_size_limit`; `configuration.statuses.
max_media_attachments`), judged on the type sniffed from the bytes. Audio
counts against the video limit, as Mastodon's `MediaAttachment` does. A file
it does not take (a log, a patch, a PDF) or one over its limit is left out
before the row is written (`MastodonChannel.cannot_carry`), so that the
customer's message and the case topic both say so.

Which statuses: at most `max_media_attachments` a status, and Mastodon
refuses a status holding a video or an audio file with anything else
(`PostStatusService#validate_media!`), so images go together, up to the
maximum, and each video or audio file goes alone; the groups ride on the
parts of the thread in order, with extra parts (the mention and a counter)
when there are more groups than parts of text.

Uploaded once: `POST /api/v2/media` answers 200 with the file ready, or 202
while the instance still processes it (video, large images); the media id
is recorded at once (`FileStore.record_upload`), so a retried row re-uses
it. A status may not carry media still processing, so each is awaited
(`GET /api/v1/media/:id` until its `url` is set), for a bounded time: past
it the send is tried again later, uploading nothing again. All of a row's
files are uploaded and awaited before its first status is posted
(`MediaUploader.prepare`): one that cannot go after all (its bytes no
longer stored, the upload refused, the medium removed) is named in the text
with the row's `unsent` sentence, and the engineers are told. (Media uploads
take no Idempotency-Key: an upload retried at once after a lost answer may
leave a second, unattached medium on the instance, which Mastodon removes
within a day; the customer only ever sees the recorded one.)
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mastodon.errors import MastodonAPIError, MastodonNotFoundError, MastodonServerError

from adapters.channel import FileRefusal, FileStore, Outbound, OutboundFile, TransientSendError, size_text

from .pacing import API
from .transport import Transport, describe

log = logging.getLogger("deskbot.adapters.mastodon")

#: Mastodon's own values (`MediaAttachment`, `Status::MEDIA_ATTACHMENTS_LIMIT`), for an instance
#: that does not say (as the recorded 4.7.3 instance entity has them).
DEFAULT_TYPES = (
    "image/jpeg image/png image/gif image/heic image/heif image/webp image/avif "
    "video/webm video/mp4 video/quicktime video/ogg audio/wave audio/wav audio/x-wav audio/x-pn-wave "
    "audio/vnd.wave audio/ogg audio/vorbis audio/mpeg audio/mp3 audio/webm audio/flac audio/aac "
    "audio/m4a audio/x-m4a audio/mp4 audio/3gpp video/x-ms-asf"
).split()
DEFAULT_IMAGE_LIMIT = 16 * 1024 * 1024
DEFAULT_VIDEO_LIMIT = 99 * 1024 * 1024
DEFAULT_PER_STATUS = 4
DEFAULT_DESCRIPTION_LIMIT = 1500


@dataclass(frozen=True)
class MediaLimits:
    """What the instance takes as media (see the module docstring)."""

    types: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_TYPES))
    image_limit: int = DEFAULT_IMAGE_LIMIT
    video_limit: int = DEFAULT_VIDEO_LIMIT
    per_status: int = DEFAULT_PER_STATUS
    description_limit: int = DEFAULT_DESCRIPTION_LIMIT

    @classmethod
    def of(cls, configuration: Any) -> MediaLimits:
        """From an instance entity's `configuration` (v2, or v1's which has the same fields)."""
        config = configuration if isinstance(configuration, dict) else {}
        media = config.get("media_attachments") if isinstance(config.get("media_attachments"), dict) else {}
        statuses = config.get("statuses") if isinstance(config.get("statuses"), dict) else {}
        types = media.get("supported_mime_types")

        def number(value: Any, default: int) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

        return cls(
            types=frozenset(t for t in types if isinstance(t, str))
            if isinstance(types, list)
            else frozenset(DEFAULT_TYPES),
            image_limit=number(media.get("image_size_limit"), DEFAULT_IMAGE_LIMIT),
            video_limit=number(media.get("video_size_limit"), DEFAULT_VIDEO_LIMIT),
            per_status=number(statuses.get("max_media_attachments"), DEFAULT_PER_STATUS),
            description_limit=number(media.get("description_limit"), DEFAULT_DESCRIPTION_LIMIT),
        )

    def refusal(self, file: OutboundFile) -> FileRefusal | None:
        """Why the instance would not take `file` as a medium, or None."""
        if file.media_type not in self.types:
            return FileRefusal("type", None, f"Mastodon takes images, video and audio only, not {file.media_type}")
        limit = self.image_limit if file.media_type.startswith("image/") else self.video_limit
        if file.size > limit:
            kind = "images" if file.media_type.startswith("image/") else "video and audio"
            return FileRefusal("size", limit, f"over the instance's {size_text(limit)} limit for {kind}")
        return None

    def groups(self, files: Iterable[OutboundFile]) -> list[list[OutboundFile]]:
        """The files as the statuses carry them: images together up to `per_status`, each video or
        audio file alone (Mastodon refuses them beside anything else), in the order given."""
        groups: list[list[OutboundFile]] = []
        images: list[OutboundFile] = []
        for file in files:
            if file.media_type.startswith("image/"):
                if len(images) == self.per_status:
                    images = []
                if not images:
                    groups.append(images)
                images.append(file)
            else:
                groups.append([file])
                images = []  # the next image starts a status after this one, keeping the order
        return groups


@dataclass(frozen=True)
class MediaUploader:
    """Uploads a row's files as media, each once, and waits until they are ready to post."""

    transport: Transport
    limits: MediaLimits
    #: How long a send waits for media the instance is still processing, and between looks.
    wait: float
    poll_interval: float
    attempts: int
    stop: threading.Event

    def prepare(
        self, message: Outbound, files: list[OutboundFile], store: FileStore | None
    ) -> tuple[dict[int, str], dict[int, str]]:
        """`files` as media ready to post, before any status is written (so that the text can name
        those that cannot go): the media id of each file that can, uploading those no earlier
        attempt uploaded; and why for each that cannot after all (`Sent.unsent_files`)."""
        if store is None:
            raise TransientSendError(f"outbox {message.outbox_id}: no file store to read its files from")
        ready: dict[int, str] = {}
        unsent: dict[int, str] = {}
        for file in files:
            media_id = store.uploaded(file.id, "mastodon")
            if media_id is None:
                data = store.data(file.id)
                if data is None:
                    unsent[file.id] = "its bytes are no longer stored"
                    continue
                try:
                    media_id = self._upload(file, data)
                except MastodonAPIError as error:
                    if isinstance(error, MastodonServerError):
                        raise
                    # Refused for good (its limits changed since start, or the token may not
                    # upload: start-up cannot tell without uploading): the rest still goes.
                    unsent[file.id] = f"Mastodon refused the upload: {describe(error)}" + (
                        " (the access token needs the write:media scope)" if _status(error) == 403 else ""
                    )
                    continue
                store.record_upload(file.id, "mastodon", media_id)
            if self._ready(message, media_id):
                ready[file.id] = media_id
            else:
                unsent[file.id] = "Mastodon removed the uploaded medium (no status took it within a day)"
        for file_id, why in unsent.items():
            log.error("mastodon: outbox %d: file %d not sent: %s", message.outbox_id, file_id, why)
        return ready, unsent

    def _upload(self, file: OutboundFile, data: bytes) -> str:
        api = self.transport.send
        stream = io.BytesIO(data)
        description = file.name[: self.limits.description_limit]
        call = partial(
            api.media_post, stream, mime_type=file.media_type, description=description, file_name=_upload_name(file)
        )
        medium = self.transport.request(API, call, stop=self.stop, attempts=self.attempts)
        return str(medium["id"])

    def _ready(self, message: Outbound, media_id: str) -> bool:
        """Wait (bounded) until the instance has processed `media_id`; False when it is gone."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                medium = self.transport.request(API, partial(self.transport.send.media, media_id), stop=self.stop)
            except MastodonNotFoundError:
                # Mastodon removes media no status took within a day: the bytes went with the upload.
                return False
            if medium.get("url"):
                return True
            if time.monotonic() >= deadline or self.stop.is_set():
                raise TransientSendError(
                    f"outbox {message.outbox_id}: medium {media_id} still processing after {self.wait:.0f}s",
                    retry_after=max(self.wait, 5.0),
                )
            self.stop.wait(self.poll_interval)


def _status(error: MastodonAPIError) -> int | None:
    """The HTTP status of a Mastodon.py API error (its second argument)."""
    args = error.args
    return args[1] if len(args) >= 2 and isinstance(args[1], int) else None


def _upload_name(file: OutboundFile) -> str:
    """The multipart file name: letters, digits, `.`, `-`, `_` (Mastodon keeps none, others show it)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in file.name).strip("._")
    return safe[:100] or "file"
