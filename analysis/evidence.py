"""What an AnalysisRun's status proves: enough evidence to promote a canary, or what is missing.

Rules (the safety rule: a canary is promoted only on evidence):
- Only the metrics a run judges count: dry-run metrics never gate a promotion.
- A judged metric is evidence when it has at least one Successful measurement
  (`metricResults[].successful >= 1`; the counter survives measurement retention).
  Argo also reads a run as Successful when every measurement Errored or Failed within
  its limits (`count: 1` and one Error, argo-rollouts#4479): that is not evidence here.
- While the run is still going, its latest measurement of a judged metric must not be
  an Error either (`consecutiveError == 0`): a backend that stopped answering proves
  nothing about the canary now.
- A run that cannot be read, whose spec cannot run, or that is not Successful (for a
  completed run) is not evidence. `missing(run)` says why in one sentence naming the
  run and the metric; None means the run is evidence.
- Pure: plain documents in, a sentence out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from analysis.args import ArgError
from analysis.build import SpecError, metric_rules
from analysis.model import AnalysisPhase, AnalysisRun, AnalysisRunStatus


def missing(doc: Mapping[str, Any]) -> str | None:
    """Why the run `doc` is not (yet) evidence for promotion, or None when it is."""
    name = str((doc.get("metadata") or {}).get("name") or "?") if isinstance(doc, Mapping) else "?"
    try:
        run = AnalysisRun.load(dict(doc))
        rules = metric_rules(run.spec)
    except (ValidationError, SpecError, ArgError, TypeError, ValueError):
        return f"AnalysisRun '{name}' cannot be read"
    status = run.status or AnalysisRunStatus()
    phase = status.phase or AnalysisPhase.PENDING
    if phase.completed and phase is not AnalysisPhase.SUCCESSFUL:
        return f"AnalysisRun '{name}' is {phase.value}"
    results = {result.name: result for result in status.metric_results or []}
    for rule in rules:
        if rule.dry_run:
            continue
        result = results.get(rule.name)
        if result is None or not result.successful:
            return f"AnalysisRun '{name}': metric '{rule.name}' has no successful measurement yet"
        if not phase.completed and result.consecutive_error:
            return (f"AnalysisRun '{name}': metric '{rule.name}' could not be measured the last "
                    f"{result.consecutive_error} time(s)")
    return None
