"""Clocks for the shells: the only place the controllers read time.

Rules:
- The core never reads a clock; shells call `clock.now()` once per reconcile and
  pass the value down. Every timestamp is timezone-aware UTC.
- `monotonic()` is for intervals inside one process (queue due times, lease
  retries). It never goes backwards; on a `SteppedClock` it is the seconds
  stepped since the clock was made, so `now()` and `monotonic()` move together.
- `SteppedClock` moves only when told to (`advance`, `advance_to`), so tests,
  the demo and backtests are deterministic. Listeners registered with
  `on_advance` are called after every step, outside the clock's lock, so a
  blocked work queue can wake up and look at its due items again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from rollouts.platform.times import to_utc

__all__ = ["Clock", "SteppedClock", "SystemClock", "to_utc"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...




class SystemClock:
    """The wall clock for `now()` and `time.monotonic()` for intervals."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class SteppedClock:
    """A clock that moves only when stepped.

    >>> clock = SteppedClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> clock.advance(90).isoformat(), clock.monotonic()
    ('2024-01-01T00:01:30+00:00', 90.0)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = to_utc(start or datetime(2024, 1, 1, tzinfo=UTC))
        self._now = self._start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - self._start).total_seconds()

    def advance(self, seconds: float | timedelta) -> datetime:
        """Step forward by `seconds` (never backwards); returns the new now."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"SteppedClock.advance: cannot step backwards by {step}")
        with self._lock:
            self._now += step
            moment = self._now
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return moment

    def advance_to(self, moment: datetime) -> datetime:
        """Step to `moment` if it is later than now; an earlier moment is a no-op."""
        with self._lock:
            step = to_utc(moment) - self._now
        return self.advance(max(step, timedelta(0)))

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every step (used by the work queue to wake up)."""
        with self._lock:
            self._listeners.append(listener)
