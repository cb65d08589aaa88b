"""Crash and outage drills (issue 5, item 7): `deskbot run` as a real process against both fakes."""
