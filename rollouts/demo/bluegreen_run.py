"""`rollouts demo --blue-green`: the canary demo's real parts, released with the blueGreen strategy.

Rules:
- The same parts as `rollouts.demo.run` (the InMemoryCluster over HTTP, one app process per
  ReplicaSet, Debian's Prometheus, the controller with the real Prometheus provider), on the
  manifests of `rollouts.demo.bluegreen`. Only the traffic and what is recorded differ.
- Traffic follows the Services' selectors, as kube-proxy would (`PodRunner.selected`):
  production requests (`--rate` per second) go to the pods the active Service selects and
  are labelled with it; smoke-test requests (`SMOKE_SHARE` of that rate) go to the pods the
  preview Service selects, labelled with the preview Service. Two generators, two scrape
  targets, two sets of counts: production never borrows a smoke request nor the reverse.
- A release sets the image, then waits (bounded by the scenario's `release_timeout`) for
  the outcome and its clean-up: promoted (the new hash is `stableRS`, the Rollout Healthy
  and the old ReplicaSet scaled to 0 after `scaleDownDelaySeconds`) or aborted
  (`status.abort`, the new ReplicaSet scaled to 0 after `abortScaleDownDelaySeconds`).
- History (the Services' selectors, run phases, ReplicaSet sizes, in resourceVersion
  order) is drained every tick (rollouts.demo.bluegreen_record); the summary is computed
  from it (rollouts.demo.bluegreen_summary).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rollouts.demo import bluegreen as scenarios
from rollouts.demo import record as rec
from rollouts.demo.bluegreen_record import BlueGreenRecord, History, Selectors, first_version
from rollouts.demo.bluegreen_summary import summarize
from rollouts.demo.pods import PodRunner
from rollouts.demo.run import TRAFFIC_WINDOW, Demo, Frame, Observer, Options, _now
from rollouts.demo.scenario import ROLLOUT_NAME, Release, with_image
from rollouts.demo.summary import Outcome, Summary, outcome
from rollouts.demo.traffic import Backend, TrafficGenerator


@dataclass(frozen=True)
class BlueGreenFrame(Frame):
    """The canary Frame (routes: production then smoke backends) plus the Services' selectors."""

    active: str | None = None
    preview: str | None = None
    selectors: tuple[Selectors, ...] = ()  # this release's history
    production: tuple[Backend, ...] = ()
    smoke: tuple[Backend, ...] = ()
    smoke_traffic: dict[str, tuple[float, float]] | None = None  # like `traffic`, for the smoke tests
    new_hash: str = ""


class BlueGreenDemo(Demo):
    releases = scenarios.RELEASES

    def __init__(self, options: Options, observer: Observer) -> None:
        super().__init__(options, observer)
        self.bg = scenarios.build(scenarios.SHORT if options.short else scenarios.FULL, namespace=options.namespace)
        self._new_hash = ""

    # ---------------------------------------------------------------- hooks of Demo

    def _objects(self) -> list[dict[str, Any]]:
        return self.bg.objects

    def _app_service(self) -> str:
        return self.bg.fqdn(self.bg.active_service)

    def _start_traffic(self, pods: PodRunner) -> list[str]:
        active, preview = self.bg.active_service, self.bg.preview_service
        production = TrafficGenerator(lambda: pods.selected(active), service=self.bg.fqdn(active),
                                      rate=self.options.rate)
        smoke = TrafficGenerator(lambda: pods.selected(preview), service=self.bg.fqdn(preview),
                                 rate=max(1.0, self.options.rate * scenarios.SMOKE_SHARE))
        targets = []
        for name, generator in (("traffic", production), ("smoke", smoke)):
            port = generator.serve_metrics()
            self.endpoints[name] = f"http://127.0.0.1:{port}/metrics"
            targets.append(f"127.0.0.1:{port}")
            generator.start()
            self._stack.callback(generator.stop)
        self.traffic, self.smoke = production, smoke
        self.window = rec.TrafficWindow(self._sent, window=TRAFFIC_WINDOW)
        self.smoke_window = rec.TrafficWindow(self._smoke_sent, window=TRAFFIC_WINDOW)
        self.history = History(self.cluster, namespace=self.options.namespace, active=active, preview=preview)
        return targets

    def _record(self) -> None:
        self.history.drain()
        now = time.monotonic()
        self.window.sample(now)
        self.smoke_window.sample(now)

    def _frame(self) -> Frame:
        production = tuple(self.pods.selected(self.bg.active_service))
        smoke = tuple(self.pods.selected(self.bg.preview_service))
        ns, manager = self.options.namespace, self.manager
        return BlueGreenFrame(
            stage=self._stage, why=self._why, release=self._release, releases=len(self.releases),
            expected=self._expected, rollout=self._rollout_or_none(),
            replica_sets=self.cluster.list("ReplicaSet", ns), analysis_runs=self.cluster.list("AnalysisRun", ns),
            routes=production + smoke, traffic=self.window.rates(),
            events=() if manager is None else tuple(manager.recorder.recorded),
            apps={name: (app.image, app.port) for name, app in self.pods.apps.items()},
            elapsed=time.monotonic() - self._started,
            active=self.history.active, preview=self.history.preview, selectors=tuple(self.history.selectors),
            production=production, smoke=smoke, smoke_traffic=self.smoke_window.rates(), new_hash=self._new_hash,
        )

    def _summarize(self, records: list[Any], *, duration_seconds: float) -> Summary:
        return summarize(records, duration_seconds=duration_seconds, endpoints=self.endpoints,
                         kubeconfig=self.kubeconfig)

    # ---------------------------------------------------------------- one release

    def _release_one(self, index: int, release: Release) -> BlueGreenRecord:
        self._stage = f"release {index}/{len(self.releases)}: {release.image} (blue-green)"
        self._why = release.why
        self._release, self._expected = index, release.expected
        started, before, smoke_before = _now(), self._sent(), self._smoke_sent()
        self.history.restart()
        rollout = self._rollout()
        old_stable = str((rollout.get("status") or {}).get("stableRS", ""))
        old_rs = f"{ROLLOUT_NAME}-{old_stable}"
        self._new_hash = ""
        self.cluster.patch("Rollout", ROLLOUT_NAME, self.options.namespace,
                           with_image(rollout, release.image))
        deadline = time.monotonic() + self.bg.timing.release_timeout
        pod_hash, promoted, status = "", False, dict[str, Any]()
        while True:
            self._tick()
            rollout = self._rollout()
            status = rollout.get("status") or {}
            pod_hash = str(status.get("currentPodHash", ""))
            if pod_hash != old_stable:
                self._new_hash = pod_hash
            new_rs = f"{ROLLOUT_NAME}-{pod_hash}"
            promoted = pod_hash != old_stable and rec.healthy(rollout) and status.get("stableRS") == pod_hash
            settled = promoted and self.history.replicas(old_rs) == 0
            aborted = status.get("abort") is True and pod_hash != old_stable and self.history.replicas(new_rs) == 0
            if settled or aborted or time.monotonic() > deadline:
                break
        self.history.drain()
        run = self._pre_run(pod_hash)
        new_rs = f"{ROLLOUT_NAME}-{pod_hash}"
        run_name = None if run is None else str(run["metadata"]["name"])
        sent, smoke_sent = self._sent(), self._smoke_sent()
        record = BlueGreenRecord(
            image=release.image, expected=Outcome(release.expected), started=started, ended=_now(),
            phase=str(status.get("phase", "")), message=str(status.get("message", "")),
            aborted=status.get("abort") is True, promoted=promoted, weights=(), canary=new_rs,
            analysis_run=run_name, analysis_phase=rec.run_phase(run), measurements=rec.measurements(run),
            requests=rec.delta(smoke_sent.get(new_rs, {}), smoke_before.get(new_rs, {})),  # the new version's
            new_hash=pod_hash, old_hash=old_stable, selectors=tuple(self.history.selectors),
            analysis_succeeded_version=None if run_name is None else
            first_version(self.history.runs.get(run_name, []), "Successful"),
            old_scales=tuple(self.history.scales.get(old_rs, [])),
            new_scales=tuple(self.history.scales.get(new_rs, [])),
            production=rec.delta(sent.get(new_rs, {}), before.get(new_rs, {})),
            production_total=sum(sum(rec.delta(codes, before.get(w, {})).values()) for w, codes in sent.items()),
            smoke=rec.delta(smoke_sent.get(new_rs, {}), smoke_before.get(new_rs, {})),
        )
        self.observer.release_done(record)
        self._hold(1.5 if not self.options.short else 0.3, f"{release.image}: {outcome(record)}")
        return record

    def _pre_run(self, pod_hash: str) -> dict[str, Any] | None:
        """The release's pre-promotion AnalysisRun, once it is over."""
        deadline = time.monotonic() + 5.0
        while True:
            runs = [r for r in self.cluster.list("AnalysisRun", self.options.namespace)
                    if ((r.get("metadata") or {}).get("labels") or {}).get("rollout-type") == "PrePromotion"]
            run = rec.run_for(runs, pod_hash)
            if run is None or rec.run_phase(run) not in rec.RUNNING_PHASES or time.monotonic() > deadline:
                self.history.drain()
                return run
            self._tick()

    def _smoke_sent(self) -> rec.Counts:
        return {workload: dict(codes) for workload, codes in list(self.smoke.sent.items())}

