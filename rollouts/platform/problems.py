"""A problem found in a spec: a value naming the field, what is wrong, and the fix.

Rules:
- `Problem(path, message, fix)`: `path` is the wire path of the field
  (`spec.strategy.canary.steps[0].setWeight`, `spec.metrics[1].count`); `str(problem)`
  is `path: message (fix)`. Lint prefixes the file and `Kind/name`; the controller puts
  it in the InvalidSpec condition; an AnalysisRun that cannot run says it in its message.
  One checker writes each problem, so all three say the same words.
- Severity ERROR: the object cannot run as written (lint exits 1, the controller sets
  InvalidSpec and shifts no traffic). WARNING: Argo Rollouts accepts it and this
  controller ignores it safely; it never fails lint.
- Pure values; `join` builds paths, `did_you_mean` proposes the closest known name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Problem", "Severity", "did_you_mean", "join", "warning"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} ({self.fix})"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def warning(path: str, message: str, fix: str) -> Problem:
    return Problem(path, message, fix, Severity.WARNING)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    pool = list(candidates)
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        return lowered.get(word.lower())
    return close[0]
