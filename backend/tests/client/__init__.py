"""Tests of the Python client (stockfeed.client) and its commands."""
