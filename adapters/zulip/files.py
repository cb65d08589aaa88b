"""Files on Zulip: a customer's uploads fetched, and files uploaded into a case topic, linked safely.

Inbound: a direct message's content (raw markdown, `apply_markdown=false`)
links each upload as `[name](/user_uploads/…)`. The bot fetches each with its
own credentials (Basic auth: Zulip serves `/user_uploads/` to whoever may see
a message that references the file), streamed with a byte cap
(`adapters.download`): the lower of DESKBOT_MAX_ATTACHMENT_MB and the
server's `max_file_upload_size_mib`.

Outbound: each file an outbox row carries (a customer's, under their words in
the case topic; an engineer's, in the DM to a Zulip customer) is uploaded
(`POST /user_uploads`) once: where it went is recorded in the store at once (`Channel.files`), so a
retried row links the same upload and its text stays the same, which lets the
retry find the message an earlier attempt posted. A line links each file as
`[name](/user_uploads/…)`, the name written with `adapters.markup.inert`: a
code span is rendered before links, so nothing in the name can close the
bracket, and no mention, link or image inside it acts. The path is the
server's answer, kept only if it is a plain `/user_uploads/` path. A file the
row says was left out (`OutboundFile.left_out`) is named with that sentence; one a direct row
cannot carry after all (its bytes gone, Zulip refusing the upload) with the row's `unsent`
sentence, and named back to the dispatcher (`Sent.unsent_files`), which tells the engineers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from adapters.channel import Attachment, FileStore, Outbound, OutboundFile, TransientSendError, size_text
from adapters.download import DownloadFailed, clean_name, fetch
from adapters.markup import inert

if TYPE_CHECKING:  # httpx stays off `deskbot run`'s start-up path (see adapters.download)
    import httpx

log = logging.getLogger("deskbot.adapters.zulip")

#: An upload as the web app and the API link it in a message's markdown.
_UPLOAD_LINK = re.compile(r"\[([^\]\n]*)\]\((/user_uploads/[^)\s]+)\)")
#: An upload's path wherever the content links it.
_UPLOAD_PATH = re.compile(r"\((/user_uploads/[^)\s]+)\)")
#: What an upload's path may look like to be linked as is.
_SAFE_PATH = re.compile(r"/user_uploads/[A-Za-z0-9_.%/-]+")
#: How many files of one message are fetched at most (the rest are named as not kept).
MAX_FILES = 20


class UploadRefused(Exception):
    """Zulip refused to store the file (its size or type): the line says so instead of linking it."""


def upload_links(content: str) -> list[tuple[str, str]]:
    """(name, path) of each distinct upload linked in `content`, in order: the name is the link's
    text, or the path's last part where the text cannot be told (a name holding brackets)."""
    named = {path: name for name, path in _UPLOAD_LINK.findall(content)}
    found: dict[str, str] = {}
    for path in _UPLOAD_PATH.findall(content):
        found.setdefault(path, clean_name(named.get(path) or unquote(path.rsplit("/", 1)[-1])))
    return [(name, path) for path, name in found.items()][:MAX_FILES]


def without_upload_links(content: str) -> str:
    """`content` with each `[name](/user_uploads/…)` written as its name alone, and a bare upload
    path dropped: what an engineer's words say once their files travel as files."""
    content = _UPLOAD_LINK.sub(lambda m: m.group(1), content)
    return _UPLOAD_PATH.sub("", content).strip()


def fetch_uploads(
    http: httpx.Client, site: str, auth: tuple[str, str], content: str, limit: int
) -> tuple[Attachment, ...]:
    """The files a message links, fetched with the bot's credentials; one that fails is logged and
    marked `failed` (an engineer is told; a customer's message goes on without it)."""
    files = []
    for name, path in upload_links(content):
        try:
            files.append(fetch(http, site.rstrip("/") + path, name=name, limit=limit, auth=auth))
        except DownloadFailed as error:
            log.warning("an upload could not be fetched: %s", error)
            files.append(Attachment(name, "application/octet-stream", 0, None, failed=error.reason))
    return tuple(files)


def file_lines(
    message: Outbound,
    store: FileStore | None,
    upload: Callable[[str, bytes], str],
    limit: int,
) -> tuple[str, dict[int, str]]:
    """The lines that show `message.files`: each uploaded (once) and linked, or said not to be kept;
    and, for a direct row, the files it cannot carry after all, each with why (`Sent.unsent_files`)."""
    lines = []
    unsent: dict[int, str] = {}
    for file in message.files:
        line, why = _line(message, file, store, upload, limit)
        lines.append(line)
        if why is not None:
            unsent[file.id] = why
    return "\n".join(lines), unsent


def _line(
    message: Outbound, file: OutboundFile, store: FileStore | None, upload: Callable[[str, bytes], str], limit: int
) -> tuple[str, str | None]:
    label = inert(file.name) or "file"
    if file.left_out is not None:  # a direct row: the sentence is in the reader's language
        return f"- {label} ({size_text(file.size)}): {file.left_out}", None
    if file.refused_over is not None:
        return f"- {label} ({size_text(file.size)}) was not kept: over the {size_text(file.refused_over)} limit", None
    if file.size > limit:
        over = f"over Zulip's {size_text(limit)} limit"
        return _not_carried(message, file, label, f"was not uploaded: {over}", over)
    if store is None:
        raise TransientSendError(f"outbox row {message.outbox_id}: no file store to read its files from")
    path = store.uploaded(file.id, "zulip")
    if path is None:
        data = store.data(file.id)
        if data is None:
            return _not_carried(message, file, label, "is no longer stored", "its bytes are no longer stored")
        try:
            path = upload(upload_name(file.name), data)
        except UploadRefused as refused:
            said = f"could not be uploaded: {inert(str(refused))}"
            return _not_carried(message, file, label, said, f"Zulip refused the upload: {refused}")
        if not _SAFE_PATH.fullmatch(path):
            raise TransientSendError(f"outbox row {message.outbox_id}: Zulip answered an unexpected upload path")
        store.record_upload(file.id, "zulip", path)
    return f"- [{label}]({path}) ({size_text(file.size)}, {file.media_type})", None


def _not_carried(message: Outbound, file: OutboundFile, label: str, said: str, why: str) -> tuple[str, str | None]:
    """The line of a file the channel finds it cannot carry when sending, and why for the engineers.
    A direct row's reader gets the row's own sentence (`OutboundFile.unsent`, in their language) and
    the engineers are told in the case topic; in a case topic the engineers read it on the line."""
    if message.kind != "direct":
        return f"- {label} ({size_text(file.size)}) {said}", None
    if file.unsent is None:  # a row written before rows carried the sentence
        return f"- {label} ({size_text(file.size)}) {said}", why
    return f"- {label} ({size_text(file.size)}): {file.unsent}", why


def upload_name(name: str) -> str:
    """The file name sent with an upload: letters, digits, `.`, `-`, `_` (Zulip puts it in the path)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe[:100] or "file"


def upload_answer(result: dict[str, Any]) -> str:
    """The path of an upload from `POST /user_uploads`'s answer (`url`, or `uri` before Zulip 9)."""
    return str(result.get("url") or result.get("uri") or "")
