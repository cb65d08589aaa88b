"""The mail reader fuzzed: hostile but plausible raw mails, read as the email channel reads them.

The `email` target of bench/fuzz.py with a small budget: mails of real shapes (Gmail, Outlook
and Apple Mail replies, HTML-only, files, forwarded messages) and broken ones (boundaries
missing or unterminated, lying charsets, bad base64, malformed encoded words, bad folding,
NUL and bare CR, deep nesting, garbage in every header the desk routes by) go through
`read_mail`, `read_headers` and `read_text_parts` with the arguments `receive` gives them,
then `mail_to_inbound`. None may raise or pass the time limit, and each `Mail` must be what
`reading` promises: no controls or lone surrogates in its text, addresses and ids; a text
that is the sender's own lines, never emptied; files within the limit; mail from robots and
from the desk itself never to be answered; a forged DMARC pass below the trusted server's
verdict never believed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from bench.fuzz import fuzz_email, run

INPUTS = 300
#: Seconds one reader may take on one mail. The benchmark's 2 s, with room for a loaded machine:
#: a 1 MiB HTML part, the bound the reader sets itself, takes about 4 s here.
LIMIT = 10.0


@pytest.fixture
def alarm() -> Iterator[None]:
    """`run` takes SIGALRM for its time limit: pytest-timeout's alarm is given back afterwards."""
    handler = signal.getsignal(signal.SIGALRM)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    yield
    signal.signal(signal.SIGALRM, handler)
    if remaining:
        signal.setitimer(signal.ITIMER_REAL, max(remaining - (time.monotonic() - started), 0.001))


def test_no_raw_mail_breaks_the_readers(alarm: None) -> None:
    tally = run("email", fuzz_email, INPUTS, seed=1, limit=LIMIT)
    assert tally.inputs == INPUTS
    assert (tally.errors, tally.hung) == (0, 0), tally.examples
