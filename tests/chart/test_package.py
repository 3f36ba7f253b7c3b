"""The packaged chart carries the repository's CRDs byte for byte, and the controller's version.

charts/rollouts/crds is a symlink to crds/ (one source of truth, generated from the models):
`helm package` must follow it, and `helm template --include-crds` must render the same CRDs.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import yaml

import rollouts
from tests.chart.conftest import CHART, ROOT, Helm, Render

CRDS = ROOT / "crds"


def test_the_chart_crds_are_the_repository_crds(helm: Helm, tmp_path: Path) -> None:
    assert (CHART / "crds").is_symlink() and (CHART / "crds").resolve() == CRDS.resolve()
    helm("package", str(CHART), "--destination", str(tmp_path))
    [archive] = tmp_path.glob("rollouts-*.tgz")
    with tarfile.open(archive) as tar:
        packaged = {Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
                    for m in tar.getmembers() if m.isfile() and Path(m.name).parent.name == "crds"}
    expected = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    assert expected and packaged == expected


def test_helm_template_include_crds_renders_each_crd_once(render: Render) -> None:
    rendered = sorted(d["metadata"]["name"] for d in render(crds=True) if d["kind"] == "CustomResourceDefinition")
    expected = sorted(yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRDS.glob("*.yaml"))
    assert rendered == expected


def test_the_app_version_is_the_controller_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == rollouts.__version__
