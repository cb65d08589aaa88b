"""The `mail` fixture and the failure report hook, imported by the conftests that use them
(tests/email/conftest.py, tests/mail/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mail.servers import MailServers


@pytest.fixture
def mail() -> Iterator[MailServers]:
    """Running Dovecot + submission server, the support mailbox and two customers (started
    afresh per test: both start in well under 0.1 s)."""
    with MailServers() as servers:
        yield servers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """A failed test that used `mail` shows Dovecot's log and what the SMTP server took."""
    outcome = yield
    report = outcome.get_result()
    servers = getattr(item, "funcargs", {}).get("mail")
    if report.failed and isinstance(servers, MailServers):
        report.sections.append(("Dovecot log", servers.dovecot.log_tail(200)))
        accepted = "\n".join(
            f"  {m.mail_from} -> {m.rcpt_tos} {m.message_id} tls={m.tls} delivered={m.delivered}"
            for m in servers.smtp.accepted
        )
        report.sections.append(
            ("SMTP server", f"counts: {dict(servers.smtp.counts)}\naccepted:\n{accepted or '  (nothing)'}")
        )
