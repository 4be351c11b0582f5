"""Refuse (429) clients that keep failing authentication.

A small in-memory sliding window counting *failures only*, rather than Flask-Limiter: what must be
limited is a client guessing tokens or signatures, not a forge sending many valid pushes, and the
check must cost next to nothing so a flood of bad requests cannot slow the good ones.  The state is
per process (each gunicorn worker counts on its own), which only makes the limit looser by the
number of workers.  Memory is bounded: the oldest clients are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(self, limit: int = 20, window: float = 60.0, max_clients: int = 10000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def blocked(self, client: str, now: float | None = None) -> bool:
        """True when ``client`` failed ``limit`` times within the last ``window`` seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(client, now)
            return failures is not None and len(failures) >= self.limit

    def fail(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(client, now)
            if failures is None:
                failures = self._failures[client] = deque(maxlen=self.limit)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            else:
                self._failures.move_to_end(client)
            failures.append(now)
