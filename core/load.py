"""Process-wide count of requests in flight, read by the in-flight cap and by graceful degradation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """A thread-safe counter of requests being answered by this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        """Requests in flight now."""
        return self._count

    def try_enter(self, cap: int) -> bool:
        """Count one more request unless ``cap`` are already in flight."""
        with self._lock:
            if self._count >= cap:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        """Count one request less."""
        with self._lock:
            self._count = max(0, self._count - 1)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Count a request for the duration of the block (no cap)."""
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            self.leave()


in_flight = InFlight()
