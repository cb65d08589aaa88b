"""A customer's bare "yes", "no" or "a new one", in English or Portuguese, to a question the bot
asked; and a bare thank-you.

When the bot keeps a text and asks (`reply "open" to open an incident with it`), people answer
as they would a person: "yes", "sim, por favor", "ok 👍", "no thanks", "a new one", and politely
at more length: "yes please, open it", "sim, por favor abram o pedido", "pode abrir", "go ahead",
"não, obrigado". Taken as any other text, such a message would be kept in place of the text it
answers, or added to an incident, and the incident opened afterwards would be called "yes".

Only a whole message made of nothing but answer words counts (case, accents, punctuation and
emoji aside): phrases that say yes, no or "a new one", verbs that ask to open ("abram", "go
ahead"), and the words around them that carry nothing ("please", "obrigado", "it", "o pedido").
One word outside that vocabulary ("yes, the disk is full too", "sim, mas o disco falha"), a
yes and a no together, or more than `_MOST_WORDS` words, and the message is text like any other.

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

# The vocabulary of a polite answer (accents, case and punctuation already gone: "nao", "don t").
# Each phrase plays one part: it says yes, no or "a new one", asks to open ("open" counts as yes),
# or carries nothing ("polite": please, thanks, it, the ticket). The longest phrase is read first,
# so that "nao abram" is a no and not a no beside an open.
_PARTS: dict[str, tuple[str, ...]] = {
    "yes": (
        "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "of course", "absolutely", "right",
        "alright", "all right", "correct", "indeed",
        "sim", "s", "claro", "claro que sim", "com certeza", "certo", "exato", "exatamente", "isso",
        "isso mesmo", "pode ser", "esta bem", "ta bem", "sim sim", "perfeito",
    ),
    "open": (
        "open", "open it", "go ahead", "go on", "go for it", "do it", "do so", "please do",
        "yes do", "proceed", "start it", "create it", "you can", "you may",
        "abrir", "abra", "abram", "abre", "abrem", "abra o", "abre o", "abram no", "abra a",
        "pode abrir", "podem abrir", "pode", "podem", "pode avancar", "podem avancar", "avance",
        "avancem", "avanca", "forca", "criar", "crie", "criem", "queria", "quero", "queremos",
        "faca favor de abrir", "facam favor de abrir",
    ),
    "new": (
        "new", "new one", "a new one", "new incident", "a new incident", "new issue", "a new issue",
        "new ticket", "a new ticket", "a separate one", "separate one", "a separate incident",
        "separate", "a separate issue", "another one", "another",
        "novo", "um novo", "novo incidente", "um novo incidente", "nova", "uma nova", "outro",
        "outro incidente", "um novo pedido", "novo pedido", "um pedido novo", "outro pedido",
        "um incidente novo", "um outro", "separado", "um separado",
    ),
    "no": (
        "no", "n", "nope", "nah", "not now", "not yet", "cancel", "cancel it", "don t", "do not",
        "don t open", "don t open it", "do not open", "do not open it", "never mind", "nevermind",
        "forget it", "no need", "not needed",
        "nao", "agora nao", "ainda nao", "cancelar", "cancela", "cancelem", "nao abram", "nao abra",
        "nao abrir", "nao abras", "nao e preciso", "nao precisa", "nao e necessario", "deixa estar",
        "deixe estar", "esquece", "esqueca", "esquecam",
    ),
    "polite": (
        "please", "pls", "plz", "kindly", "thanks", "thank you", "thx", "many thanks", "cheers",
        "it", "this", "that", "now", "then", "just", "with it", "with this message",
        "with my message", "with that", "for me", "the incident", "an incident", "the ticket",
        "a ticket", "the case", "a case", "the request", "a request", "the issue",
        "por favor", "se faz favor", "faz favor", "se faz favor", "obrigado", "obrigada",
        "muito obrigado", "muito obrigada", "agora", "entao", "o pedido", "um pedido", "o incidente",
        "um incidente", "o caso", "um caso", "o ticket", "um ticket", "com ela", "com esta mensagem",
        "com a mensagem", "com essa mensagem", "essa", "esta", "sff", "pf",
    ),
}  # fmt: skip
_PHRASES = {tuple(phrase.split()): part for part, phrases in _PARTS.items() for phrase in phrases}
_LONGEST_PHRASE = max(len(words) for words in _PHRASES)
_NOTED = {
    "ok", "okay", "k", "kk", "ok ok", "right", "alright", "all right", "fine", "good", "great", "noted",
    "got it", "ok got it", "understood", "certo", "esta bem", "ta bem", "ok obrigado", "ok obrigada",
    "perfeito", "ok perfeito", "entendido", "percebido", "combinado",
}  # fmt: skip
#: The command words: alone, a command (bot.router), not an answer to one.
_COMMANDS = {"open", "abrir"}
#: More words than a polite answer takes ("sim, por favor, abram o pedido, obrigado" has 8).
_MOST_WORDS = 10


def bare_answer(text: str) -> Reply | None:
    """ "yes", "no" or "new" when the whole of `text` is an answer of that kind, else None."""
    if len(text) > _LONGEST * 3:
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
    elif words in _THANKS or words in _COMMANDS:  # a thank-you is no yes (`thank_you`), "open" a command
        return None
    else:
        parts = _parts(words)
        if parts is None:
            return None
        found = {"yes" if part == "open" else part for part in parts if part != "polite"}
        if found == {"yes", "new"}:  # "yes, a new one", "open a new one"
            found = {"new"}
    found |= marks
    return found.pop() if len(found) == 1 else None  # type: ignore[return-value]


def only_noted(text: str) -> bool:
    """Whether the whole of `text` says "noted" more than "yes, do it" ("ok", "👍", "está bem"): to an
    offer made in passing ("if this is a separate problem, reply open"), it accepts nothing."""
    words = _words(text)
    return len(text) <= _LONGEST * 2 and (words in _NOTED or (not words and "\N{THUMBS UP SIGN}" in text))


def thank_you(text: str) -> bool:
    """Whether the whole of `text` is a thank-you ("Thanks!", "muito obrigado 🙏"): said to a
    resolved incident, it asks for nothing, and no incident should be opened with it."""
    return len(text) <= _LONGEST * 2 and _words(text) in _THANKS


def _parts(words: str) -> list[str] | None:
    """The parts the phrases of `words` play, read longest phrase first; None when a word is no
    answer's, or there are too many."""
    tokens = words.split()
    if len(tokens) > _MOST_WORDS:
        return None
    parts: list[str] = []
    at = 0
    while at < len(tokens):
        for size in range(min(_LONGEST_PHRASE, len(tokens) - at), 0, -1):
            part = _PHRASES.get(tuple(tokens[at : at + size]))
            if part is not None:
                parts.append(part)
                at += size
                break
        else:
            return None
    return parts


def _words(text: str) -> str:
    """`text` in lower case, without accents, punctuation or emoji, its words one space apart."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORDS.sub(" ", plain).replace("_", " ").split())
