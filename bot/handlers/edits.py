"""Messages people edited after sending them (`Inbound.edit_of`).

A customer's edit is handled as a new message from them with the new text: it joins their case and
shows in its topic marked as an edit (`passed_on.mirror`), and the quiet rule keeps an edit soon
after its message from being answered again (bot.policy.acknowledgements). An engineer's edit of a
command is never run: what the command did is done, and a `/reply` is with the customer in the words
first sent. The engineer is told so where they wrote, in their language, as any answer to them.
"""

from __future__ import annotations

from bot.commands import Command
from bot.context import Context
from bot.i18n import _, quoted


def command_edited(ctx: Context, cmd: Command) -> None:
    """An engineer edited a message that holds `cmd`: say that the edit changes nothing."""
    word = quoted(ctx.lang, "/" + cmd.name_in(ctx.lang))
    if cmd.name == "reply":
        ctx.reply(
            _(
                "The customer already has your {command} as you first sent it: edits are not passed on. To correct it, send {command} again."
            ),
            command=word,
        )
    else:
        ctx.reply(
            _(
                "Edited commands are not run again: {command} did what it did as first sent. To change anything, send a new command."
            ),
            command=word,
        )
