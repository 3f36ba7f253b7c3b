"""A VirtualService with only tls/tcp routes (Argo: test/e2e/istio_test.go
TestIstioHostSplitOnlyTls over test/e2e/istio/istio-host-only-tls-split.yaml, which names
`routes: [primary]` beside `tlsRoutes` for a VirtualService that has no http section;
rollout/trafficrouting/istio/istio.go reconcileVirtualService checks HTTP routes only when the
http section exists; istio_test.go TestTlsReconcileInvalidValidation, TestValidateTLSRoutes).
"""

from __future__ import annotations

import copy
from typing import Any

from rollouts.cli import lint
from rollouts.spec import manifests
from tests.conformance.harness import Run, istio_host_split

NAME = "istio-host-split-tls"


def docs(*, tls: list[dict[str, Any]] | None = None, tcp: list[dict[str, Any]] | None = None,
         ref: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = istio_host_split(NAME, {"steps": [{"setWeight": 10}, {"pause": {}}]}, replicas=2)
    vs = out[2]
    def split() -> list[dict[str, Any]]:
        return [{"destination": {"host": f"{NAME}-stable"}, "weight": 100},
                {"destination": {"host": f"{NAME}-canary"}, "weight": 0}]
    vs["spec"] = {"hosts": [NAME]}
    vs["spec"]["tls"] = tls if tls is not None else [
        {"match": [{"port": 3000, "sniHosts": [NAME]}], "route": split()}]
    if tcp is not None:
        vs["spec"]["tcp"] = tcp
    out[3]["spec"]["strategy"]["canary"]["trafficRouting"]["istio"]["virtualService"] = ref or {
        "name": f"{NAME}-vsvc", "routes": ["primary"], "tlsRoutes": [{"port": 3000, "sniHosts": [NAME]}]}
    return out


def lint_errors(objs: list[dict[str, Any]]) -> list[str]:
    loaded = manifests.Loaded(files=["mem.yaml"], documents=[manifests.Document("mem.yaml", i, d)
                                                             for i, d in enumerate(copy.deepcopy(objs), 1)])
    return [f"{f.problem.path}: {f.problem.message}" for f in lint.lint(loaded) if f.problem.is_error]


def tls_weights(run: Run, section: str = "tls", index: int = 0) -> tuple[int, int]:
    return (run.weight_of(f"{NAME}-vsvc", f"{NAME}-stable", section, index),
            run.weight_of(f"{NAME}-vsvc", f"{NAME}-canary", section, index))


def test_istio_host_split_only_tls() -> None:
    """Healthy at 100/0 on the tls route, 90/10 at the pause, 100/0 promoted; `routes: [primary]`
    is not looked for in a VirtualService with no http section."""
    objs = docs()
    assert lint_errors(objs) == []
    run = Run(objs).given().until_phase("Healthy")
    assert tls_weights(run) == (100, 0)
    run.new_image().until_phase("Paused")
    assert tls_weights(run) == (90, 10)
    run.promote().until_phase("Healthy")
    assert tls_weights(run) == (100, 0)
    assert run.events("Warning") == []


def test_tcp_reconcile_weights_base_case() -> None:
    """TestTcpReconcileWeightsBaseCase: tcpRoutes by port, weighted with the steps."""
    tcp = [{"match": [{"port": 5432}], "route": [{"destination": {"host": f"{NAME}-stable"}, "weight": 100},
                                                 {"destination": {"host": f"{NAME}-canary"}, "weight": 0}]}]
    objs = docs(tls=[], tcp=tcp, ref={"name": f"{NAME}-vsvc", "tcpRoutes": [{"port": 5432}]})
    assert lint_errors(objs) == []
    run = Run(objs).given().until_phase("Healthy").new_image().until_phase("Paused")
    assert tls_weights(run, "tcp") == (90, 10)


def test_tls_reconcile_invalid_validation() -> None:
    """TestTlsReconcileInvalidValidation: a tlsRoutes entry no route matches is refused, at
    once, with no ReplicaSet made and the VirtualService untouched."""
    objs = docs(ref={"name": f"{NAME}-vsvc", "tlsRoutes": [{"port": 3001, "sniHosts": [NAME]}]})
    assert lint_errors(objs) == [
        "spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes: No matching TLS routes found in the "
        "defined Virtual Service ({'port': 3001, 'sniHosts': ['istio-host-split-tls']})."]
    run = Run(objs).given().until_phase("Degraded")
    assert run.condition("InvalidSpec") is not None and run.replica_sets() == []
    assert run.vs_history[f"{NAME}-vsvc"] == [run.weights(f"{NAME}-vsvc")]
    assert len(run.events("Warning")) == 1


def test_tls_route_without_the_canary_destination_is_refused() -> None:
    """validateVirtualServiceRouteDestinations: a selected tls route must hold both hosts."""
    tls = [{"match": [{"port": 3000, "sniHosts": [NAME]}],
            "route": [{"destination": {"host": f"{NAME}-stable"}, "weight": 100}]}]
    assert lint_errors(docs(tls=tls)) == [
        "spec.strategy.canary.trafficRouting.istio.virtualService.name: route 'tls[0]' in VirtualService "
        "'istio-host-split-tls-vsvc' has no destination for canaryService 'istio-host-split-tls-canary'"]


def test_named_http_route_still_checked_when_there_is_an_http_section() -> None:
    """getHttpRouteIndexesToPatch: with an http section, a named route must be in it."""
    objs = docs()
    objs[2]["spec"]["http"] = []
    assert lint_errors(objs) == [
        "spec.strategy.canary.trafficRouting.istio.virtualService.routes[0]: HTTP route 'primary' is not in "
        "VirtualService 'istio-host-split-tls-vsvc'"]
