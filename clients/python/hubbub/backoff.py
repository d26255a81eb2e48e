"""Reconnect delays: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): uniform in ``[0, min(max, initial * factor**n)]``.

    Full jitter spreads a crowd of clients that lost the same hub over the
    whole window instead of having them return in waves. ``attempts`` caps
    the attempts in a row (``None``: retry forever); ``rate_limited`` is the
    least delay after a 4029 close.
    """

    initial: float = 0.5
    max: float = 30.0
    factor: float = 2.0
    attempts: Optional[int] = None
    rate_limited: float = 5.0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay for ``attempt`` (0-based)."""
        exp = min(attempt, 64)
        return float(min(self.max, self.initial * (self.factor**exp)))

    def delay(self, attempt: int, rng: Optional[random.Random] = None) -> float:
        """A random delay for ``attempt`` within ``[0, ceiling(attempt)]``."""
        r = rng.random() if rng is not None else random.random()
        return r * self.ceiling(attempt)
