"""The work queue: de-duplication, never-concurrent keys, due times, backoff, shutdown.

Time is a SteppedClock; nothing here waits on the wall clock except the blocking
`get` tests, which are woken by the queue itself (add, clock step, shutdown).
"""

from __future__ import annotations

import threading

import pytest

from rollouts.controller.workqueue import Key, WorkQueue
from rollouts.platform.clock import SteppedClock

A = Key("Rollout", "default", "a")
B = Key("Rollout", "default", "b")


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def queue(clock: SteppedClock) -> WorkQueue:
    return WorkQueue(clock)


def drain(queue: WorkQueue) -> list[Key]:
    taken = []
    while (key := queue.pop_ready()) is not None:
        taken.append(key)
        queue.done(key)
    return taken


def test_a_key_added_twice_is_handed_out_once(queue: WorkQueue) -> None:
    queue.add(A)
    queue.add(B)
    queue.add(A)
    assert drain(queue) == [A, B]


def test_a_key_readded_while_processing_waits_for_done(queue: WorkQueue) -> None:
    queue.add(A)
    assert queue.pop_ready() == A
    queue.add(A)
    assert queue.pop_ready() is None, "never hand out a key that is being processed"
    queue.done(A)
    assert queue.pop_ready() == A
    queue.done(A)
    assert queue.pop_ready() is None


def test_add_after_is_due_only_when_the_clock_reaches_it(queue: WorkQueue, clock: SteppedClock) -> None:
    queue.add_after(A, 30)
    assert queue.pop_ready() is None
    assert queue.next_due() == 30.0
    clock.advance(29.9)
    assert queue.pop_ready() is None
    clock.advance(0.1)
    assert queue.pop_ready() == A


def test_the_earlier_due_time_wins(queue: WorkQueue, clock: SteppedClock) -> None:
    queue.add_after(A, 60)
    queue.add_after(A, 10)
    queue.add_after(A, 30)
    assert queue.next_due() == 10.0
    clock.advance(10)
    assert drain(queue) == [A]
    clock.advance(100)
    assert drain(queue) == [], "superseded due times do not fire again"
    assert queue.next_due() is None


def test_non_positive_delay_is_a_plain_add(queue: WorkQueue) -> None:
    queue.add_after(A, 0)
    queue.add_after(B, -5)
    assert drain(queue) == [A, B]


def test_backoff_doubles_from_5ms_to_a_10s_cap_and_forget_resets(queue: WorkQueue) -> None:
    delays = [queue.add_rate_limited(A) for _ in range(14)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 10.0 and max(delays) == 10.0
    assert queue.num_requeues(A) == 14
    queue.forget(A)
    assert queue.num_requeues(A) == 0
    assert queue.add_rate_limited(A) == 0.005


def test_backoff_is_per_key(queue: WorkQueue) -> None:
    for _ in range(5):
        queue.add_rate_limited(A)
    assert queue.add_rate_limited(B) == 0.005


def test_get_blocks_until_an_add(queue: WorkQueue) -> None:
    got: list[Key | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get(timeout=30)))
    worker.start()
    queue.add(A)
    worker.join(timeout=30)
    assert got == [A]


def test_get_wakes_when_a_stepped_clock_reaches_a_due_time(queue: WorkQueue, clock: SteppedClock) -> None:
    queue.add_after(A, 300)
    got: list[Key | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get(timeout=30)))
    worker.start()
    clock.advance(300)
    worker.join(timeout=30)
    assert got == [A]


def test_get_times_out_with_none(queue: WorkQueue) -> None:
    assert queue.get(timeout=0.01) is None


def test_shutdown_releases_blocked_getters_and_ignores_adds(queue: WorkQueue) -> None:
    got: list[Key | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(timeout=30)
    assert got == [None]
    queue.add(A)
    assert queue.pop_ready() is None and len(queue) == 0


def test_many_workers_never_process_one_key_concurrently(clock: SteppedClock) -> None:
    queue = WorkQueue(clock)
    active: set[Key] = set()
    overlaps: list[Key] = []
    processed: list[Key] = []
    lock = threading.Lock()
    keys = [Key("Rollout", "ns", f"r{i % 5}") for i in range(200)]

    def work() -> None:
        while (key := queue.get(timeout=0.05)) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
            queue.add(key) if len(processed) < 50 else None  # re-add while processing
            with lock:
                active.discard(key)
                processed.append(key)
            queue.done(key)

    for key in keys:
        queue.add(key)
    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert overlaps == []
    assert set(processed) == set(keys)
    assert queue.idle()


def test_workers_of_one_kind_take_only_that_kind_in_the_order_added(queue: WorkQueue) -> None:
    run_a, run_b = Key("AnalysisRun", "ns", "a"), Key("AnalysisRun", "ns", "b")
    for key in (run_a, A, run_b, B):
        queue.add(key)
    assert queue.get(timeout=0, kinds=frozenset({"Rollout"})) == A
    assert queue.get(timeout=0, kinds=frozenset({"AnalysisRun"})) == run_a
    assert queue.pop_ready() == run_b  # any kind: the oldest first
    assert queue.get(timeout=0.01, kinds=frozenset({"AnalysisRun"})) is None
    assert queue.get(timeout=0, kinds=frozenset({"Rollout"})) == B


def test_a_worker_waiting_for_its_kind_is_woken_by_an_add_of_that_kind(queue: WorkQueue) -> None:
    got: list[Key | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get(timeout=30, kinds=frozenset({"Rollout"}))))
    worker.start()
    queue.add(Key("AnalysisRun", "ns", "slow"))
    queue.add(A)
    worker.join(timeout=30)
    assert got == [A]


def test_a_key_added_first_goes_ahead_of_a_queued_wave(queue: WorkQueue) -> None:
    wave = [Key("Rollout", "default", f"w{i}") for i in range(5)]
    for key in wave:
        queue.add(key)
    failing = Key("Rollout", "default", "failing")
    queue.add(failing, first=True)  # new to the queue
    queue.add(wave[3], first=True)  # already queued: moves up behind `failing`, still handed out once
    taken = drain(queue)
    assert taken[:2] == [failing, wave[3]] and taken[2:] == [k for k in wave if k != wave[3]]
    assert len(taken) == len(set(taken)) == 6


def test_keys_added_first_come_out_in_the_order_added_across_kinds_and_ahead_of_the_rest(queue: WorkQueue) -> None:
    wave = [Key("Rollout", "default", f"w{i}") for i in range(3)]
    urgent = [Key("Rollout", "default", f"abort{i}") for i in range(4)]
    run = Key("AnalysisRun", "default", "run")
    queue.add(wave[0])
    queue.add(run)
    queue.add(urgent[0], first=True)
    queue.add(wave[1])
    queue.add(urgent[1], first=True)
    queue.add(Key("Experiment", "default", "exp"), first=True)  # another lane: still in its turn
    queue.add(wave[2])
    queue.add(urgent[2], first=True)
    queue.add(urgent[0], first=True)  # already queued first: keeps its place, is not handed out twice
    queue.add(wave[2], first=True)  # queued plainly: moves up behind the keys added first before it
    queue.add(urgent[3], first=True)
    assert drain(queue) == [urgent[0], urgent[1], Key("Experiment", "default", "exp"), urgent[2], wave[2],
                            urgent[3], wave[0], run, wave[1]]


def test_a_key_added_first_while_processing_keeps_its_turn_among_the_keys_added_first(queue: WorkQueue) -> None:
    c = Key("Rollout", "default", "c")
    queue.add(A)
    assert queue.pop_ready() == A
    queue.add(A, first=True)  # marked first before B and c
    queue.add(B, first=True)
    queue.add(c, first=True)
    assert queue.pop_ready() == B, "never hand out a key that is being processed"
    queue.done(A)
    queue.done(B)
    assert queue.pop_ready() == A  # its turn came before c's
    assert queue.pop_ready() == c


def test_a_key_added_first_while_processing_goes_first_when_done(queue: WorkQueue) -> None:
    c = Key("Rollout", "default", "c")
    queue.add(A)
    assert queue.pop_ready() == A
    queue.add(B)
    queue.add(c)
    queue.add(A, first=True)
    assert queue.pop_ready() == B, "never hand out a key that is being processed"
    queue.done(A)
    assert queue.pop_ready() == A  # ahead of c, queued before it
    assert queue.pop_ready() == c
