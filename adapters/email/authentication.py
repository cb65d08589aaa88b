"""Whether the trusted receiving server found a mail's `From` domain authentic (DMARC).

The receiving server records its SPF/DKIM/DMARC verdicts in an
`Authentication-Results` header (RFC 8601) that starts with its own
authserv-id, above every header that was already there. A sender can write
such headers too, lower down, with any id and any verdict; so only the
topmost header carrying the configured id counts. It must say `dmarc=pass`;
or, for a domain that publishes no DMARC policy (`dmarc=none`, or no DMARC
verdict at all), show what DMARC itself would have accepted: a passing DKIM
signature or SPF check for the `From` domain (aligned, RFC 7489 §3.1: the
same domain, or one a subdomain of the other). Many small companies' domains
have DKIM but no DMARC record; SPEC §4 turns away mail that *fails* DMARC,
not mail from them. Any other DMARC verdict (fail, temperror, permerror …),
and anything unreadable there, counts as no pass: a mistake can only turn a
customer into an unknown sender, never a stranger into a customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import authres

#: The authserv-id: the header value's first token (RFC 8601 §2.2), after any comment.
_AUTHSERV_ID = re.compile(r"\s*(?:\([^()]*\)\s*)*([^\s;()]+)")
#: The domain each method vouches for, by the property its result names it in.
_VOUCHES = {"dkim": ("header", "d"), "spf": ("smtp", "mailfrom")}


def dmarc_passed(values: Iterable[str], authserv_id: str, from_domain: str | None = None) -> bool:
    """Does the topmost of the `Authentication-Results` header `values` (in the message's order) that
    carries `authserv_id` say dmarc=pass (and no other verdict for DMARC)? With `from_domain` (the
    `From` address's), a domain without a DMARC policy passes on an aligned DKIM or SPF pass."""
    wanted = authserv_id.strip().lower()
    for value in values:
        first = _AUTHSERV_ID.match(value)
        if first is None or first.group(1).lower() != wanted:
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(value.split()))
        except Exception:  # authres raises its own errors and, on some input, plain ones: no pass either way
            return False
        results = [(str(r.method).lower(), str(r.result).lower(), r.properties) for r in header.results]
        verdicts = [result for method, result, _ in results if method == "dmarc"]
        if verdicts and all(verdict == "pass" for verdict in verdicts):
            return True
        if from_domain is None or any(verdict != "none" for verdict in verdicts):
            return False
        return any(
            result == "pass" and method in _VOUCHES and _aligned(_vouched(properties, _VOUCHES[method]), from_domain)
            for method, result, properties in results
        )
    return False


def _vouched(properties: Iterable[authres.core.AuthenticationResultProperty], wanted: tuple[str, str]) -> str:
    """The domain a result's property names (`header.d=`, `smtp.mailfrom=`, an address's domain part)."""
    for prop in properties:
        if (str(prop.type).lower(), str(prop.name).lower()) == wanted:
            return str(prop.value).rpartition("@")[2].strip().rstrip(".").lower()
    return ""


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment, approximated without the public-suffix list: the same domain, or one a
    subdomain of the other (`mail.acme.pt` for `acme.pt`). Never a bare top-level domain."""
    mine = from_domain.strip().rstrip(".").lower()
    if not domain or "." not in domain or "." not in mine:
        return False
    return domain == mine or domain.endswith("." + mine) or mine.endswith("." + domain)
