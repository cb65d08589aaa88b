"""Whether a first message is written in Portuguese: the language to greet a stranger in.

The desk answers in English or European Portuguese. A customer's language is theirs to set
(`lang`), and linking keeps the one an account chose before; but someone who has never written
before has chosen nothing, and "Olá, preciso de ajuda" answered in English is a poor first
answer. So a stranger's first Portuguese message sets their account's language, as `lang pt`
would.

Only signs no English text carries count: a few words that exist in Portuguese only (not in
English, nor in Spanish, the language most often mistaken for it), or the letters ã and õ in a
word that does not begin with a capital. A capitalised one is no sign: English text names
people and places ("João from IT", "our São Paulo office"), and a customer writing English
must not be switched by them. A text without these signs is not Portuguese here, which leaves
English, the default.

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
_WORD = re.compile(r"\w+")


#: Only a message's start is read: its greeting and first lines say what language it is in, and
#: an unknown sender's mail may be megabytes long.
_READ = 2000


def written_in_portuguese(text: str) -> bool:
    """Whether `text` shows a sign of Portuguese (see the module docstring), in its first `_READ`
    characters."""
    text = text[:_READ]
    if any(word[0].islower() and ("ã" in word or "õ" in word) for word in _WORD.findall(text)):
        return True
    words = _WORD.findall(text.casefold())
    pairs = (f"{first} {second}" for first, second in zip(words, words[1:], strict=False))
    return any(word in _WORDS for word in words) or any(pair in _WORDS for pair in pairs)
