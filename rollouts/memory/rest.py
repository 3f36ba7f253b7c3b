"""The Kubernetes REST subset of the embedded API server: paths and verbs to Cluster calls.

Rules (faithful where client bugs hide; rollouts.memory.server does the HTTP transport):
- Paths and verbs are the real API server's for the kinds in rollouts.platform.kinds. Errors are
  Status bodies with the real codes and reasons (404 NotFound, 409 AlreadyExists or
  Conflict, 410 Expired, 422 Invalid, 415 UnsupportedMediaType); create answers 201.
- PATCH is chosen by Content-Type, never by body shape: application/merge-patch+json needs
  an object (a JSON-patch list sent with it is 422, as the real server answers the
  mislabelled requests of the kubernetes client), application/json-patch+json needs a
  list (else 400), strategic merge is 415 for custom resources and a strategic merge for
  built-in kinds (rollouts.memory.strategic: lists merged by key). Anything else is 415.
- `/status` writes change only status (PUT replaces it, PATCH merges or JSON-patches it);
  writes to the main resource never change status. The Cluster enforces both; a status
  rewrite is sent as a merge diff with the resourceVersion it was computed from.
- Label selectors: equality only (`a=b,c==d`); anything else is 400, never ignored.
- As the real server (1.20) answers, checked against it (tests/adapters/REAL_API_DIFFERENCES.md):
  404/409 Status bodies carry `details` {name, group (not for the core group), kind: the
  plural}; a failing JSON patch is a 422 Invalid with the server's generic message and empty
  details; the 415 lists the accepted media types (apply-patch+yaml included); a body whose
  apiVersion is not the URL's, or whose labels/annotations are not strings, cannot be
  decoded: 400 BadRequest. Lists of built-in kinds carry no kind/apiVersion per item. DELETE
  answers a Status (details with the uid), but a Pod with the pod itself, marked deleted;
  a propagationPolicy other than Background is 400 (dependents always go in the background).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rollouts.memory.strategic import strategic_merge
from rollouts.platform.cluster import AlreadyExists, Cluster, Conflict, NotFound
from rollouts.platform.kinds import KINDS, KindInfo, by_resource, groups
from rollouts.platform.patches import PatchError, json_patch, merge_diff
from rollouts.platform.times import format_time

__all__ = ["HttpError", "Verbs", "discovery", "parse_selector", "route", "status_body"]

MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
JSON_PATCH_FAILED = "the server rejected our request due to an error in our request"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.details = code, reason, details


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


def details(info: KindInfo, name: str | None) -> dict[str, Any]:
    """A Status body's `details` as the real server fills them for one object."""
    found: dict[str, Any] = {"name": name or ""}
    if info.group:
        found["group"] = info.group
    found["kind"] = info.plural
    return found


def parse_selector(text: str) -> dict[str, str] | None:
    if not text:
        return None
    selector: dict[str, str] = {}
    for term in text.split(","):
        key, sep, value = term.replace("==", "=").partition("=")
        if not sep or "!" in key or not key.strip():
            raise HttpError(400, "BadRequest", f"unsupported label selector term {term!r}: "
                            "this server supports only equality selectors such as app=web")
        selector[key.strip()] = value.strip()
    return selector


def route(parts: list[str]) -> tuple[KindInfo, str | None, str | None, str | None]:
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise HttpError(404, "NotFound", "the server could not find the requested resource")
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    info = by_resource(group, version, rest[0])
    tail = rest[1:]
    name, sub = [*tail, None, None][:2]
    if (info is None or len(tail) > 2 or (namespace is not None and not info.namespaced)
            or (namespace is None and info.namespaced and name is not None)
            or (sub is not None and (sub != "status" or not info.status_subresource))):
        raise HttpError(404, "NotFound", "the server could not find the requested resource")
    return info, namespace, name, sub


def discovery(parts: list[str], url: str) -> Any:
    if parts == ["version"]:
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.0-rollouts", "gitCommit": "", "gitTreeState": "clean",
                "buildDate": "2024-01-01T00:00:00Z", "goVersion": "", "compiler": "python", "platform": "linux/amd64"}
    if parts in (["healthz"], ["readyz"], ["livez"]):
        return "ok"
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": url.split("//")[1]}]}
    if parts == ["apis"]:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
             "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
            for group, versions in groups().items() if group]}
    if (parts[:1] == ["api"] and len(parts) == 2) or (parts[:1] == ["apis"] and len(parts) == 3):
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = []
        for info in KINDS.values():
            if (info.group, info.version) == (group, version):
                resources.append({"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                                  "kind": info.kind, "verbs": VERBS})
                if info.status_subresource:
                    resources.append({"name": f"{info.plural}/status", "singularName": "", "kind": info.kind,
                                      "namespaced": info.namespaced, "verbs": ["get", "patch", "update"]})
        if not resources:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
    return None


class Verbs:
    """One resource request: the verb table from (method, name, subresource) to the Cluster."""

    def __init__(self, cluster: Cluster, info: KindInfo, namespace: str | None, name: str | None, sub: str | None):
        self.cluster, self.info, self.namespace, self.name, self.sub = cluster, info, namespace, name, sub

    def run(self, method: str, body: Any, content_type: str, query: dict[str, str]) -> tuple[int, Any]:
        try:
            return self._run(method, body, content_type, query)
        except (NotFound, AlreadyExists, Conflict) as err:
            name = self.name
            if name is None and isinstance(body, dict) and isinstance(body.get("metadata"), dict):
                name = body["metadata"].get("name")
            raise HttpError(err.code, err.reason, str(err), details(self.info, name)) from None

    def _run(self, method: str, body: Any, content_type: str, query: dict[str, str]) -> tuple[int, Any]:
        cluster, info, name = self.cluster, self.info, self.name
        if method == "GET" and name is None:
            if query.get("fieldSelector"):
                raise HttpError(400, "BadRequest", "fieldSelector is not supported by this server")
            selector = parse_selector(query.get("labelSelector", ""))
            items = cluster.list(info.kind, self.namespace, label_selector=selector)
            rv = getattr(cluster, "resource_version", None) or max(
                (int(i["metadata"]["resourceVersion"]) for i in items), default=0)
            if not info.custom:  # the real server's built-in lists carry no kind/apiVersion per item
                items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]
            return 200, {"kind": f"{info.kind}List", "apiVersion": info.api_version,
                         "metadata": {"resourceVersion": str(rv)}, "items": items}
        if method == "GET":
            return 200, cluster.get(info.kind, name, self.namespace)  # type: ignore[arg-type]
        if method == "POST" and name is None and (self.namespace is not None or not info.namespaced):
            return 201, cluster.create(self._body_for(body))
        if name is None:
            raise HttpError(405, "MethodNotAllowed", f"{method} is not supported on a collection here")
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            policy = query.get("propagationPolicy") or options.get("propagationPolicy")
            if policy not in (None, "Background"):
                raise HttpError(400, "BadRequest", f"propagationPolicy {policy!r} is not supported by this server: "
                                "dependents are always deleted in the background (use Background)")
            found = cluster.get(info.kind, name, self.namespace)
            cluster.delete(info.kind, name, self.namespace)
            if info.kind == "Pod":  # the real server answers with the pod, marked deleted at once (no kubelet)
                meta = found["metadata"]
                meta.update(deletionTimestamp=format_time(datetime.now(UTC)), deletionGracePeriodSeconds=0)
                return 200, found
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {**details(info, name), "uid": found["metadata"].get("uid")}}
        if method == "PUT" and self.sub is None:
            return 200, cluster.replace(self._body_for(body))
        if method == "PUT":
            return 200, self._put_status(self._body_for(body))
        if method == "PATCH":
            return 200, self._patch(body, content_type.split(";")[0].strip().lower())
        raise HttpError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _body_for(self, body: Any) -> dict[str, Any]:
        info = self.info
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", f"the request body must be a {info.kind} object")
        if body.setdefault("kind", info.kind) != info.kind:
            raise HttpError(400, "BadRequest", f"the body's kind {body['kind']!r} does not match the URL ({info.kind})")
        meta = body.setdefault("metadata", {})
        if self.namespace is not None and meta.setdefault("namespace", self.namespace) != self.namespace:
            raise HttpError(400, "BadRequest", "the namespace of the provided object does not match "
                            "the namespace sent on the request")
        if self.name is not None and meta.setdefault("name", self.name) != self.name:
            raise HttpError(400, "BadRequest", f"the name of the object ({meta['name']}) does not match the name "
                            f"on the URL ({self.name})")
        given = body.get("apiVersion")
        if given is not None and given != info.api_version:
            raise HttpError(400, "BadRequest", f"the API version in the data ({given}) does not match the expected "
                            f"API version ({info.api_version})")
        for field in ("labels", "annotations"):
            value = meta.get(field)
            if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                raise HttpError(400, "BadRequest", f'{info.kind} in version "{info.version}" cannot be handled as a '
                                f"{info.kind}: v1.ObjectMeta.{field.capitalize()}: ReadString: expects \" or n")
        return body

    def _patch(self, body: Any, content_type: str) -> dict[str, Any]:
        info, name = self.info, self.name
        assert name is not None
        if content_type == STRATEGIC and not info.custom and isinstance(body, dict):
            return self._strategic(body)
        if content_type == MERGE:
            if not isinstance(body, dict):
                shown, what = json.dumps(body, separators=(",", ":")), "array" if isinstance(body, list) else "value"
                raise HttpError(422, "Invalid", f' "" is invalid: patch: Invalid value: "{shown}": couldn\'t get '
                                f"version/kind; json parse error: json: cannot unmarshal {what} into Go value of type "
                                "struct { APIVersion string; Kind string }")
            if self.sub == "status":
                return self.cluster.patch_status(info.kind, name, self.namespace,
                                                 {k: v for k, v in body.items() if k in ("status", "metadata")})
            return self.cluster.patch(info.kind, name, self.namespace, body, patch_type="merge")
        if content_type == JSON_PATCH:
            if not isinstance(body, list):
                raise HttpError(400, "BadRequest",
                                "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            try:  # the real server's answer to any failing op is this generic 422
                json_patch(self.cluster.get(info.kind, name, self.namespace), body)
            except PatchError:
                raise HttpError(422, "Invalid", JSON_PATCH_FAILED, {}) from None
            if self.sub == "status":
                return self._retry(lambda cur: {"status": json_patch(cur, body).get("status") or {}})
            return self.cluster.patch(info.kind, name, self.namespace, body, patch_type="json")
        accepted = f"{JSON_PATCH}, {MERGE}, {APPLY}" + ("" if info.custom else f", {STRATEGIC}")
        raise HttpError(415, "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: {accepted}")

    def _strategic(self, body: dict[str, Any]) -> dict[str, Any]:
        """A strategic merge (rollouts.memory.strategic), sent on as a merge diff with the
        resourceVersion it was computed from; retried on a race unless the patch names one."""
        want = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body.get("metadata"), dict) else None
        sub = self.sub == "status"
        for _ in range(5):
            current = self.cluster.get(self.info.kind, self.name, self.namespace)  # type: ignore[arg-type]
            wanted = strategic_merge(current, body)
            diff = merge_diff(current, wanted)
            meta = diff.get("metadata")
            diff["metadata"] = {**(meta if isinstance(meta, dict) else {}),
                                "resourceVersion": want or current["metadata"]["resourceVersion"]}
            try:
                if sub:
                    return self.cluster.patch_status(self.info.kind, self.name, self.namespace,  # type: ignore[arg-type]
                                                     {k: v for k, v in diff.items() if k in ("status", "metadata")})
                return self.cluster.patch(self.info.kind, self.name, self.namespace, diff)  # type: ignore[arg-type]
            except Conflict:
                if want is not None:
                    raise
        raise Conflict(f'Operation cannot be fulfilled on {self.info.resource} "{self.name}": too many conflicts')

    def _put_status(self, body: dict[str, Any]) -> dict[str, Any]:
        want = body["metadata"].get("resourceVersion")
        return self._retry(lambda cur: {"status": body.get("status") or {}}, want)

    def _retry(self, target: Any, resource_version: str | None = None) -> dict[str, Any]:
        """Rewrite status to target(current): a diff sent with the current rv, retried on a race."""
        for _ in range(5):
            current = self.cluster.get(self.info.kind, self.name, self.namespace)  # type: ignore[arg-type]
            try:
                wanted = target(current)
            except PatchError as err:
                raise HttpError(422, "Invalid", f'{self.info.resource} "{self.name}" is invalid: {err}') from None
            diff = merge_diff({"status": current.get("status") or {}}, wanted)
            rv = resource_version or current["metadata"]["resourceVersion"]
            try:
                return self.cluster.patch_status(self.info.kind, self.name, self.namespace,  # type: ignore[arg-type]
                                                 {"metadata": {"resourceVersion": rv}, **diff})
            except Conflict:
                if resource_version is not None:
                    raise
        raise Conflict(f'Operation cannot be fulfilled on {self.info.resource} "{self.name}": too many conflicts')
