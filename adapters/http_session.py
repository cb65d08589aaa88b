"""What a `requests` session of a platform client reads from the environment, read once.

Both platform clients (`zulip`, Mastodon.py) talk through a `requests.Session`. With
`trust_env` on, requests walks the whole environment for proxy and CA-bundle variables on
every request: about 0.1 ms each, on the path of every answer. A running process's
environment does not change and each session talks to one site, so the answer is the same
every time: it is read once here and the walk is switched off.
"""

from __future__ import annotations

import os

import requests


def settle_environment(session: requests.Session, site: str) -> None:
    """Give `session` the proxies and CA bundle the environment names for `site`, once."""
    session.proxies.update(requests.utils.get_environ_proxies(site))
    if session.verify is True:
        # As requests does for a request that names no bundle of its own.
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
