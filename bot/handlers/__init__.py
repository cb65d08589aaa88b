"""Command handlers: parse → call a service → render the result.

`registry()` is every command the bot knows, customer and engineer, in help order.
"""

from bot.commands import Registry
from bot.handlers import accounts, customer, engineer


def registry() -> Registry:
    return Registry([*customer.COMMANDS, *engineer.COMMANDS, *accounts.COMMANDS])
