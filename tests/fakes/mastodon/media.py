"""Media uploads of the fake Mastodon, a mixin of `FakeMastodon`: `POST /api/v2/media`,
`GET /api/v1/media/:id`, and the `media_ids` a status takes, as Mastodon 4.x answers them.

* `POST /api/v2/media` (multipart, field `file`, optional `description`): the type must
  be one of the instance's `supported_mime_types` and within its image or video size
  limit (audio counts as video), else 422. An image answers 200 with its `url`; a video
  or audio file (and any file while `media_async` is set) answers 202 with `url` null,
  and is processed for `media_processing` seconds.
* `GET /api/v1/media/:id`: the uploader's own unattached media only (Mastodon looks
  among `media_attachments.where(status_id: nil)`), 206 while processing, 200 once ready.
* A status's `media_ids`: more than the instance's `max_media_attachments`, an id that
  is not the author's unattached medium, one still processing, or a video or audio
  file beside anything else answer 422 (`PostStatusService#validate_media!`).

The file is then served, public, from the instance's file host (`media_files`), so a
customer can fetch it; `uploads` keeps each medium with its bytes for tests.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from typing import Any

from .model import Account, ApiError

_media_ids = itertools.count(117441000000000000)


@dataclass
class Medium:
    id: str
    owner: str
    type: str
    mime_type: str
    data: bytes
    file_name: str
    description: str | None
    ready_at: float
    status_id: str | None = None
    entity: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return time.time() >= self.ready_at


def multipart(ctype: str, raw: bytes) -> tuple[dict[str, list[str]], list[tuple[str, str, str, bytes]]]:
    """The fields and the files, as (field, filename, content type, bytes), of a multipart body."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
    fields: dict[str, list[str]] = {}
    files = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files.append((str(name), part.get_filename(), part.get_content_type(), payload))
        else:
            fields.setdefault(str(name), []).append(payload.decode())
    return fields, files


def _kind(mime_type: str) -> str:
    major = mime_type.partition("/")[0]
    return {"image": "gifv" if mime_type == "image/gif" else "image", "video": "video", "audio": "audio"}.get(
        major, "unknown"
    )


class MediaRoutes:
    """The media routes (see the module docstring); `FakeMastodon` sets the attributes."""

    url: str
    media_files: dict[str, bytes | None]
    uploads: dict[str, Medium]
    media_processing: float
    media_async: bool
    image_size_limit: int | None
    video_size_limit: int | None

    def media_config(self, configuration: dict[str, Any]) -> dict[str, Any]:
        """The instance entity's configuration with the limits this fake was given."""
        media = configuration["media_attachments"]
        if self.image_size_limit is not None:
            media["image_size_limit"] = self.image_size_limit
        if self.video_size_limit is not None:
            media["video_size_limit"] = self.video_size_limit
        return configuration

    def _limits(self) -> tuple[list[str], int, int, int]:
        from .model import load_payload

        config = self.media_config(load_payload("instance_v2")["configuration"])
        media = config["media_attachments"]
        return (
            media["supported_mime_types"],
            media["image_size_limit"],
            media["video_size_limit"],
            config["statuses"]["max_media_attachments"],
        )

    def _r_media_post(self, account, params, query, form, handler):
        files = form.get("__files__") or []
        upload = next((f for f in files if f[0] == "file"), None)
        if upload is None:
            raise ApiError(422, "Validation failed: File can't be blank")
        _field, file_name, mime_type, data = upload
        types, image_limit, video_limit, _per_status = self._limits()
        if mime_type not in types:
            raise ApiError(422, f"Validation failed: File content type is invalid ({mime_type})")
        limit = image_limit if mime_type.startswith("image/") else video_limit
        if len(data) > limit:
            raise ApiError(422, f"Validation failed: File file size must be less than {limit // (1024 * 1024)} MB")
        kind = _kind(mime_type)
        asynchronous = self.media_async or kind in ("video", "audio")
        medium = Medium(
            id=str(next(_media_ids)),
            owner=account.id,
            type=kind,
            mime_type=mime_type,
            data=data,
            file_name=file_name,
            description=(form.get("description") or [None])[0],
            ready_at=time.time() + (self.media_processing if asynchronous else 0.0),
        )
        self.uploads[medium.id] = medium
        return (202 if asynchronous else 200), self._medium_json(medium), None

    def _r_media(self, account, params, query, form, handler):
        medium = self.uploads.get(params["id"])
        if medium is None or medium.owner != account.id or medium.status_id is not None:
            raise ApiError(404, "Record not found")
        return (200 if medium.ready else 206), self._medium_json(medium), None

    def take_media(self, account: Account, media_ids: list[str]) -> list[dict[str, Any]]:
        """The media entries of a new status, or ApiError(422) as Mastodon refuses them; marks them attached
        only once the caller posts (`attach`)."""
        if not media_ids:
            return []
        _types, _image, _video, per_status = self._limits()
        if len(media_ids) > per_status:
            raise ApiError(422, f"Validation failed: Cannot attach more than {per_status} files")
        media = [self.uploads.get(m) for m in media_ids]
        missing = [m for m, found in zip(media_ids, media, strict=True) if found is None]
        missing += [m.id for m in media if m is not None and (m.owner != account.id or m.status_id is not None)]
        if missing:
            raise ApiError(422, f"Media {', '.join(missing)} not found or already attached to another post")
        found = [m for m in media if m is not None]
        if len(found) > 1 and any(m.type in ("video", "audio") for m in found):
            raise ApiError(422, "Cannot attach a video to a post that already contains images")
        if not all(m.ready for m in found):
            raise ApiError(422, "Cannot attach files that have not finished processing. Try again in a moment!")
        return [self._medium_json(m) for m in found]

    def attach(self, media_ids: list[str], status_id: str) -> None:
        for media_id in media_ids:
            self.uploads[media_id].status_id = status_id

    def _medium_json(self, medium: Medium) -> dict[str, Any]:
        path = f"/system/media_attachments/files/{medium.id}/original/{medium.file_name}"
        if medium.ready:
            self.media_files[path] = medium.data
        url = self.url + path if medium.ready else None
        return {
            "id": medium.id,
            "type": medium.type,
            "url": url,
            "preview_url": url,
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": {},
            "description": medium.description,
            "blurhash": None,
        }
