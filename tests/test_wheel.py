"""The wheel carries what the commands need: built from the checkout, installed with its runtime
dependencies into a fresh venv, `rollouts lint` and `rollouts demo --short` work from a directory
that is not the checkout (so nothing can be read from it by accident).

Slow: the build, the venv and the short demo take a minute or two (pip's cache makes the
dependencies quick). The demo needs Debian's prometheus, as tests/demo does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require_prometheus

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)
    assert result.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--quiet", "--wheel-dir", out, cwd=out)
    [built] = out.glob("rollouts-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its runtime dependencies: its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", venv, cwd=venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=venv)
    return venv / "bin"


def test_the_wheel_carries_every_example_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name.removeprefix("rollouts/examples/") for name in archive.namelist()
                    if name.startswith("rollouts/examples/")}
        assert not [name for name in archive.namelist() if name.startswith(("examples/", "tests/"))]
    expected = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.is_file()}
    assert expected and packaged == expected


def test_the_wheel_installs_no_test_dependency(installed: Path) -> None:
    listed = json.loads(run(installed / "python", "-m", "pip", "list", "--format", "json", cwd=installed))
    names = {package["name"].lower() for package in listed}
    assert "rollouts" in names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "kmock", "responses", "import-linter"}


def test_lint_reads_a_packaged_example_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = run(installed / "python", "-c",
                "import importlib.resources as r; print(r.files('rollouts') / 'examples' / 'istio-canary')",
                cwd=tmp_path).strip()
    assert not Path(where).resolve().is_relative_to(ROOT)
    out = run(installed / "rollouts", "lint", where, cwd=tmp_path)
    files = len(list((EXAMPLES / "istio-canary").glob("*.yaml")))
    assert f"OK: {files} files" in out, out


def test_the_short_demo_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    require_prometheus()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    summary = json.loads(run(installed / "rollouts", "demo", "--short", "--json", cwd=tmp_path, env=env, timeout=300))
    assert summary["ok"] is True
    assert [(r["image"], r["outcome"]) for r in summary["releases"]] == [
        ("demo:v2", "Promoted"), ("demo:v3", "Aborted"), ("demo:v4", "Aborted")], summary
