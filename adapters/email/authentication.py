"""Whether the trusted receiving server found a mail's `From` domain authentic (DMARC).

The receiving server records its SPF/DKIM/DMARC verdicts in an
`Authentication-Results` header (RFC 8601) that starts with its own
authserv-id, above every header that was already there. A sender can write
such headers too, lower down, with any id and any verdict; so only the
topmost header carrying the configured id counts, and it must say
`dmarc=pass`. Anything unreadable there counts as no pass: a mistake can
only turn a customer into an unknown sender, never a stranger into a customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import authres

#: The authserv-id: the header value's first token (RFC 8601 §2.2), after any comment.
_AUTHSERV_ID = re.compile(r"\s*(?:\([^()]*\)\s*)*([^\s;()]+)")


def dmarc_passed(values: Iterable[str], authserv_id: str) -> bool:
    """Does the topmost of the `Authentication-Results` header `values` (in the message's order) that
    carries `authserv_id` say dmarc=pass (and no other verdict for DMARC)?"""
    wanted = authserv_id.strip().lower()
    for value in values:
        first = _AUTHSERV_ID.match(value)
        if first is None or first.group(1).lower() != wanted:
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(value.split()))
        except Exception:  # authres raises its own errors and, on some input, plain ones: no pass either way
            return False
        verdicts = [str(result.result).lower() for result in header.results if str(result.method).lower() == "dmarc"]
        return bool(verdicts) and all(verdict == "pass" for verdict in verdicts)
    return False
