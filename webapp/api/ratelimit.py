"""Per-token rate limits: requests per minute and new jobs per hour, in a sliding window.

Kept in this process's memory: right for one server per data folder (webapp/lock.py makes sure
of that); a restart forgets the windows, which only ever lets a caller in earlier. The limits
can be changed with PLINTH_API_REQUESTS_PER_MINUTE and PLINTH_API_JOBS_PER_HOUR.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Limit:
    count: int
    window_s: float
    words: str  # "requests a minute"


def requests_limit() -> Limit:
    return Limit(_env_int("PLINTH_API_REQUESTS_PER_MINUTE", 120), 60.0, "requests a minute")


def jobs_limit() -> Limit:
    return Limit(_env_int("PLINTH_API_JOBS_PER_HOUR", 20), 3600.0, "new models an hour")


class Window:
    """Sliding windows per key: `hit(key, limit)` records a use and returns 0, or, when the key
    is over its limit, records nothing and returns the seconds until it may try again."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._hits: dict[tuple[str, float], deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: Limit) -> int:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault((key, limit.window_s), deque())
            while hits and hits[0] <= now - limit.window_s:
                hits.popleft()
            if len(hits) >= limit.count:
                return max(1, math.ceil(hits[0] + limit.window_s - now))
            hits.append(now)
            return 0

    def check(self, key: str, limit: Limit) -> int:
        """Like hit, without recording a use (for a check before the work is known to count)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get((key, limit.window_s), deque())
            live = [t for t in hits if t > now - limit.window_s]
            return max(1, math.ceil(live[0] + limit.window_s - now)) if len(live) >= limit.count else 0


def message(limit: Limit, retry_after: int) -> str:
    wait = f"{retry_after} second{'s' if retry_after != 1 else ''}" if retry_after < 120 else \
        f"{math.ceil(retry_after / 60)} minutes"
    return (f"Too many requests: this token may make {limit.count} {limit.words}. "
            f"Try again in {wait}.")
