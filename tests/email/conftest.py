"""Fixtures for the email channel's tests: real mail servers (tests/mail/).

`mail` is a running Dovecot (IMAP with STARTTLS, IMAPS, LMTP) and a submission server
(aiosmtpd: STARTTLS, implicit TLS, AUTH) that delivers into it, with the support mailbox
(`mail.support`, support@example.com) and two customers (`mail.customers`). A bot is given
`mail.env()` (EMAIL_ADDRESS, EMAIL_IMAP_URL, EMAIL_SMTP_URL, EMAIL_USERNAME, EMAIL_PASSWORD,
and SSL_CERT_FILE for the test CA), or `mail.ssl_context()` / `mail.ca_file` in-process.
Failure switches: `mail.smtp.refuse_all(…)`, `refuse_recipient(…)`, `hold_data(…)`,
`mail.dovecot.restart()`, `stop_for(…)`, `change_uidvalidity(…)`. A failed test's report
shows Dovecot's log and what the SMTP server accepted.
"""

from tests.mail.fixtures import mail, pytest_runtest_makereport  # noqa: F401
