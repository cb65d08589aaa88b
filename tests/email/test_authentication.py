"""`dmarc_passed` with the `From` domain: a domain that publishes no DMARC policy passes on what
DMARC itself would accept (an aligned DKIM signature or SPF check); every other verdict fails."""

from __future__ import annotations

import pytest

from adapters.email.authentication import dmarc_passed

AUTHSERV = "mx.example.com"


@pytest.mark.parametrize(
    ("value", "passed"),
    [
        # No DMARC record: DKIM or SPF for the From domain (or a parent or child of it) is enough.
        ("mx.example.com; dkim=pass header.d=customer.example; dmarc=none header.from=customer.example", True),
        ("mx.example.com; dkim=pass header.d=customer.example", True),  # no DMARC verdict at all
        ("mx.example.com; spf=pass smtp.mailfrom=bounces@mail.customer.example; dmarc=none", True),
        ("mx.example.com; dkim=pass header.d=customer.example; dmarc=none", True),
        # Not aligned, not passing, or a DMARC verdict other than none: no pass.
        ("mx.example.com; dkim=pass header.d=mailer.example; dmarc=none header.from=customer.example", False),
        ("mx.example.com; spf=pass smtp.mailfrom=customer.example.evil; dmarc=none", False),
        ("mx.example.com; dkim=fail header.d=customer.example; spf=softfail smtp.mailfrom=customer.example", False),
        ("mx.example.com; dkim=pass header.d=customer.example; dmarc=fail header.from=customer.example", False),
        ("mx.example.com; dkim=pass header.d=customer.example; dmarc=temperror header.from=customer.example", False),
        ("mx.example.com; dkim=pass header.d=example; dmarc=none", False),  # a bare top-level name
        ("other.example; dkim=pass header.d=customer.example; dmarc=none", False),  # not the trusted server
    ],
)
def test_a_domain_without_a_dmarc_policy_passes_on_aligned_dkim_or_spf(value: str, passed: bool) -> None:
    assert dmarc_passed([value], AUTHSERV, "customer.example") is passed


def test_without_the_from_domain_only_dmarc_pass_counts() -> None:
    value = "mx.example.com; dkim=pass header.d=customer.example; dmarc=none"
    assert dmarc_passed([value], AUTHSERV) is False
    assert dmarc_passed(["mx.example.com; dmarc=pass header.from=customer.example"], AUTHSERV) is True


def test_a_forged_lower_header_does_not_count() -> None:
    values = [
        "mx.example.com; dkim=none; spf=fail smtp.mailfrom=customer.example; dmarc=none",
        "mx.example.com; dkim=pass header.d=customer.example; dmarc=none",  # written by the sender
    ]
    assert dmarc_passed(values, AUTHSERV, "customer.example") is False
