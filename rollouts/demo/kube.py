"""`rollouts demo --kube`: the demo's cluster is a real control plane instead of the in-memory API.

Rules:
- The control plane is rollouts.kube.controlplane's: etcd, kube-apiserver (RBAC on) and
  kube-controller-manager (the real ReplicaSet controller and garbage collector), Kubernetes
  1.20.2 built from Debian's source by tools/k8s/build.sh (a checkout's script; a no-op once
  its cache is warm). PodReadiness stands in for the kubelet, so the Pods the ReplicaSet
  controller makes become Ready; the demo's PodRunner then runs one app process per
  ReplicaSet with Ready pods (it follows the real ReplicaSets, `ready_only`).
- The project's CRDs (generated from the models, as `rollouts crds` writes them) and
  Istio's are installed before the demo's manifests.
- Everything is stopped by the caller's ExitStack, in reverse order: the client, the
  kubelet stand-in, then the control plane (each process SIGTERM, then SIGKILL).
- A missing build script, a build that fails or a control plane that does not start is a
  `KubeDemoError` with one line saying what to do.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ISTIO_CRDS, ControlPlane, ControlPlaneError, PodReadiness, ensure_binaries
from rollouts.spec import crdgen

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "k8s" / "build.sh"


class KubeDemoError(RuntimeError):
    """The real control plane could not be had; the message says what to do."""


@dataclass(frozen=True)
class RealCluster:
    cluster: KubeCluster
    url: str
    kubeconfig: Path


def crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(text) for text in crdgen.render().values()]


def start(stack: ExitStack, workdir: Path, namespace: str) -> RealCluster:
    """Start the control plane (stopped by `stack`) and return a client and a kubeconfig for it."""
    if not BUILD_SCRIPT.exists():
        raise KubeDemoError(f"--kube needs a checkout of the repository: {BUILD_SCRIPT} is missing")
    etcd = shutil.which("etcd")
    if etcd is None:
        raise KubeDemoError("etcd is not installed: apt-get install etcd-server (tools/k8s/build.sh does it)")
    try:
        bin_dir = ensure_binaries(BUILD_SCRIPT)
        plane = stack.enter_context(ControlPlane(bin_dir=bin_dir, etcd=etcd))
        stack.enter_context(PodReadiness(plane))
        plane.apply(*crds(), *ISTIO_CRDS)
        if namespace != "default":
            plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    except ControlPlaneError as err:
        first = str(err).splitlines()[0] if str(err) else "failed"
        raise KubeDemoError(f"the real control plane did not start: {first}") from None
    kubeconfig = plane.kubeconfig(workdir / "kubeconfig", namespace=namespace)
    cluster = stack.enter_context(KubeCluster(kubeconfig=kubeconfig, request_timeout=15))
    return RealCluster(cluster, plane.url, kubeconfig)
