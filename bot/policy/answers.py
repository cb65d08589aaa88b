"""A customer's bare "yes", "no" or "a new one", in English or Portuguese, to a question the bot
asked; and a bare thank-you.

When the bot keeps a text and asks (`reply "open" to open an incident with it`), people answer
as they would a person: "yes", "sim, por favor", "ok 👍", "no thanks", "a new one". Taken as any
other text, such a word would be kept in place of the text it answers, or added to an incident,
and the incident opened afterwards would be called "yes". Only a whole message that is nothing
but such words counts (case, accents, punctuation and emoji aside); "yes, and the disk is full
too" is text like any other.

Pure: no database, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Reply = Literal["yes", "no", "new"]

_YES = {
    "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "please", "yes please", "go ahead",
    "do it", "open it", "sim", "s", "claro", "pode ser", "sim por favor", "por favor", "ok obrigado",
    "yes thanks", "yes thank you", "sim obrigado", "sim obrigada", "ok obrigada", "isso",
}  # fmt: skip
_NO = {
    "no", "n", "nope", "no thanks", "no thank you", "not now", "cancel", "nao", "nao obrigado",
    "nao obrigada", "cancelar", "agora nao",
}  # fmt: skip
_NEW = {
    "new", "new one", "a new one", "new incident", "a new incident", "new issue", "a new issue",
    "novo", "um novo", "novo incidente", "um novo incidente", "nova", "outro", "outro incidente",
}  # fmt: skip
_THANKS = {
    "thanks", "thank you", "thanks a lot", "thank you very much", "many thanks", "thx", "ty",
    "cheers", "great thanks", "ok thanks", "ok thank you", "perfect thanks", "thanks again",
    "obrigado", "obrigada", "muito obrigado", "muito obrigada", "obg", "ok obrigado", "ok obrigada",
    "obrigadao", "perfeito obrigado", "perfeito obrigada", "obrigado mais uma vez",
}  # fmt: skip
#: Longer than any of the phrases above: a message this long is text, whatever it says.
_LONGEST = 24
_NOT_WORDS = re.compile(r"[^\w\s]+")
_THUMBS = {"\N{THUMBS UP SIGN}": "yes", "\N{THUMBS DOWN SIGN}": "no"}


def bare_answer(text: str) -> Reply | None:
    """ "yes", "no" or "new" when the whole of `text` is a bare answer of that kind, else None."""
    if len(text) > _LONGEST * 2:
        return None
    marks = {reply for mark, reply in _THUMBS.items() if mark in text}
    words = _words(text)
    if words in _YES:
        found: set[str] = {"yes"}
    elif words in _NO:
        found = {"no"}
    elif words in _NEW:
        found = {"new"}
    elif not words:
        found = set()
    else:
        return None
    found |= marks
    return found.pop() if len(found) == 1 else None  # type: ignore[return-value]


def thank_you(text: str) -> bool:
    """Whether the whole of `text` is a thank-you ("Thanks!", "muito obrigado 🙏"): said to a
    resolved incident, it asks for nothing, and no incident should be opened with it."""
    return len(text) <= _LONGEST * 2 and _words(text) in _THANKS


def _words(text: str) -> str:
    """`text` in lower case, without accents, punctuation or emoji, its words one space apart."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORDS.sub(" ", plain).replace("_", " ").split())
