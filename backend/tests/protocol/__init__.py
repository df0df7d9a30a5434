"""Tests of the wire protocol (protocol/): messages, codes, the TypeScript vocabulary."""
