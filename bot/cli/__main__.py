"""`python -m bot.cli …` is the `deskbot` command without its console script (the drills and benchmarks run it so)."""

from bot.cli import main

main()
