"""The real control plane (etcd, kube-apiserver, kube-controller-manager 1.20.2), session-scoped.

`tools/k8s/build.sh` builds the binaries once into a cache outside the checkout (about 11
minutes cold on 2 cores) and is a no-op when the cache is warm. A build that fails fails
the tests that need it: the suite never skips a real component. Every test here is `slow`
(tests/conftest.py): `make test` runs them, `make check` does not.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.kube.controlplane import ISTIO_CRDS, ControlPlane, ControlPlaneError, PodReadiness, ensure_binaries

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "k8s" / "build.sh"


def crds() -> list[dict[str, Any]]:
    """The project's CRDs (crds/*.yaml), as the chart and `kubectl apply -f crds/` install them."""
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return docs


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    try:
        bin_dir = ensure_binaries(BUILD)
    except ControlPlaneError as err:
        pytest.fail(f"the real control plane could not be built: {err}", pytrace=False)
    etcd = shutil.which("etcd")
    if etcd is None:
        pytest.fail("etcd is not on PATH: tools/k8s/build.sh installs Debian's etcd-server", pytrace=False)
    with ControlPlane(bin_dir=bin_dir, etcd=etcd) as plane, PodReadiness(plane):
        plane.apply(*crds(), *ISTIO_CRDS)
        yield plane
