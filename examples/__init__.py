"""Runnable examples built on chatstore (not part of the installed package)."""
