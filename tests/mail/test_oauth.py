"""Self-tests of the OAuth 2 side of the mail servers: the token issuer's endpoints over real
HTTP (httpx), Dovecot's XOAUTH2/OAUTHBEARER logins checked by its own oauth2 passdb against
the issuer (imapclient), and the submission server's AUTH XOAUTH2 (smtplib).

Dovecot answers a failed login after 2 s and, per client IP, holds every later login back for
a growing penalty (4 s, 8 s, …), the right password's too; the refused logins of a test are
therefore tried at once, in threads, and after the logins that must pass.
"""

from __future__ import annotations

import base64
import json
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import imapclient.exceptions
import pytest
from imapclient import IMAPClient

from tests.mail.oauth import TokenIssuer
from tests.mail.servers import OAUTH_CLIENT_ID, OAUTH_SCOPE, SUPPORT_ADDRESS, MailServers
from tests.mail.smtp import SubmissionServer

USER = "support@example.com"


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as running:
        running.register_client("app", "s3cret/+=", USER, scope="mail.send")
        running.register_refresh_token("refresh-1", "app", USER)
        yield running


def post(url: str, data: dict[str, str], **kwargs: object) -> httpx.Response:
    # trust_env off: a proxy named in the environment must not carry the tests' requests.
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(url, data=data, **kwargs)  # type: ignore[arg-type]


def client_credentials(issuer: TokenIssuer, **extra: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret/+=", **extra}
    return post(issuer.token_url, form)


def mail_token(mail: MailServers) -> str:
    """An access token for the support mailbox, the way a bot gets it from `oauth_env()`."""
    env = mail.oauth_env()
    answer = post(
        env["EMAIL_OAUTH2_TOKEN_URL"],
        {
            "grant_type": "client_credentials",
            "client_id": env["EMAIL_OAUTH2_CLIENT_ID"],
            "client_secret": env["EMAIL_OAUTH2_CLIENT_SECRET"],
            "scope": env["EMAIL_OAUTH2_SCOPE"],
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


# ---- the token endpoint -----------------------------------------------------------------------


def test_client_credentials_in_the_form_or_basic_auth(issuer: TokenIssuer) -> None:
    answer = client_credentials(issuer, scope="mail.send")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "mail.send"
    assert "refresh_token" not in body
    assert issuer.valid(body["access_token"]) == USER
    # RFC 6749 §2.3.1: Basic carries the form-urlencoded id and secret.
    basic = "Basic " + base64.b64encode(b"app:s3cret%2F%2B%3D").decode()
    answer = post(issuer.token_url, {"grant_type": "client_credentials"}, headers={"Authorization": basic})
    assert answer.status_code == 200, answer.text
    second = answer.json()["access_token"]
    assert second != body["access_token"] and issuer.valid(second) == USER
    assert issuer.requests == [("client_credentials", "app"), ("client_credentials", "app")]
    assert issuer.valid("made-up") is None


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"client_secret": "wrong"}, {}, 401, "invalid_client"),
        ({"client_id": "nobody"}, {}, 401, "invalid_client"),
        ({"client_secret": ""}, {}, 401, "invalid_client"),
        ({"scope": "https://mail.google.com/"}, {}, 400, "invalid_scope"),
        ({"grant_type": "password"}, {}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, {}, 400, "invalid_request"),
        ({}, {"Authorization": "Basic " + base64.b64encode(b"app:s3cret%2F%2B%3D").decode()}, 400, "invalid_request"),
    ],
    ids=["wrong-secret", "unknown-client", "no-secret", "other-scope", "password-grant", "no-grant", "two-secrets"],
)
def test_token_errors_as_rfc_6749(
    issuer: TokenIssuer, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    answer = post(
        issuer.token_url,
        {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret/+=", **form},
        headers=headers,
    )
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["error_description"]
    assert len(issuer.requests) == 1


def test_a_wrong_basic_secret_gets_401_with_a_challenge(issuer: TokenIssuer) -> None:
    basic = "Basic " + base64.b64encode(b"app:wrong").decode()
    answer = post(issuer.token_url, {"grant_type": "client_credentials"}, headers={"Authorization": basic})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic")


def test_refresh_grant_rotates_and_the_old_refresh_token_stays_good(issuer: TokenIssuer) -> None:
    answer = post(issuer.token_url, {"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "app"})
    assert answer.status_code == 200, answer.text
    first = answer.json()
    assert issuer.valid(first["access_token"]) == USER and first["refresh_token"] not in ("", "refresh-1")
    for refresh, secret in ((first["refresh_token"], "s3cret/+="), ("refresh-1", None)):
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "app"}
        if secret is not None:
            form["client_secret"] = secret
        again = post(issuer.token_url, form)
        assert again.status_code == 200, again.text
        assert issuer.valid(again.json()["access_token"]) == USER
    issuer.rotate_refresh_tokens = False
    kept = post(issuer.token_url, {"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "app"})
    assert kept.status_code == 200 and "refresh_token" not in kept.json()
    assert issuer.requests == [("refresh_token", "app")] * 4


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"refresh_token": "made-up"}, 400, "invalid_grant"),
        ({"client_id": "another-app"}, 400, "invalid_grant"),  # issued to another client
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"refresh_token": ""}, 400, "invalid_request"),
        ({"client_id": ""}, 400, "invalid_request"),
    ],
    ids=["unknown", "other-client", "wrong-secret", "no-token", "no-client"],
)
def test_refresh_errors(issuer: TokenIssuer, form: dict[str, str], status: int, error: str) -> None:
    answer = post(
        issuer.token_url, {"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "app", **form}
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_a_revoked_refresh_token_gets_invalid_grant(issuer: TokenIssuer) -> None:
    issuer.revoke_refresh_token("refresh-1")
    answer = post(issuer.token_url, {"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "app"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


def test_tokens_expire_and_revoke_all_ends_every_issued_one(issuer: TokenIssuer) -> None:
    issuer.token_lifetime = 1.0
    short = client_credentials(issuer).json()
    assert short["expires_in"] == 1.0 and issuer.valid(short["access_token"]) == USER
    time.sleep(1.1)
    assert issuer.valid(short["access_token"]) is None
    issuer.token_lifetime = 3600
    tokens = [client_credentials(issuer).json()["access_token"] for _ in range(2)]
    assert [issuer.valid(token) for token in tokens] == [USER, USER]
    issuer.revoke_all()
    assert [issuer.valid(token) for token in tokens] == [None, None]
    assert issuer.valid(client_credentials(issuer).json()["access_token"]) == USER  # new ones work


def test_fail_next_answers_the_next_requests_then_the_real_grant(issuer: TokenIssuer) -> None:
    issuer.fail_next(503, "Service Unavailable", count=2)
    issuer.fail_next(400, {"error": "invalid_grant", "error_description": "AADSTS70000"})
    for _ in range(2):
        answer = client_credentials(issuer)
        assert answer.status_code == 503 and answer.text == "Service Unavailable"
        assert answer.headers["content-type"].startswith("text/plain")
    answer = client_credentials(issuer)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert client_credentials(issuer).status_code == 200
    assert len(issuer.requests) == 4


def test_introspection_and_a_restart_on_the_same_port(issuer: TokenIssuer) -> None:
    token = client_credentials(issuer).json()["access_token"]
    assert post(issuer.introspection_url, {"token": token}).json() == {
        "active": True,
        "username": USER,
        "token_type": "Bearer",
    }
    assert post(issuer.introspection_url, {"token": "made-up"}).json() == {"active": False}
    assert issuer.introspections == 2
    url = issuer.token_url
    issuer.stop()
    with pytest.raises(httpx.ConnectError):
        client_credentials(issuer)
    issuer.start()
    assert issuer.token_url == url and client_credentials(issuer).status_code == 200
    assert issuer.valid(token) == USER  # a restart keeps what was issued


# ---- Dovecot: XOAUTH2 and OAUTHBEARER through its oauth2 passdb -------------------------------


def imaps(mail: MailServers) -> IMAPClient:
    return IMAPClient("127.0.0.1", port=mail.dovecot.imaps_port, ssl=True, ssl_context=mail.ssl_context(), timeout=30)


def test_imap_takes_a_token_from_the_issuer_and_still_a_password(mail: MailServers) -> None:
    token = mail_token(mail)
    with imaps(mail) as client:
        assert {b"AUTH=XOAUTH2", b"AUTH=OAUTHBEARER", b"AUTH=PLAIN"} <= set(client.capabilities())
        client.oauth2_login(SUPPORT_ADDRESS, token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with IMAPClient("127.0.0.1", port=mail.dovecot.imap_port, ssl=False, timeout=30) as client:
        client.starttls(mail.ssl_context())
        client.oauthbearer_login(SUPPORT_ADDRESS.upper(), token)  # Dovecot lower-cases the login
        assert client.find_special_folder(b"\\Sent") == "Sent"
    assert mail.oauth.introspections == 2  # asked at each login: no cache
    with imaps(mail) as client:
        client.login(SUPPORT_ADDRESS, mail.support.password)
    assert mail.oauth.introspections == 2


def test_imap_refuses_revoked_expired_made_up_and_other_users_tokens(mail: MailServers) -> None:
    mail.oauth.token_lifetime = 0.2
    expired = mail_token(mail)
    mail.oauth.token_lifetime = 3600
    revoked = mail_token(mail)
    with imaps(mail) as client:
        client.oauth2_login(SUPPORT_ADDRESS, revoked)  # good until revoked
    mail.oauth.revoke_all()
    good = mail_token(mail)
    time.sleep(0.2)
    ana = mail.customers[0]
    attempts: dict[str, Callable[[IMAPClient], object]] = {
        "revoked": lambda c: c.oauth2_login(SUPPORT_ADDRESS, revoked),
        "expired": lambda c: c.oauth2_login(SUPPORT_ADDRESS, expired),
        "made-up": lambda c: c.oauth2_login(SUPPORT_ADDRESS, "bm90LWEtdG9rZW4"),
        "another user's": lambda c: c.oauth2_login(ana.address, good),  # the token is support's
        "password as token": lambda c: c.oauth2_login(SUPPORT_ADDRESS, mail.support.password),
        "token as password": lambda c: c.login(SUPPORT_ADDRESS, good),
    }

    together = threading.Barrier(len(attempts))

    def refused(attempt: Callable[[IMAPClient], object]) -> str:
        with imaps(mail) as client:
            together.wait(10)  # the logins start together, mostly before any failure's penalty
            try:
                attempt(client)
            except imapclient.exceptions.LoginError as exc:
                return str(exc)
            return "logged in"

    with ThreadPoolExecutor(len(attempts)) as pool:
        outcomes = dict(zip(attempts, pool.map(refused, attempts.values()), strict=True))
    assert all("AUTHENTICATIONFAILED" in outcome for outcome in outcomes.values()), outcomes
    # Dovecot asked the issuer at every XOAUTH2 login (the revoked token's too: no cache; the
    # password sent as a token is just a token it does not know), and the token sent as a
    # password went to the passwords file only.
    assert mail.oauth.introspections == 1 + 5
    assert "did not match" in mail.dovecot.log()  # the other user's token: Dovecot compared names


# ---- the submission server: AUTH XOAUTH2 ------------------------------------------------------


def xoauth2(user: str, token: str, challenges: list[bytes] | None = None) -> Callable[..., str]:
    """smtplib's authobject: the XOAUTH2 string first (initial response or after the empty
    334), the empty line after an error challenge (which it records)."""

    def answer(challenge: bytes | None = None) -> str:
        if challenge:
            if challenges is not None:
                challenges.append(challenge)
            return ""
        return f"user={user}\x01auth=Bearer {token}\x01\x01"

    return answer


def starttls(mail: MailServers) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10)
    smtp.starttls(context=mail.ssl_context())
    smtp.ehlo()
    return smtp


@pytest.mark.parametrize("initial_response", [True, False], ids=["initial-response", "after-334"])
def test_smtp_takes_xoauth2_with_a_token_from_the_issuer(mail: MailServers, initial_response: bool) -> None:
    token = mail_token(mail)
    with starttls(mail) as smtp:
        assert "XOAUTH2" in smtp.esmtp_features["auth"].split()
        code, _ = smtp.auth("XOAUTH2", xoauth2(SUPPORT_ADDRESS, token), initial_response_ok=initial_response)
        assert code == 235
        to = mail.customers[0].address
        assert smtp.sendmail(SUPPORT_ADDRESS, [to], b"Subject: via XOAUTH2\r\n\r\nhi\r\n") == {}
    [accepted] = mail.smtp.accepted
    assert accepted.login == SUPPORT_ADDRESS and accepted.mechanism == "XOAUTH2"
    assert mail.customers[0].wait_for(timeout=5)[0]["Subject"] == "via XOAUTH2"
    assert mail.smtp.counts["auth_ok"] == 1 and mail.smtp.counts["auth_failed"] == 0


def test_smtp_refuses_bad_tokens_as_gmail_does(mail: MailServers) -> None:
    good = mail_token(mail)
    revoked = mail_token(mail)
    mail.oauth.revoke_all()
    ana = mail.customers[0]
    cases = [
        (SUPPORT_ADDRESS, revoked),
        (SUPPORT_ADDRESS, "made-up"),
        (ana.address, good),  # support's token for another user
        (SUPPORT_ADDRESS, mail.support.password),
    ]
    for user, token in cases:
        challenges: list[bytes] = []
        with starttls(mail) as smtp:
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth("XOAUTH2", xoauth2(user, token, challenges))
            assert refused.value.smtp_code == 535
            assert refused.value.smtp_error == b"5.7.8 Username and Password not accepted"
            with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
                smtp.sendmail(user, [ana.address], b"Subject: x\r\n\r\nx\r\n")
            assert unauthenticated.value.smtp_code == 530
        [challenge] = challenges  # smtplib hands over the 334's text decoded
        assert json.loads(challenge) == {"status": "401", "schemes": "bearer", "scope": OAUTH_SCOPE}
    assert mail.smtp.counts["auth_failed"] == len(cases) and mail.smtp.counts["auth_ok"] == 0
    assert mail.smtp.accepted == []
    with starttls(mail) as smtp:  # no "auth=Bearer …" at all: a syntax error, no challenge
        code, _ = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(f"user={SUPPORT_ADDRESS}\x01\x01".encode()).decode())
        assert code == 501
    with starttls(mail) as smtp:  # a password still passes PLAIN
        smtp.login(SUPPORT_ADDRESS, mail.support.password)
        assert mail.smtp.counts["auth_ok"] == 1


def test_smtp_without_an_issuer_offers_no_xoauth2(mail: MailServers) -> None:
    with SubmissionServer(mail.dovecot, plain=True) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo()
            assert sorted(smtp.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
            code, text = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(b"user=x\x01auth=Bearer y\x01\x01").decode())
            assert code == 504 and b"Unrecognized authentication type" in text


def test_oauth_env_is_env_with_the_oauth_client_instead_of_the_password(mail: MailServers) -> None:
    env, oauth_env = mail.env("implicit"), mail.oauth_env("implicit")
    assert "EMAIL_PASSWORD" not in oauth_env
    assert {k: v for k, v in oauth_env.items() if not k.startswith("EMAIL_OAUTH2_")} == {
        k: v for k, v in env.items() if k != "EMAIL_PASSWORD"
    }
    assert oauth_env["EMAIL_OAUTH2_TOKEN_URL"] == f"http://127.0.0.1:{mail.oauth.port}/token"
    assert oauth_env["EMAIL_OAUTH2_CLIENT_ID"] == OAUTH_CLIENT_ID == "deskbot-test"
    assert oauth_env["EMAIL_OAUTH2_CLIENT_SECRET"] == mail.oauth_client_secret
    assert oauth_env["EMAIL_OAUTH2_SCOPE"] == OAUTH_SCOPE
    # The registered refresh token gives the support mailbox's tokens too.
    answer = post(
        mail.oauth.token_url,
        {"grant_type": "refresh_token", "refresh_token": mail.oauth_refresh_token, "client_id": OAUTH_CLIENT_ID},
    )
    assert answer.status_code == 200 and mail.oauth.valid(answer.json()["access_token"]) == SUPPORT_ADDRESS
    with smtplib.SMTP_SSL("127.0.0.1", mail.smtp.tls_port, context=mail.ssl_context(), timeout=10) as smtp:
        smtp.ehlo()  # smtplib's auth() does not say EHLO itself, as login() does
        code, _ = smtp.auth("XOAUTH2", xoauth2(SUPPORT_ADDRESS, answer.json()["access_token"]))
        assert code == 235
    assert mail.oauth.requests == [("refresh_token", OAUTH_CLIENT_ID)]
