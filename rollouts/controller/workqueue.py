"""The controllers' work queue: keys to reconcile, de-duplicated, with due times.

Rules (client-go's rate-limiting delaying queue, sample-controller's use of it):
- Items are `Key(kind, namespace, name)`. A key is either waiting (due later),
  queued (ready), processing, or absent. A key queued twice is handed out once.
- A key re-added while it is processing is not handed out again until `done(key)`
  is called; then it is queued once more. No key is ever processed by two workers
  at the same time.
- `add_after(key, seconds)` makes the key due at now + seconds; when the key is
  already waiting, the earlier due time wins. `seconds <= 0` is a plain `add`.
- `add_rate_limited(key)` is `add_after` with a per-key exponential backoff:
  5 ms, 10 ms, 20 ms … capped at 10 s. `forget(key)` resets it (after a success).
- Time comes from the injected clock's `monotonic()`, so a `SteppedClock` drives
  due times in tests: `pop_ready()` and `next_due()` never block and are what the
  deterministic `Manager.step()` uses; `get(timeout)` blocks (real time) for the
  threaded workers and wakes early when a stepped clock is advanced.
- Keys wait in one lane per kind, in the order they were added; `get(kinds=...)` takes
  the oldest key of those kinds, so workers can be dedicated to a kind (a Rollout worker
  never waits behind a slow measurement); without `kinds`, the oldest key of any kind.
- `add(key, first=True)` puts the key ahead of every key queued without `first` (a Rollout whose
  analysis just failed: its abort must not wait behind a wave of updates); keys added first come out
  among themselves in the order they were added first (FIFO: an older abort is not overtaken by a
  newer one). A key already queued moves up (one already queued first keeps its place), a key
  processing is queued first when it is done, in the place its `add` gave it.
- After `shutdown()`, `get` returns None at once and adds are ignored.
- `on_take(key, seconds)` is told how long a key waited queued (due) before it was taken
  (client-go's `workqueue_queue_duration_seconds`).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from rollouts.platform.clock import Clock

__all__ = ["BASE_DELAY", "MAX_DELAY", "Key", "WorkQueue"]

BASE_DELAY = 0.005
MAX_DELAY = 10.0
_URGENT = 1 << 62  # subtracted from a key added first's order: below every other key's, FIFO among those


class Key(NamedTuple):
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class WorkQueue:
    def __init__(
        self,
        clock: Clock,
        *,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        on_add: Callable[[Key], None] | None = None,
        on_take: Callable[[Key, float], None] | None = None,
    ) -> None:
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._on_add = on_add
        self._on_take = on_take
        self._queued_at: dict[Key, float] = {}  # when a queued key became ready (monotonic)
        self._cond = threading.Condition()
        self._lanes: dict[str, deque[tuple[int, Key]]] = {}  # kind -> (order added, key), FIFO
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._waiting: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()
        self._failures: dict[Key, int] = {}
        self._first: dict[Key, int] = {}  # to be queued ahead of the others when next queued -> its order
        self._shutting_down = False
        subscribe = getattr(clock, "on_advance", None)
        if callable(subscribe):
            subscribe(self.wake)

    # ------------------------------------------------------------ adding

    def add(self, key: Key, *, first: bool = False) -> None:
        with self._cond:
            if first and key in self._dirty and key not in self._processing:
                self._move_first_locked(key)
                return
            if first:
                self._first.setdefault(key, next(self._seq) - _URGENT)
            self._add_locked(key)

    def add_after(self, key: Key, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            due = self._clock.monotonic() + seconds
            current = self._waiting.get(key)
            if current is not None and current <= due:
                return
            self._waiting[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: Key) -> float:
        """Requeue after this key's next backoff delay; returns the delay used."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = float(min(self._base_delay * (2**failures), self._max_delay))
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: Key) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # ------------------------------------------------------------ taking

    def pop_ready(self) -> Key | None:
        """The next key that is due now, marked processing; None when none is due."""
        with self._cond:
            if self._shutting_down:
                return None
            self._promote_due_locked()
            return self._take_locked(None)

    def get(self, timeout: float | None = None, *, kinds: frozenset[str] | None = None) -> Key | None:
        """Block until a key (of `kinds`, when given) is due (or `timeout` real seconds pass, or shutdown)."""
        with self._cond:
            remaining = timeout
            while not self._shutting_down:
                self._promote_due_locked()
                key = self._take_locked(kinds)
                if key is not None:
                    return key
                wait = self._until_next_due_locked()
                if remaining is not None:
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                started = time.monotonic()
                self._cond.wait(wait)
                if remaining is not None:
                    remaining -= time.monotonic() - started
            return None

    def done(self, key: Key) -> None:
        """The worker finished `key`; a re-add that came meanwhile is queued now."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._enqueue_locked(key)

    # ------------------------------------------------------------ state

    def next_due(self) -> float | None:
        """Monotonic time of the earliest waiting key, None when nothing waits."""
        with self._cond:
            self._drop_stale_locked()
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        """Keys queued or waiting (not those processing)."""
        with self._cond:
            return len(self._dirty | self._waiting.keys())

    def idle(self) -> bool:
        """Nothing is queued and nothing is processing (waiting keys may remain)."""
        with self._cond:
            self._promote_due_locked()
            return not any(self._lanes.values()) and not self._processing

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # ------------------------------------------------------------ internals

    def _add_locked(self, key: Key) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._on_add is not None:
            self._on_add(key)
        if key not in self._processing:
            self._enqueue_locked(key)

    def _enqueue_locked(self, key: Key) -> None:
        lane = self._lanes.setdefault(key.kind, deque())
        order = self._first.pop(key, None)
        if order is not None:
            _insert_urgent(lane, order, key)
        else:
            lane.append((next(self._seq), key))
        self._queued_at.setdefault(key, self._clock.monotonic())
        self._cond.notify_all()  # workers wait for different kinds

    def _move_first_locked(self, key: Key) -> None:
        lane = self._lanes[key.kind]
        for entry in lane:
            if entry[1] == key:
                if entry[0] < 0:
                    return  # already queued first: it keeps its place
                lane.remove(entry)
                break
        _insert_urgent(lane, next(self._seq) - _URGENT, key)
        self._cond.notify_all()

    def _take_locked(self, kinds: frozenset[str] | None) -> Key | None:
        """The oldest queued key among `kinds` (every kind when None)."""
        lanes = [lane for kind, lane in self._lanes.items() if lane and (kinds is None or kind in kinds)]
        if not lanes:
            return None
        _, key = min(lanes, key=lambda lane: lane[0][0]).popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        queued = self._queued_at.pop(key, None)
        if self._on_take is not None and queued is not None:
            self._on_take(key, max(self._clock.monotonic() - queued, 0.0))
        return key

    def _promote_due_locked(self) -> None:
        now = self._clock.monotonic()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) != due:
                continue  # superseded by an earlier due time
            del self._waiting[key]
            self._add_locked(key)
            if key in self._queued_at:  # it was due at `due`, not when a worker came to look
                self._queued_at[key] = min(self._queued_at[key], due)

    def _drop_stale_locked(self) -> None:
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def _until_next_due_locked(self) -> float | None:
        self._drop_stale_locked()
        if not self._heap:
            return None
        return max(self._heap[0][0] - self._clock.monotonic(), 0.0)


def _insert_urgent(lane: deque[tuple[int, Key]], order: int, key: Key) -> None:
    """Behind the lane's keys added first before it, ahead of the rest (orders stay ascending)."""
    at = next((i for i, (other, _) in enumerate(lane) if other > order), len(lane))
    lane.insert(at, (order, key))
