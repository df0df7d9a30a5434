"""Tests of admission/: the gate, tokens, subscription limits, the ticker check."""
