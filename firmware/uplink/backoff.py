"""Reconnect back-off and the cellular bandwidth budget."""

from __future__ import annotations

import random
import time


class Backoff:
    """Exponential back-off with "equal jitter": wait between half and all of
    min(max, base * 2**n), so a fleet that lost the broker together does not
    reconnect in lockstep."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.base_s, self.max_s = base_s, max_s
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        cap = min(self.max_s, self.base_s * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def reset(self) -> None:
        self.attempts = 0


class TokenBucket:
    """Bytes-per-second budget; `None` rate means unlimited."""

    def __init__(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else (rate or 0) * 2
        self.tokens = self.capacity
        self._t = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        if self.rate:
            self.tokens = min(self.capacity, self.tokens + (now - self._t) * self.rate)
        self._t = now

    def try_take(self, n: int) -> bool:
        """Take `n` bytes if the budget allows (a message larger than the burst
        may go when the bucket is full, leaving it in debt)."""
        if not self.rate:
            return True
        self._refill()
        if self.tokens >= n or self.tokens >= self.capacity:
            self.tokens -= n
            return True
        return False
