"""Whether a first message is written in Portuguese: the language to greet a stranger in.

The desk answers in English or European Portuguese. A customer's language is theirs to set
(`lang`), and linking keeps the one an account chose before; but someone who has never written
before has chosen nothing, and "Olá, preciso de ajuda" answered in English is a poor first
answer. So a stranger's first Portuguese message sets their account's language, as `lang pt`
would.

Only signs no English text carries count: the letters ã and õ, and a few words that exist in
Portuguese only (not in English, nor in Spanish, the language most often mistaken for it).
A text without them is not Portuguese here, which leaves English, the default.

Pure: no database, no clock.
"""

from __future__ import annotations

import re

#: Words of everyday Portuguese that English and Spanish do not have (compared in lower case).
_WORDS = frozenset(
    {
        "olá", "obrigado", "obrigada", "não", "preciso", "ajuda", "você", "estou", "tenho",
        "também", "então", "bom dia", "boa tarde", "boa noite", "avaria", "avariado", "erro",
        "cumprimentos",
    }
)  # fmt: skip
_NASAL = re.compile(r"[ãõ]", re.IGNORECASE)
_WORD = re.compile(r"\w+")


#: Only a message's start is read: its greeting and first lines say what language it is in, and
#: an unknown sender's mail may be megabytes long.
_READ = 2000


def written_in_portuguese(text: str) -> bool:
    """Whether `text` shows a sign of Portuguese (see the module docstring), in its first `_READ`
    characters."""
    text = text[:_READ]
    if _NASAL.search(text):
        return True
    words = _WORD.findall(text.casefold())
    pairs = (f"{first} {second}" for first, second in zip(words, words[1:], strict=False))
    return any(word in _WORDS for word in words) or any(pair in _WORDS for pair in pairs)
