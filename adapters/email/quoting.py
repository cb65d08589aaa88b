"""The new part of a reply: quoted history and signatures cut, with `mail-parser-reply`.

Only a reply's text comes here (`reading.is_reply`): in a new mail, a pasted
log under a rule of dashes, a pasted mail's "From: / To: / Subject:" lines,
"the script wrote:" or shell lines starting with "> " are the customer's, and
they look just like history and signatures to any reader of lines.

`mailparser_reply` knows how mail clients introduce the history they quote
("On … wrote:", Outlook's "From: … Sent: …" block, "-----Original
Message-----") and how signatures start ("-- ", "Sent from my iPhone", closing
words), in several languages but not Portuguese. Its mechanism for a language
is its `MAIL_LANGUAGES` table, read by `EmailMessage` for the languages it is
given: Portuguese is added there, once, with the forms Gmail, Outlook, Apple
Mail and Thunderbird write in Portugal and Brazil. German, French and Spanish
are the library's own, asked for too: customers forward the desk's mail to
colleagues abroad, whose replies quote it under "Am … schrieb …:", "Le … a
écrit :" or "El … escribió:". Their quote headers are replaced, in its table,
by bounded forms like the Portuguese one (`_wrote`): its German and French
ones take time cubic in a line's length, its Spanish one wants two spaces
before "escribió", which no client writes; and so is its Spanish Outlook
block, which takes any two "De:", "Para:", "CC:" lines, as Portuguese text has.

What is ours, and why:

* The library strips every line and reads lines of any length with patterns
  that are quadratic in a line's length. It is given a skeleton of the text
  instead, line for line: each line stripped, a long one replaced by a mark,
  a rule of underscores (which the library would delete, shifting every line
  below) written as "__", a signature start to it as the rule is. Its verdict
  is a line number, and the customer's own lines, indentation and all, are
  what is kept. Only the first `SCAN_CHARACTERS` are looked at: history
  further down stays.
* Its closing-words signatures ("Thanks,", "Best,") run to the end of the
  text, so "Thanks, but it still fails:" followed by a log would lose the log.
  A closing, a "Sent from my …" line, and a rule of 32 or more "-" or "_" (a
  unittest report, a backup report), are taken for a signature only when a few
  short lines follow them; "-- " always is.
* It knows a "Sent from my iPhone" or "Get Outlook for iOS" line only when
  little follows the words on the line; an HTML mail's line has its link after
  them ("Get Outlook for iOS (https://aka.ms/…)", `adapters.html_text`). Any
  short line that begins with those words (`is_sent_from`) is written in the
  skeleton as one the library knows.
* A reply with nothing above the history (bottom-posting, answers between
  the quoted lines) keeps its unquoted lines; for one with nothing new at all
  `new_part` says so (None), and the caller decides (`reading._new_text`).
* A forwarded message ("---------- Forwarded message ---------") is what the
  sender wants the desk to read, not history: a text that forwards one is kept
  whole.
* A new mail has no history; it loses only a signature at its end, under "-- "
  or a "Sent from my …" line (`without_signature`), and a new mail that is
  nothing but one says nothing.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailMessage
from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE

#: Lines longer than this are taken for no quote header: the library's patterns take time
#: quadratic in a line's length (about 0.1 s for a 64 KiB text of such lines at 400).
LONGEST_HEADER_LINE = 400
#: How much of a text is searched for the start of quoted history.
SCAN_CHARACTERS = 64 * 1024
#: Private-use mark for a long line in the skeleton: no pattern of the library matches it.
_LONG_LINE = "\ue000"
_RULE = re.compile(r" ?[_-]{32,}")
_QUOTED = re.compile(r"^\s*>")
#: The line above a forwarded message (Gmail, Thunderbird, Apple Mail; Portuguese ones).
_FORWARD_MARK = re.compile(
    r"-{5,} ?(?:Forwarded message|Forwarded Message|Mensagem encaminhada|Mensagem reencaminhada) ?-{5,}"
    r"|Begin forwarded message:|Início da mensagem (?:re)?encaminhada:",
    re.IGNORECASE,
)
#: How far down a forward's marker is looked for.
_FORWARD_LINES = 200

# Portuguese, in the library's own table. Patterns are bounded ({1,300}) where the library's are
# not: every line of every customer's mail passes through them.
_PT_WROTE = (
    r"^(" + QUOTED_MATCH_INCLUDE + r"(?:"
    # Gmail (pt-BR), Outlook: "Em ter., 3 de dez. de 2026 às 10:00, Fulano <f@x.pt> escreveu:"
    # Apple Mail (pt-PT): "A 03/12/2026, às 10:00, Fulano <f@x.pt> escreveu:"
    # Thunderbird (pt-PT): "Às 10:00 de 03/12/2026, Fulano escreveu:"
    r"(?:Em|A|Às|No dia)\s[^\n]{1,300}?(?:\n" + QUOTED_MATCH_INCLUDE + r"[^\n]{1,300}?)?\s?escreveu:"
    # Gmail (pt-PT): "Fulano <f@x.pt> escreveu (terça, 3/12/2026 à(s) 10:00):" and
    # "Fulano <f@x.pt> escreveu no dia terça, 3/12/2026 à(s) 10:00:"
    r"|[^\n]{1,300}?\sescreveu\s(?:\(|no dia\s)[^\n]{1,300}?(?:\n" + QUOTED_MATCH_INCLUDE + r"[^\n]{1,300}?)?:"
    r"))$"
)
# Outlook's block: "De: …" then at least two of "Enviado: / Data: / Para: / Cc: / Assunto: …"; and
# "-----Mensagem original-----". Starting at "De:" keeps a customer's own "Data: … / Para: …" lines.
_PT_FROM = (
    r"((?:^"
    + QUOTED_MATCH_INCLUDE
    + r"-{5,} ?Mensagem original ?-{5,}$)|(?:(?:^|\n)"
    + QUOTED_MATCH_INCLUDE
    + r"[* ]*De:[ *]*[^\n]{0,300}(?:\n"
    + QUOTED_MATCH_INCLUDE
    + r"[* ]*(?:Enviado|Enviada|Data|Para|Cc|Assunto|Organização):[ *]*[^\n]{0,300}){2,}))"
)
MAIL_LANGUAGES.setdefault(
    "pt",
    {
        "wrote_header": _PT_WROTE,
        "from_header": _PT_FROM,
        "disclaimers": [],
        "signatures": [
            "Com os melhores cumprimentos",
            "Os melhores cumprimentos",
            "Melhores cumprimentos",
            "Cumprimentos",
            "Atenciosamente",
            "Atentamente",
            "Cordialmente",
            "Obrigado,",
            "Obrigada,",
            "Um abraço",
            "Abraço",
            "Abraços",
            "Saudações",
        ],
        "sent_from": "Enviado do meu|Enviado a partir do meu|Obter o Outlook para",
    },
)


def _wrote(opening: str, wrote: str) -> str:
    """A quote header "<opening> … <wrote>…:" on one line, or on two where a client wrapped it,
    bounded as the Portuguese one is: the library's German and French ones look ahead over the
    whole line for a second header in it, in time cubic in its length (2.8 s for 64 KiB of
    "Am schrieb " lines)."""
    line = r"[^\n]{1,300}?(?:\n" + QUOTED_MATCH_INCLUDE + r"[^\n]{1,300}?)?"
    return rf"^({QUOTED_MATCH_INCLUDE}{opening}\s{line}\s?{wrote}(?:\s{line})?\s?:)$"


# German: Gmail "Am Di., 3. Dez. 2026 um 10:00 Uhr schrieb Support <s@x.de>:", Thunderbird "Am 03.12.26 um
# 10:00 schrieb Support:". French: Gmail "Le mar. 3 déc. 2026 à 10:00, Support <s@x.fr> a écrit :".
# Spanish (see the module docstring): Gmail "El mar, 3 dic 2026 a las 10:00, Soporte (<s@x.es>) escribió:",
# Apple Mail and Outlook "El 3 dic 2026, a las 10:00, Soporte <s@x.es> escribió:"; Outlook's block from "De:".
MAIL_LANGUAGES["de"] = {**MAIL_LANGUAGES["de"], "wrote_header": _wrote("Am", "schrieb")}
MAIL_LANGUAGES["fr"] = {**MAIL_LANGUAGES["fr"], "wrote_header": _wrote("Le", "a écrit")}
_ES_WROTE = _wrote("El", "escribió")
_ES_FROM = (
    r"((?:^"
    + QUOTED_MATCH_INCLUDE
    + r"-{5,} ?Mensaje original ?-{5,}$)|(?:(?:^|\n)"
    + QUOTED_MATCH_INCLUDE
    + r"[* ]*De:[ *]*[^\n]{0,300}(?:\n"
    + QUOTED_MATCH_INCLUDE
    + r"[* ]*(?:Enviado|Enviada|Fecha|Para|CC|Asunto|Organización):[ *]*[^\n]{0,300}){2,}))"
)
MAIL_LANGUAGES["es"] = {**MAIL_LANGUAGES["es"], "wrote_header": _ES_WROTE, "from_header": _ES_FROM}
_LANGUAGES = ("pt", "en", "de", "fr", "es")
_SENT_FROM = re.compile("|".join(f"(?:{MAIL_LANGUAGES[lang]['sent_from']})" for lang in _LANGUAGES), re.IGNORECASE)
#: How a line the library would not know for a "Sent from my …" one is written in the skeleton.
_SENT_FROM_SKELETON = "Sent from my phone"

_CLOSING_WORDS = "|".join(f"(?:{words})" for lang in _LANGUAGES for words in MAIL_LANGUAGES[lang]["signatures"])
#: A closing line: the words, then at most a name ("Thanks, Ana", "Cumprimentos, Rui Sousa").
_CLOSING_LINE = re.compile(rf"(?i:{QUOTED_MATCH_INCLUDE}(?:{_CLOSING_WORDS}))[\s,.!]*(?:[A-ZÀ-Ý][\w.'-]*\s*){{0,3}}")
#: What may follow a closing line: a name, a title, a company, a phone number.
_SIGNATURE_LINES = 6
_SIGNATURE_LINE = 80
#: Signature candidates looked at: each closing word a customer writes mid-text is one.
_SIGNATURE_TRIES = 20


def new_part(text: str) -> str | None:
    """The part of a reply's `text` (a mail body, lines ending in "\\n") its sender wrote anew: above
    the quoted history, without the signature; the whole text when it forwards a message; None
    when there is nothing but history and signature."""
    lines = [line.rstrip() for line in text.split("\n")]
    if any(_FORWARD_MARK.fullmatch(line.strip()) for line in lines[:_FORWARD_LINES]):
        return _tidy(lines)  # a forwarded message is no history: the sender wants it read
    message = _read(lines)
    if message is None:
        return _tidy(lines)
    skeleton, replies = message.text, message.replies
    if replies[0].headers:
        # History from the top: what is new sits below or between the quoted lines.
        first = _line_at(skeleton, skeleton.find(replies[0].headers))
        last = first + replies[0].headers.count("\n")
        rest = _single_spaced(
            [line for number, line in enumerate(lines) if not first <= number <= last and not _QUOTED.match(line)]
        )
        below = _read(rest)
        if below is None or below.replies[0].headers:
            return _tidy(rest)
        return _top(rest, below)
    return _top(lines, message)


def without_signature(text: str) -> str:
    """A new mail's text without its signature: one under the standard delimiter, a line of "-- "
    (RFC 3676 §4.3, its space and all) over a few short lines, and the line a phone or Outlook adds
    at the end of what was typed ("Sent from my iPhone": `is_sent_from`); '' when the text is
    nothing but those. Nothing else is cut from a new mail: closing words are no sign there, a SQL
    script's empty "-- " comment over the rest of the script stays, and so does a "Sent from my
    iPhone" over a message the mail forwards."""
    lines = text.split("\n")
    filled = [number for number, line in enumerate(lines) if line.strip()]
    kept = len(filled)
    # A "-- " over a few lines is among the last few lines that say something: only those are
    # looked at (looking at each line would read the rest again for each: 8 s for 20,000 "-- ").
    for start in filled[-_SIGNATURE_LINES - 1 :]:
        if lines[start] == "-- " and _few_short_lines(lines[start + 1 :], history=False):
            kept = filled.index(start)
            break
    while kept and is_sent_from(lines[filled[kept - 1]]):
        kept -= 1
    if kept == len(filled):
        return text
    return "\n".join(lines[: filled[kept - 1] + 1]).rstrip() if kept else ""


def is_sent_from(line: str) -> bool:
    """Is `line` one a mail app adds under what a person writes ("Sent from my iPhone", "Enviado do
    meu Android", "Get Outlook for iOS", "Obter o Outlook para Android"), whatever follows the words
    on it (an HTML mail's link: "Get Outlook for iOS (https://aka.ms/…)")? A short line only: a
    longer one that begins so is a sentence of the sender's."""
    line = line.strip()
    return len(line) <= _SIGNATURE_LINE and _SENT_FROM.match(line) is not None


def _few_short_lines(lines: list[str], *, history: bool) -> bool:
    """Could `lines`, below the start of a signature, be the rest of it (a name, a company, a
    phone number), not text? Blank lines do not count, nor, in a reply (`history`), quoted lines:
    history under a header the library does not know. In a new mail they are the sender's."""
    body = [line for line in lines if line.strip() and not (history and _QUOTED.match(line))]
    return len(body) <= _SIGNATURE_LINES and all(len(line.strip()) <= _SIGNATURE_LINE for line in body)


def _read(lines: list[str]) -> EmailMessage | None:
    """The library's reading of the scanned lines' skeleton; None if it did not keep them line for line."""
    scanned, size = 0, 0
    for line in lines:
        size += len(line) + 1
        if size > SCAN_CHARACTERS:
            break
        scanned += 1
    skeleton = "\n".join(_skeleton_line(line) for line in lines[:scanned])
    message = EmailMessage(skeleton, languages=list(_LANGUAGES), keep_hyphen_lists=True).read()
    if message.text.count("\n") != skeleton.count("\n") or not message.replies:
        return None
    return message


def _top(lines: list[str], message: EmailMessage) -> str | None:
    """The lines above the first history header, without the signature, as text (None: nothing there)."""
    skeleton, content = message.text, message.replies[0].content
    start = skeleton.find(content) if content else 0
    end = start + len(content)
    cut = len(message.replies) > 1
    signature = _signature_start(message, content)
    if signature is not None:
        end, cut = start + signature, True
    kept = lines[: _lines_before(skeleton, end)] if cut else lines
    return _tidy(_without_trailing_quotes(kept))


def _signature_start(message: EmailMessage, content: str) -> int | None:
    """Where in `content` the first signature the library finds and `_is_signature` accepts starts.
    A rule below a rule that was no signature is part of the same report (a unittest run's rules
    between its tracebacks and its summary): no signature either."""
    position = 0
    rule_refused = False
    for _ in range(_SIGNATURE_TRIES):
        match = message.SIGNATURE_REGEX.search(content, position)
        if match is None:
            return None
        signature = match.group().strip()
        rule = _is_rule(signature.split("\n", 1)[0])
        if not (rule and rule_refused) and _is_signature(signature):
            return content.find(signature, match.start())
        rule_refused = rule_refused or rule
        position = match.start() + 1
    return None


def _skeleton_line(line: str) -> str:
    line = line.strip()
    if len(line) > LONGEST_HEADER_LINE:
        return _LONG_LINE
    # The library deletes a rule of 32 or more "_" or "-" (Outlook's, a list's footer), which would
    # shift every line below; "__" is a signature start to it, as the rule is.
    if _RULE.fullmatch(line):
        return "__"
    if _RULE.match(line):
        return _LONG_LINE
    if is_sent_from(line):
        return _SENT_FROM_SKELETON  # one the library knows, whatever followed the words (its link)
    return line


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, max(position, 0))


def _lines_before(text: str, end: int) -> int:
    """How many lines `text[:end]` touches, ignoring blank ones at its end."""
    prefix = text[:end].rstrip()
    return prefix.count("\n") + 1 if prefix else 0


def _is_signature(signature: str) -> bool:
    """Is the library's signature (its first line to the end of the new part) one? "-- " is; a "Sent
    from my …" line, a closing line or a rule is when a few short lines follow, not a log."""
    first, *rest = signature.split("\n")
    first = re.sub(rf"^{QUOTED_MATCH_INCLUDE}", "", first).strip()
    if first == "--":
        return True
    if is_sent_from(first):
        return _few_short_lines(rest, history=True)  # "Sent from my laptop, the log:" over the log is the sender's
    body = [line for line in rest if line.strip()]
    if _is_rule(first) and any(_is_rule(line) for line in body):
        return False  # a report framed by rules ("----\nBackup report\n----\nERROR …"), not a footer
    return (
        (_is_rule(first) or _CLOSING_LINE.fullmatch(first) is not None)
        and len(body) <= _SIGNATURE_LINES
        and all(len(line) <= _SIGNATURE_LINE for line in body)
    )


def _is_rule(line: str) -> bool:
    """A skeleton's line that is a rule of 32 or more "-" or "_" ("__" stands for one)."""
    line = re.sub(rf"^{QUOTED_MATCH_INCLUDE}", "", line).strip()
    return line == "__" or _RULE.match(line) is not None


def _without_trailing_quotes(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and (
        not lines[end - 1].strip() or _QUOTED.match(lines[end - 1]) or _RULE.fullmatch(lines[end - 1].strip())
    ):
        end -= 1
    return lines[:end]


def _single_spaced(lines: list[str]) -> list[str]:
    """Without repeated blank lines (where quoted lines between them were taken out)."""
    return [line for number, line in enumerate(lines) if line.strip() or not number or lines[number - 1].strip()]


def _tidy(lines: list[str]) -> str | None:
    text = "\n".join(lines).strip("\n")
    return text if text.strip() else None
