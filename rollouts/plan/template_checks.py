"""The checks of an AnalysisTemplate or ClusterAnalysisTemplate document as lint and the controller run them.

Rules:
- Metadata (a name), unknown fields (spec.problems.field_problems) and the spec's rules
  (analysis.checks, the same checker AnalysisRun building calls).
- Pure: returns `Problem`s, never raises for bad input, no I/O.
"""

from __future__ import annotations

from analysis.checks import spec_problems
from analysis.model import AnalysisTemplate
from rollouts.spec.problems import Problem, field_problems


def validate_template(template: AnalysisTemplate) -> list[Problem]:
    """Every problem of an AnalysisTemplate or ClusterAnalysisTemplate, errors and warnings."""
    found = [] if template.metadata.name else [Problem("metadata.name", "is required", "add metadata.name")]
    found.extend(field_problems(template))
    found.extend(spec_problems(template))
    return found
