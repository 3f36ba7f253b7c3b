"""`rollouts set image --file`: edit a Rollout manifest in a Git working copy; the only
line that changes is the image line."""

from __future__ import annotations

import difflib
import stat
from pathlib import Path

import pytest

from rollouts.spec import gitops
from tests.cli.conftest import Cli

MANIFEST = """\
# checkout: owned by team payments. Bump the image with `rollouts set image --file`.
---
apiVersion: v1
kind: Service
metadata: {name: checkout-canary, namespace: shop}
spec:
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment    # an unrelated workload with a container of the same name
metadata:
  name: checkout-worker
spec:
  template:
    spec:
      containers:
      - name: app
        image: shop/checkout:1.4.0
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
    name: checkout
    annotations:
        notes: "keep 'quotes' as they are"
spec:
    replicas: 5
    strategy:
        canary:
            steps:
            - setWeight: 20
            - pause: {}      # wait for a human
    template:
        spec:
            initContainers:
            -   name: migrate
                image: 'shop/checkout-migrate:1.4.0'
            containers:
            -   name: app
                # the image CI bumps:
                image: "shop/checkout:1.4.0"   # pinned by CI
                ports:
                -   containerPort: 8080
            -   {name: log-shipper, image: fluent/fluent-bit:3.0}
"""


def diff(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_only_the_image_line_changes_and_its_quotes_stay() -> None:
    after, changes = gitops.set_image_text(MANIFEST, [("app", "shop/checkout:1.5.0")])
    assert diff(MANIFEST, after) == ['-                image: "shop/checkout:1.4.0"   # pinned by CI\n',
                                     '+                image: "shop/checkout:1.5.0"   # pinned by CI\n']
    assert changes == [gitops.ImageChange("checkout", "app", "shop/checkout:1.4.0", "shop/checkout:1.5.0")]


@pytest.mark.parametrize(("container", "image", "old_line", "new_line"), [
    ("migrate", "shop/checkout-migrate:1.5.0", "'shop/checkout-migrate:1.4.0'", "'shop/checkout-migrate:1.5.0'"),
    ("log-shipper", "fluent/fluent-bit:3.1", "image: fluent/fluent-bit:3.0}", "image: fluent/fluent-bit:3.1}"),
    ("log-shipper", "fluent/fluent-bit:3.1,debug", "image: fluent/fluent-bit:3.0}",
     'image: "fluent/fluent-bit:3.1,debug"}'),
    ("migrate", "it's:1", "'shop/checkout-migrate:1.4.0'", "'it''s:1'"),
    ("app", "shop/checkout@sha256:0f3a9c", '"shop/checkout:1.4.0"', '"shop/checkout@sha256:0f3a9c"'),
])
def test_each_scalar_style_is_kept(container: str, image: str, old_line: str, new_line: str) -> None:
    after, _ = gitops.set_image_text(MANIFEST, [(container, image)])
    [removed, added] = diff(MANIFEST, after)
    assert old_line in removed and new_line in added
    assert removed.replace(old_line, new_line) == added[0].replace("+", "-") + added[1:]


def test_star_sets_every_container_of_the_rollout_only() -> None:
    after, changes = gitops.set_image_text(MANIFEST, [("*", "busybox:1.36")])
    assert [c.container for c in changes] == ["migrate", "app", "log-shipper"]
    assert len(diff(MANIFEST, after)) == 6
    assert "        image: shop/checkout:1.4.0\n" in after  # the Deployment kept its image


def test_several_rollouts_need_a_name() -> None:
    rollout_doc = MANIFEST.split("---\n")[3]
    text = MANIFEST + "---\n" + rollout_doc.replace("name: checkout\n", "name: checkout-eu\n", 1)
    with pytest.raises(gitops.ManifestError) as error:
        gitops.set_image_text(text, [("app", "x:1")], source="shop.yaml")
    assert str(error.value) == "shop.yaml: 2 Rollouts (checkout, checkout-eu); pass --name to pick one"
    after, changes = gitops.set_image_text(text, [("app", "shop/checkout:1.5.0")], name="checkout-eu")
    assert [c.rollout for c in changes] == ["checkout-eu"]
    assert len(diff(text, after)) == 2
    assert after.split("name: checkout-eu")[0] == text.split("name: checkout-eu")[0]  # the first copy is intact
    with pytest.raises(gitops.ManifestError,
                       match=r"no Rollout named 'checkout-us' \(Rollouts here: checkout, checkout-eu\)"):
        gitops.set_image_text(text, [("app", "x:1")], name="checkout-us")


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Service\nmetadata: {name: a}\n---\nkind: Deployment\n",
     "m.yaml: no Rollout document (found: Deployment, Service); point --file at the Rollout manifest"),
    ("", "m.yaml: no Rollout document (the file has no documents); point --file at the Rollout manifest"),
    ("kind: Rollout\nmetadata: {name: r}\nspec: {workloadRef: {kind: Deployment, name: web}}\n",
     "m.yaml: Rollout 'r' uses spec.workloadRef ('web'): set the image in that workload's manifest instead"),
    ("kind: Rollout\nmetadata:\n  name: r\n spec: {}\n", "m.yaml: not valid YAML at line 4, column 2"),
    ("kind: Rollout\nkind: Rollout\nmetadata: {name: r}\n"
     "spec: {template: {spec: {containers: [{name: app, image: a}]}}}\n",
     'm.yaml: not valid YAML: while constructing a mapping in "<unicode string>", line 1, column 1: kind: Rollout ^ '
     '(line: 1) found duplicate key "kind"'),
])
def test_manifests_that_cannot_be_edited(text: str, message: str) -> None:
    with pytest.raises(gitops.ManifestError) as error:
        gitops.set_image_text(text, [("app", "x:1")], source="m.yaml")
    assert str(error.value).startswith(message)


def test_unknown_container_lists_the_ones_that_exist() -> None:
    with pytest.raises(gitops.ManifestError) as error:
        gitops.set_image_text(MANIFEST, [("web", "x:1")], source="k8s/checkout.yaml")
    assert str(error.value) == ("k8s/checkout.yaml: Rollout 'checkout' has no container named 'web' "
                                "(containers: 'migrate', 'app', 'log-shipper'); use one of those names, or '*' for all")


def test_crlf_and_byte_order_mark_survive(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    raw = ("\ufeff" + MANIFEST.replace("\n", "\r\n")).encode("utf-8")
    path.write_bytes(raw)
    gitops.set_image_file(path, [("app", "shop/checkout:1.5.0")])
    assert path.read_bytes() == raw.replace(b"checkout:1.4.0\"", b"checkout:1.5.0\"")


def test_cli_edits_the_file_in_place(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "k8s" / "checkout.yaml"
    path.parent.mkdir()
    path.write_text(MANIFEST)
    path.chmod(0o640)
    result = cli("set", "image", "--file", str(path), "app=shop/checkout:1.5.0", flags=False)
    assert result.code == 0, result.err
    assert result.out == (f'rollout "checkout" container "app": shop/checkout:1.4.0 -> shop/checkout:1.5.0 '
                          f"in {path}\n")
    assert diff(MANIFEST, path.read_text()) == ['-                image: "shop/checkout:1.4.0"   # pinned by CI\n',
                                                '+                image: "shop/checkout:1.5.0"   # pinned by CI\n']
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["checkout.yaml"]  # no temp file left
    again = cli("set", "image", "--file", str(path), "app=shop/checkout:1.5.0", flags=False)
    assert (again.code, again.out) == (0, f"{path}: images already set; file unchanged\n")


def test_cli_reports_manifest_errors_without_touching_the_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "checkout.yaml"
    path.write_text(MANIFEST)
    result = cli("set", "image", "-f", str(path), "web=x:1", flags=False)
    assert result.code == 1 and "has no container named 'web'" in result.err
    assert path.read_text() == MANIFEST
    missing = cli("set", "image", "-f", str(tmp_path / "nope.yaml"), "app=x:1", flags=False)
    assert missing.code == 1 and "nope.yaml: no such file" in missing.err
    usage = cli("set", "image", "-f", str(path), "checkout", "app=x:1", flags=False)
    assert usage.code == 2 and "'checkout' is not CONTAINER=IMAGE" in usage.err
