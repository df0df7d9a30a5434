"""Helpers for stockfeed's tests, chaos scenarios and benchmark (not used by the server)."""
