"""The outside world: one module (or folder) per channel behind `adapters.channel`.

Only code in this package reads or writes platform JSON. The router and the
store never import from here; `bot.runtime` is the one place that wires a
channel in.

How a channel is laid out (Zulip and Mastodon do it; email follows). A
channel small enough for one module is that module (`console.py`); any other
is a package whose `__init__` exports the `<Name>Channel`, its `<Name>Tuning`
(one frozen dataclass of knobs, passed as `tuning=`: `request_timeout`,
`send_retry`, `receive_retry`, `max_rate_wait`, then its own) and its
`CURSOR_KEY`. Its modules are public and named by role, the same name for
the same role:

    channel    the Channel subclass and its Tuning: start, receive, send, close
    startup    what start checks and learns (credentials, limits, settings)
    receive    the receive loop: catch-up from the cursor, then stream or long-poll
    inbound    a platform message → `Inbound` (pure)
    outbound   an `Outbound` row → posts, each posted once
    reconcile  which parts of a retried row an earlier attempt already posted
    compose    message bodies: markup, limits, splitting (pure)
    transport  the platform's client: requests, errors, bounded retries
    pacing     staying under the platform's rate limits

and modules for what only one platform has (`zulip/state.py`,
`zulip/markup.py`, `zulip/directory.py`, `mastodon/stream.py`,
`mastodon/html_text.py` …). Shared by all: `channel` (the interface),
`backoff` (exponential back-off with jitter),
`ratelimit` (reading the rate-limit headers), `paging` (walking a history a
page at a time), `topics` (case topic names), `download` (files fetched with
a cap, their type sniffed), `html_text` (HTML to plain text: Mastodon
statuses, HTML-only mail). Every module of a channel logs
to `deskbot.adapters.<channel name>`; the shared ones to `deskbot.adapters`.
"""
