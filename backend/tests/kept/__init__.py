"""Tests of the market-data store (kept/)."""
