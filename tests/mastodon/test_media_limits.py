"""What a Mastodon instance takes as media, and in which statuses (`adapters.mastodon.media`)."""

from __future__ import annotations

from adapters.channel import OutboundFile
from adapters.mastodon import MastodonChannel
from adapters.mastodon.media import DEFAULT_IMAGE_LIMIT, MediaLimits
from tests.fakes.mastodon import FakeMastodon


def file(n: int, media_type: str, size: int = 10) -> OutboundFile:
    return OutboundFile(n, f"f{n}", media_type, size)


def test_images_go_together_and_video_or_audio_alone_in_order() -> None:
    limits = MediaLimits(per_status=2)
    files = [
        file(1, "image/png"),
        file(2, "image/jpeg"),
        file(3, "image/png"),
        file(4, "video/mp4"),
        file(5, "image/png"),
        file(6, "audio/mpeg"),
        file(7, "audio/ogg"),
    ]
    assert [[f.id for f in group] for group in limits.groups(files)] == [[1, 2], [3], [4], [5], [6], [7]]
    assert limits.groups([]) == []


def test_refusals_by_type_and_by_the_limit_of_the_kind() -> None:
    limits = MediaLimits(image_limit=100, video_limit=1000)
    assert limits.refusal(file(1, "text/plain")).reason == "type"  # type: ignore[union-attr]
    assert limits.refusal(file(2, "application/pdf")).reason == "type"  # type: ignore[union-attr]
    assert limits.refusal(file(3, "image/png", 100)) is None
    refused = limits.refusal(file(4, "image/png", 101))
    assert refused is not None and refused.reason == "size" and refused.limit == 100
    assert limits.refusal(file(5, "audio/mpeg", 1000)) is None  # audio counts against the video limit
    assert limits.refusal(file(6, "video/mp4", 1001)).limit == 1000  # type: ignore[union-attr]


def test_an_instance_that_says_little_or_odd_things_gets_mastodons_own_values() -> None:
    assert MediaLimits.of(None) == MediaLimits()
    odd = MediaLimits.of(
        {
            "media_attachments": {"supported_mime_types": "image/png", "image_size_limit": -1},
            "statuses": {"max_media_attachments": True},
        }
    )
    assert odd.image_limit == DEFAULT_IMAGE_LIMIT and odd.per_status == 4 and "image/png" in odd.types
    said = MediaLimits.of(
        {
            "media_attachments": {"supported_mime_types": ["image/png"], "video_size_limit": 5},
            "statuses": {"max_media_attachments": 8},
        }
    )
    assert said.types == frozenset({"image/png"}) and said.video_limit == 5 and said.per_status == 8


def test_the_channel_reads_the_limits_from_v1_when_v2_is_not_served() -> None:
    with FakeMastodon(instance_v2=False, image_size_limit=1000) as old:
        channel = MastodonChannel(old.url, "bot-token")
        try:
            channel.start()
            assert channel.cannot_carry(file(1, "image/png", 1001)).limit == 1000  # type: ignore[union-attr]
            assert channel.cannot_carry(file(2, "image/png", 1000)) is None
            assert channel.cannot_carry(file(3, "text/x-log")).reason == "type"  # type: ignore[union-attr]
        finally:
            channel.close()
