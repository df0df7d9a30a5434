"""Tests of the fan-out core (fanout/): the hub and its parts, driven through fakes."""
