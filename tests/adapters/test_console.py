"""The console channel: case topics named as Zulip names them, quotes under a plain header."""

from __future__ import annotations

import io

from adapters.channel import Outbound, OutboundFile, Said
from adapters.console import ConsoleChannel

TOPIC = "#1 Acme: The NAS does not boot"


def printed(*rows: Outbound) -> str:
    out = io.StringIO()
    channel = ConsoleChannel("Acme", stdout=out)
    for row in rows:
        channel.send(row)
    return out.getvalue()


def test_case_topics_are_named_as_on_zulip() -> None:
    channel = ConsoleChannel("Acme")
    assert channel.case_topic(1, "Acme", "The NAS does not boot") == TOPIC
    assert channel.case_topic(2, "Acme", "\x1b[31mred\x1b[0m   alarm") == "#2 Acme: [31mred[0m alarm"
    assert channel.case_topic(3, "Acme", "x" * 80) == "#3 Acme: " + "x" * 50 + "…"


def test_a_quote_gets_a_plain_header_naming_who_said_it() -> None:
    customer = Said("Acme", "console", "Acme")
    engineer = Said("engineer@console", "console", role="engineer")
    assert printed(
        Outbound(1, "console", "topic", "", topic=TOPIC, quote="It beeps.\nTwice.", said=customer),
        Outbound(2, "console", "topic", "", topic=TOPIC, quote="Unplug it.", said=engineer),
    ) == (
        f"[{TOPIC}] Acme via console (Acme) wrote:\n"
        "    | It beeps.\n"
        "    | Twice.\n"
        f"[{TOPIC}] engineer@console replied to the customer via console:\n"
        "    | Unplug it.\n"
    )


def test_rows_without_said_print_as_before() -> None:
    assert printed(
        Outbound(1, "console", "topic", "**`Acme`** wrote:", topic=TOPIC, quote="hi"),
        Outbound(2, "console", "topic", "Incident #1 is resolved.", topic=TOPIC),
        Outbound(3, "console", "direct", "Hello\nthere", recipient="Acme"),
    ) == (
        f"[{TOPIC}] **`Acme`** wrote:\n"
        "    | hi\n"
        f"[{TOPIC}] Incident #1 is resolved.\n"
        "deskbot → Acme:\n"
        "  Hello\n"
        "  there\n"
    )


def test_text_of_a_rows_own_follows_the_header() -> None:
    row = Outbound(1, "console", "topic", "(edited)", topic=TOPIC, quote="hi", said=Said("Acme", "console"))
    assert printed(row) == f"[{TOPIC}] Acme via console wrote:\n(edited)\n    | hi\n"


def test_a_direct_row_names_the_files_it_carries() -> None:
    # The console cannot show a customer a file: it names each, as in a case topic, with the
    # row's own sentence when the file was left out.
    files = (
        OutboundFile(1, "core\n.png", "image/png", 2048),
        OutboundFile(2, "big.iso", "application/octet-stream", 9, left_out="Not sent: too large."),
    )
    assert printed(Outbound(1, "console", "direct", "See attached.", recipient="Acme", files=files)) == (
        "deskbot → Acme:\n"
        "  See attached.\n"
        "  + file 'core .png' (2.0 KB, image/png)\n"
        "  + file 'big.iso' (9 bytes, application/octet-stream): Not sent: too large.\n"
    )
