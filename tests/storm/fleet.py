"""The rollouts a kill storm drives, and the real metric backend that judges them.

Rules:
- Four shapes, each in Argo's own manifest form: `steps` (Istio canary: setWeight, pause,
  an analysis step, setWeight, pause), `background` (Istio canary with background analysis
  over pauses), `pauses` (Istio canary with pause steps only, no analysis) and `bluegreen`
  (active and preview Services, pre-promotion analysis, auto-promotion).
- Every revision's image says whether it is good: `app:good-N` or `app:bad-N`. The web
  metric's URL carries the image (an arg resolved from the Rollout's own pod template by
  `fieldRef`), and `Verdicts` answers `{"ok": false}` for a bad image, so the verdict
  belongs to the revision and not to the moment it is measured. `pauses` has no analysis,
  so it is only ever given good images.
- Every analysis takes a `token` arg from the namespace's Secret (`storm-creds`, valueFrom
  secretKeyRef) and sends it as `Authorization: Bearer`; `Verdicts` answers 401 to any other, so
  a token lost on the way fails the good revisions. `SECRET` must appear in nothing the storm
  produced (tests/storm/test_storm.py greps for it in every encoding).
- Durations are seconds (pauses 1-2 s, measurements every 1 s, scale-down delays 1 s), so a storm of a few
  minutes takes every Rollout through many revisions.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from tests.http_server import HttpServer, Request, Response

SHAPES = ("steps", "background", "pauses", "bluegreen")
SECRET = 'st0rm/t0k+n "q" \\ 7'  # raw, percent-encoded, JSON-escaped, repr and base64 all differ
SECRET_NAME = "storm-creds"
ANALYZED = ("steps", "background", "bluegreen")
STEP_COUNT = 2  # measurements of the analysis step and of the pre-promotion run


class Verdicts(HttpServer):
    """A real HTTP server: `GET /verdict?image=IMAGE` answers `{"ok": <not a bad image>}`; it counts
    the requests (`served`) and those without the Secret's token (`refused`), and keeps none."""

    def __init__(self) -> None:
        super().__init__(self._verdict, record=False, name="verdicts")
        self.refused = 0
        self._refusals = threading.Lock()

    @property
    def url(self) -> str:
        return super().url + "/verdict"

    def _verdict(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            with self._refusals:
                self.refused += 1
            return Response(401)
        image = request.query("image") or ""
        return Response.json({"ok": bool(image) and not is_bad(image)})


def image(revision: int, good: bool) -> str:
    return f"app:{'good' if good else 'bad'}-{revision}"


def is_bad(image_name: str) -> bool:
    return image_name.rpartition(":")[2].startswith("bad-")


# --- manifests -------------------------------------------------------------------------

def template(name: str, namespace: str, url: str, *, count: int | None) -> dict[str, Any]:
    metric: dict[str, Any] = {"name": "verdict", "interval": "1s", "successCondition": "result == true",
                              "failureLimit": 0,
                              "provider": {"web": {"url": url + "?image={{args.image}}", "jsonPath": "{$.ok}",
                                                   "headers": [{"key": "Authorization",
                                                                "value": "Bearer {{args.token}}"}]}}}
    if count is not None:
        metric["count"] = count
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"args": [{"name": "image"}, {"name": "token"}], "metrics": [metric]}}


IMAGE_ARG = [{"name": "image", "valueFrom": {"fieldRef": {"fieldPath": "spec.template.spec.containers[0].image"}}},
             {"name": "token", "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "token"}}}]

STEPS: dict[str, list[dict[str, Any]]] = {
    "steps": [{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 50},
              {"analysis": {"templates": [{"templateName": "verdict-steps"}], "args": IMAGE_ARG}},
              {"setWeight": 80}, {"pause": {"duration": "1s"}}],
    "background": [{"setWeight": 25}, {"pause": {"duration": "2s"}}, {"setWeight": 75}, {"pause": {"duration": "2s"}}],
    "pauses": [{"setWeight": 30}, {"pause": {"duration": "1s"}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}],
}


def allowed_weights(shape: str) -> set[int]:
    """The canary weights the steps allow: theirs, 0 (at rest, on abort) and 100 (past the last
    step until the new pods are the stable, as Argo sends them all the traffic)."""
    return {0, 100} | {int(step["setWeight"]) for step in STEPS.get(shape, []) if "setWeight" in step}


def _service(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}], "selector": {"app": app}}}


def _virtual_service(name: str, namespace: str, stable: str, canary: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"hosts": [name], "http": [{"name": "primary", "route": [
                {"destination": {"host": stable}, "weight": 100},
                {"destination": {"host": canary}, "weight": 0}]}]}}


def _rollout(name: str, namespace: str, strategy: dict[str, Any], revision_image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": namespace, "labels": {"storm-shape": shape_of(name)}},
            "spec": {"replicas": 2, "revisionHistoryLimit": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": revision_image}]}},
                     "strategy": strategy}}


def shape_of(name: str) -> str:
    """A fleet Rollout is named `<shape>-<n>`."""
    return name.rpartition("-")[0]


def rollout_objects(name: str, namespace: str, url: str) -> list[dict[str, Any]]:
    """The Rollout `name` (`<shape>-<n>`) at its first, good revision, with everything it needs."""
    shape = shape_of(name)
    first = image(0, True)
    if shape == "bluegreen":
        active, preview = f"{name}-active", f"{name}-preview"
        strategy = {"blueGreen": {"activeService": active, "previewService": preview, "autoPromotionEnabled": True,
                                  "scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 1,
                                  "prePromotionAnalysis": {"templates": [{"templateName": f"verdict-{name}"}],
                                                           "args": IMAGE_ARG}}}
        return [template(f"verdict-{name}", namespace, url, count=STEP_COUNT),
                _service(active, namespace, name), _service(preview, namespace, name),
                _rollout(name, namespace, strategy, first)]
    stable, canary, vs = f"{name}-stable", f"{name}-canary", f"{name}-vsvc"
    canary_strategy: dict[str, Any] = {
        "canaryService": canary, "stableService": stable, "steps": STEPS[shape],
        "scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 1,
        "trafficRouting": {"istio": {"virtualService": {"name": vs, "routes": ["primary"]}}}}
    objects = [_service(stable, namespace, name), _service(canary, namespace, name),
               _virtual_service(vs, namespace, stable, canary)]
    if shape == "steps":
        objects.append(template("verdict-steps", namespace, url, count=STEP_COUNT))
    if shape == "background":
        canary_strategy["analysis"] = {"templates": [{"templateName": f"verdict-{name}"}], "args": IMAGE_ARG}
        objects.append(template(f"verdict-{name}", namespace, url, count=None))
    return [*objects, _rollout(name, namespace, {"canary": canary_strategy}, first)]


def fleet(namespace: str, url: str, per_shape: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Names and objects of `per_shape` Rollouts of every shape in `namespace` (one template per name)."""
    names = [f"{shape}-{i}" for shape in SHAPES for i in range(per_shape)]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME, "namespace": namespace},
              "data": {"token": base64.b64encode(SECRET.encode()).decode()}}
    objects: dict[tuple[str, str], dict[str, Any]] = {("Secret", SECRET_NAME): secret}
    for name in names:
        for obj in rollout_objects(name, namespace, url):
            objects[(obj["kind"], obj["metadata"]["name"])] = obj
    return names, list(objects.values())
