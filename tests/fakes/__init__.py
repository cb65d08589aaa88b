"""Fake platform servers speaking real HTTP on 127.0.0.1, built from ../shared/reference/.

One package per platform, laid out alike: `server` (the `Fake<Platform>` class
tests drive), `routes` (the HTTP side: the REST routes the real client
calls), `model` (the platform's state and rules, no HTTP), `limits` (rate limits and injected
faults), `payloads` (the reference's JSON shapes) and `__main__` (run it on
its own: `python -m tests.fakes.zulip --help`, `python -m tests.fakes.mastodon
--help`); then what only one platform has (Zulip's `openapi` contract,
Mastodon's `streaming`, `control` and `text`).
"""
