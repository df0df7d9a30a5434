"""Fault injection for stockfeed: `python -m chaos.run` (or `make chaos`)."""
