"""Argo's golden vectors for the condition language and the measurement phase.

The vectors are copies of shared/conformance/*.json kept in tests/analysis/vectors/, so these
tests run wherever the repository is cloned; when shared/ sits beside the repository the
copies must equal it. The NaN/Inf rows of argo-rollouts.md §4.3 are not representable in
strict JSON and are written out below.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from analysis.expr import ExprError, MeasurementPhase, eval_condition, evaluate_condition

VECTORS = Path(__file__).resolve().parent / "vectors"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
NAMES = ("argo-eval-vectors.json", "argo-phase-vectors.json")


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())
    return data


EVAL = load("argo-eval-vectors.json")
PHASE = load("argo-phase-vectors.json")


def test_vectors_are_all_there() -> None:
    assert len(EVAL) == 88  # argo-rollouts.md §4.3, rows 1-88
    assert len(PHASE) == 23


@pytest.mark.parametrize("name", NAMES)
def test_copies_equal_shared_conformance(name: str) -> None:
    shared = SHARED / name
    if not shared.exists():
        # A clone without shared/ beside it: the copies are the source of truth.
        assert (VECTORS / name).exists()
        return
    assert json.loads(shared.read_text()) == json.loads((VECTORS / name).read_text())


@pytest.mark.parametrize(
    "vector", EVAL, ids=[f"row{i + 1}:{v['expr']}|{json.dumps(v['result'])}" for i, v in enumerate(EVAL)]
)
def test_eval_vector(vector: dict[str, Any]) -> None:
    if vector["expect"] == "error":
        with pytest.raises(ExprError):
            eval_condition(vector["expr"], vector["result"])
    else:
        assert eval_condition(vector["expr"], vector["result"]) is vector["expect"]


@pytest.mark.parametrize(
    "vector",
    PHASE,
    ids=[f"{v['successCondition']}|{v['failureCondition']}|{json.dumps(v['result'])}" for v in PHASE],
)
def test_phase_vector(vector: dict[str, Any]) -> None:
    verdict = evaluate_condition(vector["successCondition"], vector["failureCondition"], vector["result"])
    assert verdict.phase is MeasurementPhase(vector["phase"])
    assert verdict.message  # every verdict says why


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("success", "failure", "result", "phase"),
    [
        ("result >= 0.9", "result < 0.9", NAN, "Inconclusive"),  # NaN compares false both ways
        ("result >= 0.9 || isNaN(result)", None, NAN, "Successful"),
        ("result >= 0.9", None, NAN, "Failed"),
        ("result >= 0.9", None, INF, "Successful"),
        (None, "isInf(result)", INF, "Failed"),
    ],
)
def test_nan_and_inf_vectors(success: str | None, failure: str | None, result: float, phase: str) -> None:
    assert evaluate_condition(success, failure, result).phase is MeasurementPhase(phase)
