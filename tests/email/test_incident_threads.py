"""Which mail an answer continues, through the real runtime and real mail servers (SPEC §4: answers
are threaded). An answer to a mail threads on that mail, under its subject; words about an incident
that answer no mail (`/reply`, `/resolve`) thread on the incident's own thread, however many other
mails the customer sent since; a `status` in an incident's thread keeps its tag."""

from __future__ import annotations

from email.message import EmailMessage

from tests.mail.servers import MailServers

from . import test_channel_threads
from .channel_bot import EmailBot, from_bot

#: The running bot, with Ana's company linked to her address (the fixture of the email threads' tests).
bot = test_channel_threads.bot


def _ids(header: object) -> list[str]:
    return str(header or "").split()


def test_words_about_an_incident_stay_in_its_thread_after_an_unrelated_mail(mail: MailServers, bot: EmailBot) -> None:
    ana = mail.customers[0]
    first = ana.send("Backup failing", "open\nThe nightly backup fails at 80%.")
    (opened,) = ana.wait_for(from_bot)
    again = ana.send_reply(opened, "It failed again tonight.", style="thunderbird")
    ana.wait_for(from_bot, count=2)
    thread = [first["Message-ID"], opened["Message-ID"], again["Message-ID"]]
    assert _ids(again["References"]) == thread[:2]

    # A new mail about something else: with one incident open, it joins #1.
    other = ana.send("another thing", "Also, the web UI is slow since Monday.")
    added = ana.wait_for(from_bot, count=3)[2]
    assert "Added to incident #1" in added.get_content()
    # Its answer continues the new mail's own thread, under its subject, tagged.
    assert added["In-Reply-To"] == other["Message-ID"] and _ids(added["References"]) == [other["Message-ID"]]
    assert added["Subject"] == "Re: [#1] another thing"

    bot.engineer("/resolve 1 The backup disk was full; we freed space.")
    bot.engineer("/reply 1 Tonight's backup went through.")
    resolved, replied = ana.wait_for(from_bot, count=5)[3:]
    assert "Incident #1 is resolved" in resolved.get_content()
    assert "Tonight's backup went through." in replied.get_content()
    for words in (resolved, replied):
        # Ana's latest mail in #1's thread, not the unrelated one she sent last.
        assert words["In-Reply-To"] == again["Message-ID"]
        assert _ids(words["References"]) == thread
        assert words["Subject"] == "Re: [#1] Backup failing"
    # Her mailbox files them in one conversation with the incident's first mail.
    (conversation,) = [t for t in ana.threads() if any(m["Message-ID"] == opened["Message-ID"] for m in t)]
    ids = {m["Message-ID"] for m in conversation}
    assert {resolved["Message-ID"], replied["Message-ID"]} <= ids and other["Message-ID"] not in ids


def test_a_status_sent_in_an_incidents_thread_is_answered_there_with_the_tag(mail: MailServers, bot: EmailBot) -> None:
    ana = mail.customers[0]
    ana.send("New: web UI", "open\nThe new web UI shows a blank page.")
    (opened,) = ana.wait_for(from_bot)
    asked = ana.send_reply(opened, "status", style="gmail")
    status = ana.wait_for(from_bot, count=2)[1]
    assert "Your incidents:" in status.get_content()
    assert status["In-Reply-To"] == asked["Message-ID"]
    assert _ids(status["References"]) == [*_ids(asked["References"]), asked["Message-ID"]]
    assert status["Subject"] == "Re: [#1] New: web UI"


def _answer(mailbox, count: int) -> EmailMessage:  # noqa: ANN001
    return mailbox.wait_for(from_bot, count=count)[count - 1]


def test_an_answer_about_another_incident_than_the_thread_bears_that_incidents_subject(
    mail: MailServers, bot: EmailBot
) -> None:
    ana = mail.customers[0]
    ana.send("Printer offline", "open\nThe printer is offline.")
    printer = _answer(ana, 1)
    ana.send("Scanner", "open\nThe scanner is broken.")  # asked first: a second credit
    _answer(ana, 2)
    ana.send("Scanner", "open")
    assert "Incident #2 is open" in _answer(ana, 3).get_content()
    # In #1's thread, Ana asks about #2: the answer is about #2, under #2's subject.
    asked = ana.send_reply(printer, "status 2", style="gmail")
    status = _answer(ana, 4)
    assert "Incident #2: Scanner" in status.get_content()
    assert status["In-Reply-To"] == asked["Message-ID"]
    assert status["Subject"] == "Re: [#2] Scanner"
