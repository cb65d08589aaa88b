"""What the fuzz tests and `bench/fuzz.py` feed the bot: hostile and ordinary texts, by strategy.

Shared so that the suite (a bounded budget) and the benchmark (100,000 inputs a
target) try the same kinds of input.
"""

from __future__ import annotations

from hypothesis import strategies as st

WORDS = [
    "help", "ajuda", "open", "abrir", "status", "estado", "credits", "créditos", "close", "fechar",
    "link", "ligar", "lang", "idioma", "severity", "reopen", "#1", "#2", "#", "/reply", "/note",
    "/assign", "/bug", "/waive", "/resolve", "/reopen", "/case", "/cases", "/customer add", "/customer show",
    "/customer code", "/credits grant", "/contacts", "/help", "/severity", "/poll", "/me",
]  # fmt: skip
NASTY = [
    "@**all**", "@*support*", "²", "½", "௰", "٣", "\x00", "\x1b[31m", "\x07", "\u202e", "\ud800",
    "```", "~~~", "`" * 40, "~" * 40, "<b>", "](http://x)", "![i](http://x)", "$$x$$", "||",
    "A_me", "%", "_", "9" * 40, str(2**63), "-1", "0", "99999999999999999999", "\n", "\r\n", "\t",
    "\"", "'", "\\", "@victim@example.net", "²@victim@example.net", "ZZZZ-ZZZZ-ZZZZ",
]  # fmt: skip

argument = st.one_of(
    st.text(max_size=60),
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet="0123456789²٣", max_size=50),
)

message_text = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda word, args: " ".join([word, *args]),
        st.sampled_from(WORDS),
        st.lists(argument, max_size=4),
    ),
    st.lists(st.sampled_from(NASTY + WORDS), max_size=12).map("".join),
)
