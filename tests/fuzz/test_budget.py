"""The fuzz budget's opt-in (tests/fuzz/budget.py): the defaults add up, and a run of N shares N out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fuzz import budget

HERE = Path(__file__).parent


def defaults() -> list[int]:
    return [int(n) for path in sorted(HERE.glob("test_fuzz_*.py"))
            for n in re.findall(r"examples\((\d+)\)", path.read_text())]


def test_the_default_total_is_the_sum_of_every_property_default() -> None:
    assert len(defaults()) == 9
    assert sum(defaults()) == budget.DEFAULT_TOTAL


def test_a_million_is_shared_out_in_proportion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget.ENV, raising=False)  # unset, as in `make test`, even inside the opt-in run
    assert [budget.examples(n) for n in defaults()] == defaults()
    monkeypatch.setenv(budget.ENV, "1000000")
    shared = [budget.examples(n) for n in defaults()]
    assert abs(sum(shared) - 1_000_000) <= len(shared)
    assert all(s >= n for s, n in zip(shared, defaults(), strict=True))


def test_a_property_timeout_is_off_in_the_opt_in_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget.ENV, raising=False)
    assert budget.timeout(120) == 120
    monkeypatch.setenv(budget.ENV, "1000000")
    assert budget.timeout(120) == 0  # pytest-timeout: 0 is no timeout (a marker outranks --timeout=0)
