"""The chart under test: the helm binary `make deps` installed, and `helm template` as a function.

helm is never skipped: when tools/helm.sh has not installed it, every chart test fails and says
to run `make deps`. Each helm call gets its own empty HELM_*_HOME directories, so nothing on
the machine (repositories, plugins, a kubeconfig) changes what it renders.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rollouts"
RELEASE, NAMESPACE = "r", "rollouts-system"

Render = Callable[..., list[dict[str, Any]]]
Helm = Callable[..., subprocess.CompletedProcess[str]]


def helm_path() -> Path:
    where = subprocess.run([str(ROOT / "tools" / "helm.sh"), "--where"], capture_output=True, text=True, check=True)
    return Path(where.stdout.strip())


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    path = helm_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"helm is not installed at {path}: run `make deps` (tools/helm.sh installs it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": str(home / "no-kubeconfig")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(helm_binary), *args], capture_output=True, text=True, env=env, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    yield run


@pytest.fixture(scope="session")
def render(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """`helm template` with `values` (a dict, written to a values file): the rendered documents."""
    folder = tmp_path_factory.mktemp("values")
    cache: dict[str, list[dict[str, Any]]] = {}

    def run(values: dict[str, Any] | None = None, *, crds: bool = False) -> list[dict[str, Any]]:
        text = yaml.safe_dump(values or {}, sort_keys=True)
        key = f"{crds}:{text}"
        if key not in cache:
            path = folder / f"values-{len(cache)}.yaml"
            path.write_text(text)
            flags = ["--include-crds"] if crds else []
            out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(path), *flags).stdout
            cache[key] = [doc for doc in yaml.safe_load_all(out) if doc]
        return copy.deepcopy(cache[key])

    return run


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)
