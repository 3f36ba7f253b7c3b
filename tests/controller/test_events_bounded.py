"""The event recorder is bounded in bytes, not only in entries (issue 14 item 5).

Its correlation cache holds 4,096 keys and its recent events 1,000, but an entry's size used to
follow its message: a key was (object, type, reason, message) and a ReconcileError or a
measurement's error text can be any length, so 4,096 keys of 5,000-character messages held
about 20 MiB. Messages are now cut to MAX_MESSAGE characters (written, kept and passed on alike)
and the cache keys on a fixed-size digest.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.platform.events import _CACHE_SIZE, _KEEP, MAX_MESSAGE, EventRecorder, bounded_message

ROLLOUT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
           "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}, "spec": {}}


class _Sink:
    """A cluster that accepts every Event and keeps none (what is measured is the recorder alone)."""

    def __init__(self) -> None:
        self.created: list[int] = []

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.created.append(len(obj["message"]))
        return obj

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}


def deep_size(root: object) -> int:
    seen: set[int] = set()
    stack, size = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return size


def test_a_long_message_is_cut_in_the_event_in_memory_and_still_deduplicated() -> None:
    clock = SteppedClock()
    cluster = InMemoryCluster(clock=clock.now, workloads=False)
    rollout = cluster.create({**ROLLOUT, "metadata": {"name": "web", "namespace": "shop"}})
    huge = "x" * 100_000
    recorder = EventRecorder(cluster, clock=clock)
    recorder.record(rollout, type="Warning", reason="ReconcileError", message=huge)
    recorder.record(rollout, type="Warning", reason="ReconcileError", message=huge)
    [event] = cluster.list("Event", "shop")
    assert len(event["message"]) == MAX_MESSAGE and event["message"].endswith("... (cut from 100000 characters)")
    assert event["message"].startswith("x" * 900)
    assert event["count"] == 2  # the same (cut) message is the same event
    assert [len(e.message) for e in recorder.recorded] == [MAX_MESSAGE, MAX_MESSAGE]
    assert bounded_message("short") == "short" and bounded_message("y" * MAX_MESSAGE) == "y" * MAX_MESSAGE


def test_the_recorder_holds_a_bounded_number_of_bytes_whatever_the_messages() -> None:
    sink = _Sink()
    recorder = EventRecorder(sink, clock=SteppedClock())  # type: ignore[arg-type]
    for i in range(_CACHE_SIZE + 500):  # every key distinct, every message 5,000 characters
        recorder.record(ROLLOUT, type="Warning", reason="ReconcileError", message=f"{i:08d}" + "e" * 4992)
    assert len(recorder._seen) == _CACHE_SIZE and len(recorder.recorded) == _KEEP
    assert max(sink.created) == MAX_MESSAGE
    cache, recent = deep_size(recorder._seen), deep_size(recorder.recorded)
    assert cache <= _CACHE_SIZE * 400  # a digest and (namespace, Event name, count) per key: ~1.6 MiB at most
    assert recent <= _KEEP * (MAX_MESSAGE + 600)  # a cut message and short strings per event: ~1.6 MiB at most
