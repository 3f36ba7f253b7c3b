"""Fixtures for the controller's unit tests: a SteppedClock and an InMemoryCluster on it (no workloads).

A module that wants another clock or cluster defines its own fixture of the same name.
"""

from __future__ import annotations

import pytest

from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock


@pytest.fixture
def clock() -> SteppedClock:
    """A stepped clock at its default start; nothing waits on the wall clock."""
    return SteppedClock()


@pytest.fixture
def cluster(clock: SteppedClock) -> InMemoryCluster:
    """An empty InMemoryCluster on `clock`, without the workload controllers (no Pods from ReplicaSets)."""
    return InMemoryCluster(clock=clock.now, workloads=False)
