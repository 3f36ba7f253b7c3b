"""The in-memory cluster's resourceVersion counter, change history and watch streams.

Rules and invariants:
- `ChangeLog.record` is the only way a resourceVersion is spent: versions are a global,
  strictly increasing counter, and each change lands in its kind's bounded history.
- The caller holds the lock of the Condition the log was built with for every call on
  the log; streams take that lock themselves. Recorded objects are never mutated later,
  so history can share them; streams hand out deep copies.
- A cursor older than the newest change dropped from a kind's history is `Gone`.
- A stream sees changes through its filter (namespace, labels): an object that enters
  the filter is ADDED, one that leaves it is DELETED, as a filtered Kubernetes watch.
- A stream ends on its deadline or on `close()` (any thread); `resource_version` is then
  where to resume without missing or repeating a change.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollouts.platform.cluster import EventType, Gone, WatchEvent
from rollouts.platform.patches import clone

Obj = dict[str, Any]


@dataclass(frozen=True)
class Change:
    version: int
    type: EventType
    old: Obj | None  # the state before (None for ADDED)
    new: Obj  # the state after; for DELETED the last state, carrying the delete's version


class ChangeLog:
    def __init__(self, changed: threading.Condition, *, size: int) -> None:
        self.changed = changed
        self.version = 0
        self._size = max(1, size)
        self._history: dict[str, deque[Change]] = {}
        self._floor: dict[str, int] = {}

    def record(self, kind: str, type_: EventType, old: Obj | None, new: Obj) -> int:
        """Spend the next resourceVersion on this change (stamped into `new`) and wake watchers."""
        self.version += 1
        new["metadata"]["resourceVersion"] = str(self.version)
        history = self._history.setdefault(kind, deque())
        history.append(Change(self.version, type_, old, new))
        while len(history) > self._size:
            self._floor[kind] = history.popleft().version
        self.changed.notify_all()
        return self.version

    def check(self, kind: str, cursor: int) -> None:
        floor = self._floor.get(kind, 0)
        if cursor < floor:  # the real server's words: the oldest version it can resume after
            history = self._history.get(kind)
            oldest = history[0].version if history else self.version + 1
            raise Gone(f"too old resource version: {cursor} ({oldest - 1})")

    def after(self, kind: str, cursor: int) -> list[Change]:
        """The changes of `kind` after `cursor`, oldest first."""
        self.check(kind, cursor)
        found: list[Change] = []
        for change in reversed(self._history.get(kind, ())):
            if change.version <= cursor:
                break
            found.append(change)
        found.reverse()
        return found


class LogStream:
    """One watch: a closable iterator of WatchEvents over a ChangeLog."""

    def __init__(self, log: ChangeLog, kind: str, *, wanted: Callable[[Obj], bool], cursor: int,
                 initial: list[WatchEvent], timeout: float | None) -> None:
        self._log, self._kind, self._wanted = log, kind, wanted
        self._cursor, self._pending = cursor, deque(initial)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        self.resource_version: str | None = None if initial else str(cursor)

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> WatchEvent:
        with self._log.changed:
            while not self._closed:
                if self._pending:
                    event = self._pending.popleft()
                    last = not self._pending
                    self.resource_version = str(self._cursor) if last else event.object["metadata"]["resourceVersion"]
                    return event
                changes = self._log.after(self._kind, self._cursor)
                self._cursor = self._log.version  # every change of this kind up to here is now seen
                self._pending.extend(e for c in changes if (e := self._translate(c)) is not None)
                if self._pending:
                    continue
                self.resource_version = str(self._cursor)
                remaining = None if self._deadline is None else self._deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._log.changed.wait(remaining)
        raise StopIteration

    def _translate(self, change: Change) -> WatchEvent | None:
        was_in = change.old is not None and self._wanted(change.old)
        now_in = change.type != "DELETED" and self._wanted(change.new)
        if now_in:
            return WatchEvent("MODIFIED" if was_in else "ADDED", clone(change.new))
        return WatchEvent("DELETED", clone(change.new)) if was_in else None

    def close(self) -> None:
        with self._log.changed:
            self._closed = True
            self._log.changed.notify_all()
