"""The console's one backoff: capped exponential, jittered. The LMS client's retries
(`lms.transport.RetryPolicy`) and the watcher's reconnects (`operations.watch`) both use it.

Capped in the exponent too: `base * 2 ** attempt` overflows a float after about 1,000 attempts
(OverflowError), which a reconnect loop down for a few hours reaches. The exponent stops growing
long before that: past `MAX_EXPONENT` the delay is the cap anyway.
"""

from __future__ import annotations

import random

MAX_EXPONENT = 30  # 2**30 * any sane base is far past any cap


def capped_delay(attempt: int, *, base: float, cap: float, jitter: float = 1.0) -> float:
    """`min(cap, base * 2**attempt) * jitter` (jitter in 0..1), for any attempt count."""
    exponent = min(max(attempt, 0), MAX_EXPONENT)
    scale: int = 2 ** exponent
    return min(cap, base * scale) * jitter


class Backoff:
    """Stateful backoff for a reconnect loop: each `next_delay()` waits longer, up to `cap`, with
    jitter between half and all of it (never a tight loop); `reset()` after a success."""

    def __init__(self, base: float = 0.5, cap: float = 15.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = capped_delay(self.attempt, base=self.base, cap=self.cap, jitter=self._rng.uniform(0.5, 1.0))
        self.attempt += 1
        return delay


__all__ = ["Backoff", "MAX_EXPONENT", "capped_delay"]
