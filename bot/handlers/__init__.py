"""Command handlers; importing this package declares every command (see bot.commands)."""

from bot.handlers import customer, engineer  # noqa: F401
