"""Real mail servers for the email channel's tests, drills and benchmarks (issue 11, item 8).

* `tls.MailTLS`: a trustme test CA and the servers' certificate.
* `dovecot.Dovecot`: Dovecot (IMAP with STARTTLS, IMAPS, LMTP) with its own configuration in
  a temporary folder; restart, outage, UIDVALIDITY change.
* `smtp.SubmissionServer`: an aiosmtpd submission server (STARTTLS, implicit TLS, AUTH)
  delivering into that Dovecot; 421/550/held-DATA switches; a record of what it accepted.
  `smtp_protocol` holds its inside: aiosmtpd's protocol and the hooks.
* `oauth.TokenIssuer`: an OAuth 2 authorization server (token and introspection endpoints)
  whose tokens Dovecot (its oauth2 passdb) and the submission server take for XOAUTH2.
* `mailbox.Mailbox`: a customer's view over IMAP, and realistic mail and replies to send.
* `servers.MailServers`: all of it with the support mailbox (and its OAuth client) and two
  customers, and the settings a bot takes (`env()`, `oauth_env()`); `fixtures.mail` is the
  pytest fixture (tests/email/conftest.py).

Starting Dovecot needs root and Debian's dovecot-imapd and dovecot-lmtpd (`.ci/run`).
"""
