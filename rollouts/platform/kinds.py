"""The kinds the Cluster port knows, and where each one lives in the Kubernetes REST API.

Rules:
- A kind is named by its Kubernetes `kind` ("Rollout", "ReplicaSet", ...). Each maps to
  exactly one (group, version, plural) and is either namespaced or cluster-scoped.
- An unknown kind is `UnknownKind`, whose message lists the known kinds: callers never
  guess a plural.
- `status_subresource` kinds keep `.status` apart from the rest of the object, as the API
  server does when a CRD enables the status subresource: create drops `.status`, a spec
  write cannot change it, a status write cannot change anything else.
- Paths are the ones the real API server serves; both the HTTP adapter and the embedded
  API server use these functions, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

BUILTIN_GROUPS = frozenset({"", "apps", "coordination.k8s.io"})


class UnknownKind(ValueError):
    """A kind that is not in the registry."""


@dataclass(frozen=True)
class KindInfo:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """`plural.group`, as the API server names a resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        """True for custom resources, which accept no strategic-merge patch."""
        return self.group not in BUILTIN_GROUPS

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def collection_path(self, namespace: str | None) -> str:
        """The list/create path; a namespaced kind with namespace None lists all namespaces."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            return f"{prefix}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{quote(name, safe='')}"
        return f"{path}/{subresource}" if subresource else path


_ARGO = ("argoproj.io", "v1alpha1")
_ISTIO = ("networking.istio.io", "v1alpha3")

KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo("Rollout", *_ARGO, "rollouts", status_subresource=True),
        KindInfo("AnalysisRun", *_ARGO, "analysisruns", status_subresource=True),
        KindInfo("AnalysisTemplate", *_ARGO, "analysistemplates"),
        KindInfo("Experiment", *_ARGO, "experiments"),
        KindInfo("ClusterAnalysisTemplate", *_ARGO, "clusteranalysistemplates", namespaced=False),
        KindInfo("ReplicaSet", "apps", "v1", "replicasets", status_subresource=True),
        KindInfo("Deployment", "apps", "v1", "deployments", status_subresource=True),
        KindInfo("Pod", "", "v1", "pods", status_subresource=True),
        KindInfo("Service", "", "v1", "services"),
        KindInfo("Secret", "", "v1", "secrets"),
        KindInfo("ConfigMap", "", "v1", "configmaps"),
        KindInfo("Event", "", "v1", "events"),
        KindInfo("VirtualService", *_ISTIO, "virtualservices"),
        KindInfo("DestinationRule", *_ISTIO, "destinationrules"),
        KindInfo("Lease", "coordination.k8s.io", "v1", "leases"),
    )
}


def kind_info(kind: str) -> KindInfo:
    """The registry entry for `kind`, or `UnknownKind` naming the kinds that exist."""
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        known = ", ".join(sorted(KINDS))
        raise UnknownKind(
            f"unknown kind {kind!r}: this controller works with {known}; "
            "check the manifest's `kind` field"
        ) from None


def by_resource(group: str, version: str, plural: str) -> KindInfo | None:
    """The kind served at group/version/plural, or None."""
    for info in KINDS.values():
        if (info.group, info.version, info.plural) == (group, version, plural):
            return info
    return None


def groups() -> dict[str, list[str]]:
    """group -> versions served, for discovery (the core group is "")."""
    found: dict[str, list[str]] = {}
    for info in KINDS.values():
        versions = found.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)
    return found
