"""Deployment examples (deploy/), run as written with real processes."""
