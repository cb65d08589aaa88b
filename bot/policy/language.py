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
must not be switched by them. Nor is a Portuguese courtesy in English text ("the share is not
visible. Obrigado!"): the text is Portuguese only when its signs of Portuguese outnumber its
everyday English words (`signs`). The two mistakes are not alike: a Portuguese text taken for
English is answered in English once, and the customer's next Portuguese message chooses again
(English text chooses nothing), while an English text taken for Portuguese chooses Portuguese
for good. A text without these signs is not Portuguese here, which leaves English, the default.

An engineer's answer is tagged with the language it is written in (a Mastodon status's
`language`, an email's `Content-Language`: what screen readers and translate buttons go by).
Engineers usually write the customer's language, but not always: `reply_language` takes the
customer's unless the text shows signs of one language and none of the other (for English, two
or more everyday words no Portuguese text has).

Pure: no database, no clock.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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


#: Everyday English words that Portuguese does not have (compared in lower case): what outweighs a
#: Portuguese courtesy in English text, and what makes an engineer's answer English.
_ENGLISH_WORDS = frozenset(
    {
        "the", "please", "you", "your", "we", "our", "will", "thanks", "which", "have", "has",
        "does", "can", "could", "would", "should", "is", "are", "with", "this", "that", "there",
        "what", "when", "let", "know", "after", "again", "it", "and", "of", "to", "check",
        "hi", "hello", "i", "my", "not", "thank", "need",
    }
)  # fmt: skip


class Signs(NamedTuple):
    """The different signs of each language a text shows (lower case)."""

    #: Words only Portuguese has (`_WORDS`), and words with ã or õ that do not begin with a capital.
    portuguese: frozenset[str]
    #: Everyday English words that Portuguese does not have (`_ENGLISH_WORDS`).
    english: frozenset[str]


def signs(text: str) -> Signs:
    """The signs of Portuguese and of English in the first `_READ` characters of `text`; a word
    repeated is one sign."""
    text = text[:_READ]
    nasal = {word.casefold() for word in _WORD.findall(text) if word[0].islower() and ("ã" in word or "õ" in word)}
    words = _WORD.findall(text.casefold())
    pairs = {f"{first} {second}" for first, second in zip(words, words[1:], strict=False)}
    return Signs(frozenset(nasal | (_WORDS & {*words, *pairs})), frozenset(_ENGLISH_WORDS.intersection(words)))


def written_in_portuguese(text: str) -> bool:
    """Whether `text` is plainly Portuguese: more signs of Portuguese than of English in its first
    `_READ` characters (see the module docstring)."""
    found = signs(text)
    return len(found.portuguese) > len(found.english)


#: Everyday Portuguese words that English does not have, for an answer (a first message is read
#: more strictly, by `written_in_portuguese`: Spanish shares some of these).
_PORTUGUESE_WORDS = _WORDS | {
    "que", "para", "uma", "é", "está", "pode", "foi", "mais", "já", "são", "isso", "este", "esta",
    "pelo", "pela", "ao", "seu", "sua", "quando", "depois", "ainda", "diz", "verificar", "por",
    "obrigado", "cumprimentos", "das", "nos",
}  # fmt: skip
# Not: "com" (example.com), "os" (the OS), "nas" (a NAS), "dos", "as", "favor": English text has them.
#: How many different words of one language, with none of the other, make an answer that language.
_SIGNS = 2


def reply_language(text: str, customer_lang: str) -> str:
    """The language ("en" or "pt") of an engineer's answer to a customer whose language is
    `customer_lang`: the customer's, unless the text has at least `_SIGNS` different everyday
    words of the other language and none of the customer's (a quoted log line or a loanword in
    an answer in the customer's language changes nothing)."""
    words = set(_WORD.findall(text[:_READ].casefold()))
    english = len(words & _ENGLISH_WORDS)
    portuguese = len(words & _PORTUGUESE_WORDS) + (2 if signs(text).portuguese else 0)
    if customer_lang == "pt" and english >= _SIGNS and not portuguese:
        return "en"
    if customer_lang != "pt" and portuguese >= _SIGNS and not english:
        return "pt"
    return customer_lang
