"""Reconnect delays: exponential backoff with jitter.

Thousands of clients lose their server at the same moment (a deploy, a crash); if they
all came back on the same schedule they would hit the new server in waves. Each delay is
therefore drawn from the upper half of the current backoff step ("equal jitter"): never
shorter than half the step, so retries still slow down, and spread over the other half.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call makes the following one longer."""
        step = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt = min(self.attempt + 1, 64)  # no float overflow however long it fails
        return step / 2 + self.rng.uniform(0, step / 2)

    def after_hint(self, hint_s: float) -> float:
        """The server said when to come back: that long, plus up to half again of jitter."""
        return hint_s + self.rng.uniform(0, hint_s / 2)

    def reset(self) -> None:
        self.attempt = 0
