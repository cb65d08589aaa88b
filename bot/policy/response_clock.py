"""Whether a customer's message added to an open case starts its response clock (SPEC §1: "the
same target applies again each time the customer writes while the case awaits an engineer").

The earliest unanswered message sets the due time: a clock that runs is never started again, so
writing more never pushes the due time out. Once the team has answered (the clock is stopped, the
case waits on the customer), whatever the customer writes next asks the team for an answer, and
starts it, but for a bare thank-you ("Great, thanks!", "muito obrigado 🙏": `answers.thank_you`, the
whole message) with no file: it asks for nothing, and counted as a question it made the case due
again and, days later, "missed" for an answer nobody owed. A thank-you that carries a file (the
log asked for) or says anything more ("thanks, but it fails again") is a message like any other.

Pure: no database, no clock.
"""

from __future__ import annotations

from bot.policy.answers import thank_you


def starts_response_clock(text: str, *, with_files: bool, clock_running: bool) -> bool:
    """Whether a customer's message `text` (with files or not), added to an open case whose clock
    runs or not (`clock_running`: the case awaits the team), starts the clock from when it was
    written."""
    if clock_running:
        return False
    return with_files or not thank_you(text)
