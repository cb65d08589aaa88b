"""The outside world: one module (or folder) per channel behind `adapters.channel`.

Only code in this package reads or writes platform JSON. The router and the
store never import from here; `bot.runtime` is the one place that wires a
channel in.
"""
