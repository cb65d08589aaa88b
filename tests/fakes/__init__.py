"""Fake platform servers speaking real HTTP on 127.0.0.1, built from ../shared/reference/."""
