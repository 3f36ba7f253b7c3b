"""Benchmark: compiled conditions against the same conditions as native Python lambdas.

Run: .venv/bin/python benchmarks/bench_expr.py

Each condition and its native baseline are timed with timeit in the same run, in
alternating rounds (these machines are noisy), keeping the best round of each, and printed
as a ratio compiled/native. The target is within 3x of native. Nothing here asserts a time.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.expr import compile_expr

ROUNDS = 15

CASES: list[tuple[str, Callable[[Any], object], object]] = [
    (
        "result[0] >= 0.95 && result[0] < 1.5",
        lambda r: r[0] >= 0.95 and r[0] < 1.5,
        [0.97],
    ),
    (
        "all(result, {# > 0.9})",
        lambda r: all(x > 0.9 for x in r),
        [0.91 + i / 100 for i in range(10)],
    ),
    (
        "result.a > 0 && result.b && all(result.c, {# < 5}) && result.d == nil",
        lambda r: r["a"] > 0 and r["b"] and all(x < 5 for x in r["c"]) and r["d"] is None,
        {"a": 1.0, "b": True, "c": [1.0, 2.0, 3.0, 4.0], "d": None},
    ),
    (
        "len(result) > 0 && max(result) < 0.5",
        lambda r: len(r) > 0 and max(r) < 0.5,
        [0.1, 0.2, 0.3],
    ),
]


def per_call_ns(timer: timeit.Timer, number: int) -> float:
    return timer.timeit(number) / number * 1e9


def measure(text: str, native: Callable[[Any], object], result: object) -> tuple[float, float]:
    """Best-of-ROUNDS nanoseconds per call for the compiled condition and for `native`."""
    evaluate = compile_expr(text).evaluate
    env = {"result": result}
    if evaluate(env) != bool(native(result)):
        raise SystemExit(f"{text!r}: compiled and native disagree")
    ours = timeit.Timer("evaluate(env)", globals={"evaluate": evaluate, "env": env})
    theirs = timeit.Timer("native(result)", globals={"native": native, "result": result})
    number = max(1000, ours.autorange()[0] // 4)
    best_ours = best_theirs = float("inf")
    for _ in range(ROUNDS):
        best_ours = min(best_ours, per_call_ns(ours, number))
        best_theirs = min(best_theirs, per_call_ns(theirs, number))
    return best_ours, best_theirs


def main() -> int:
    worst = 0.0
    print(f"{'condition':<72} {'compiled':>9} {'native':>9} {'ratio':>6}")
    for text, native, result in CASES:
        ours, theirs = measure(text, native, result)
        worst = max(worst, ours / theirs)
        print(f"{text[:72]:<72} {ours:>7.0f}ns {theirs:>7.0f}ns {ours / theirs:>5.2f}x")
    print(f"worst ratio: {worst:.2f}x native (target: within 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
