"""PagerDuty's per-routing-key limit: at most N events in any minute, and a 429's Retry-After.

Events API v2 accepts about 120 events a minute per routing key (integration key) and answers
429 beyond it. Each key is paced on its own, so pages to one team never wait behind another's;
within a key, an event waits only when the last minute already holds N of them (a sliding
window: a burst of up to N goes at once). A 429 blocks the key for its Retry-After. The state is
per process: the adapter factory gives every pager it builds the same pacer (a key may serve
several services).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class KeyPacer:
    """Space the events of each routing key: `per_minute` in any minute, 429s honoured."""

    def __init__(
        self,
        per_minute: int,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._sent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Block until this key may send another event, take its slot; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._monotonic()
                sent = self._sent.setdefault(key, deque())
                while sent and sent[0] <= now - WINDOW_SECONDS:
                    sent.popleft()
                pause = max(self._blocked.get(key, now) - now, 0.0)
                if len(sent) >= self.per_minute:
                    pause = max(pause, sent[0] + WINDOW_SECONDS - now)
                if pause <= 0:
                    sent.append(now)
                    return waited
            self._sleep(pause)
            waited += pause

    def block(self, key: str, seconds: float) -> None:
        """Hold every event of this key for `seconds` (a 429's Retry-After)."""
        with self._lock:
            until = self._monotonic() + max(seconds, 0.0)
            self._blocked[key] = max(self._blocked.get(key, 0.0), until)
