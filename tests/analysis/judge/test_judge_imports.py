"""Linting a template that uses the judge checks its config without loading numpy or scipy."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_imports import ROOT, imported_by


def test_lint_of_the_judge_example_loads_no_numpy_or_scipy(tmp_path: Path) -> None:
    loaded = imported_by(tmp_path, "lint", str(ROOT / "examples" / "judge"))
    assert "analysis" in loaded
    assert not loaded & {"numpy", "scipy"}
