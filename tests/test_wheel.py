"""The wheel carries what the commands need: built from the checkout, installed with its runtime
dependencies into a fresh venv, `rollouts lint` works from a directory that is not the checkout (so
nothing can be read from it by accident), and so does `rollouts demo --short`: that one is
tests/demo/test_demo.py's end-to-end demo, which runs the installed wheel's command.

The venv is made and filled by uv (a test dependency), which resolves the wheel's own metadata as
pip does, from its cache outside the checkout (~/.cache/uv): seconds instead of pip's minute and a
half. What is installed is read back with importlib.metadata inside the venv, so the check does not
depend on the installer. The `wheel` and `installed` fixtures are tests/conftest.py's (one build per session).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.wheel import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def test_the_wheel_carries_every_example_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name.removeprefix("rollouts/examples/") for name in archive.namelist()
                    if name.startswith("rollouts/examples/")}
        assert not [name for name in archive.namelist() if name.startswith(("examples/", "tests/"))]
    expected = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.is_file()}
    assert expected and packaged == expected


def test_the_wheel_installs_no_test_dependency(installed: Path) -> None:
    listed = json.loads(run(installed / "python", "-c", "import importlib.metadata as m, json; "
                            "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))", cwd=installed))
    names = {name.lower() for name in listed}
    assert {"rollouts", "kubernetes", "pydantic"} <= names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "kmock", "responses", "import-linter", "uv"}


def test_lint_reads_a_packaged_example_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = run(installed / "python", "-c",
                "import importlib.resources as r; print(r.files('rollouts') / 'examples' / 'istio-canary')",
                cwd=tmp_path).strip()
    assert not Path(where).resolve().is_relative_to(ROOT)
    out = run(installed / "rollouts", "lint", where, cwd=tmp_path)
    files = len(list((EXAMPLES / "istio-canary").glob("*.yaml")))
    assert f"OK: {files} files" in out, out
