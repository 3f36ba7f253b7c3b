"""How many inputs each fuzz property draws: its default, or its share of ROLLOUTS_FUZZ_EXAMPLES.

`examples(default)` is a property's hypothesis `max_examples`. With ROLLOUTS_FUZZ_EXAMPLES=N
set, N inputs are spread over every fuzz property in proportion to its default (the
defaults total DEFAULT_TOTAL; tests/fuzz/test_budget.py keeps that true), never fewer than
the default: `ROLLOUTS_FUZZ_EXAMPLES=1000000 make fuzz` draws a million inputs in all (hours
on one core; `make fuzz` turns the per-test timeout off, and `timeout(seconds)`, a property's own
pytest-timeout marker, is off too: a marker outranks --timeout=0). Deterministic either way (derandomize).
"""

from __future__ import annotations

import os

ENV = "ROLLOUTS_FUZZ_EXAMPLES"
DEFAULT_TOTAL = 10_206


def examples(default: int) -> int:
    wanted = os.environ.get(ENV, "").strip()
    if not wanted:
        return default
    return max(default, round(int(wanted) * default / DEFAULT_TOTAL))


def timeout(seconds: float) -> float:
    """A property's pytest-timeout: `seconds` for its default examples, none (0) in an opt-in run,
    whose length the budget sets."""
    return 0 if os.environ.get(ENV, "").strip() else seconds
