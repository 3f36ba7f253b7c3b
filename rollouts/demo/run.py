"""`rollouts demo`: a whole canary on one machine, with real parts, end to end.

Rules:
- Parts, in start order: the InMemoryCluster served over HTTP (a second terminal reaches
  it with the kubeconfig written to a temp dir), or with `kube` the real control plane
  (rollouts.demo.kube; PodRunner then follows the real ReplicaSets' Ready pods); the
  scenario's manifests; the PodRunner
  (one real app process per ReplicaSet, synced on a 0.3 s tick that also rewrites the
  Prometheus file_sd target list); the TrafficGenerator following the VirtualService
  weights; Debian's Prometheus scraping the generator and the apps every second; the
  controller Manager on the system clock with the real Prometheus provider.
- The initial deploy (`demo:v1`) must be Healthy and Prometheus must hold the
  generator's series before the first release starts. Each release sets the image,
  then waits (bounded by the scenario's `release_timeout`) for the Rollout to be
  promoted (its hash is `stableRS`) or aborted with the canary weight back at 0.
- History is recorded as it happens: every VirtualService weight (a non-blocking
  watch drained each tick, so no weight is missed), the AnalysisRun and its
  measurements, and the canary's requests from the generator's own counts. The
  summary is computed from it (rollouts.demo.summary).
- A release the judge decides (rollouts.demo.judge) gets the judge as an analysis step
  and, once over, the threshold template replayed on its window (analysis.backtest
  against the demo's Prometheus) and the stable's requests meanwhile, for the summary.
- The observer sees a `Frame` about four times a second; it draws, the demo decides.
- Everything started is stopped in reverse order, on success, failure, Ctrl-C and
  SIGTERM (the caller turns SIGTERM into KeyboardInterrupt); neither interrupts the
  cleanup (rollouts.demo.signals), so a second Ctrl-C cannot leave processes behind.
  Should the demo itself be killed, its children die with it and the next demo removes
  its temp dirs (rollouts.demo.lifetime: every child and temp dir is made there and
  recorded for the run). Failures a user can fix (a taken port, Prometheus missing or
  not starting, an app that cannot start) are `DemoError` with one line saying what to do.
Size: over 300 lines because the demo's wiring of real processes, in the order they
  start and stop.
"""

from __future__ import annotations

import copy
import errno
import json
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from analysis.providers.registry import default_providers
from rollouts.controller.manager import Manager
from rollouts.demo import judge as judging
from rollouts.demo import kube as demo_kube
from rollouts.demo import lifetime, signals
from rollouts.demo import record as rec
from rollouts.demo import scenario as scenarios
from rollouts.demo.pods import AppStartError, PodRunner
from rollouts.demo.prometheus import INSTALL_HINT, PrometheusError, PrometheusServer
from rollouts.demo.summary import Outcome, ReleaseRecord, Summary, outcome, summarize
from rollouts.demo.traffic import Backend, TrafficGenerator
from rollouts.memory import server as apiserver
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SystemClock
from rollouts.platform.cluster import Cluster, ClusterError
from rollouts.platform.events import Recorded

TICK = 0.25
POD_TICK = 0.3
READY_TIMEOUT = 40.0
TRAFFIC_WINDOW = 5.0


class DemoError(RuntimeError):
    """Something the user can fix stopped the demo; the message says what."""


@dataclass(frozen=True)
class Options:
    short: bool = False
    api_port: int = 0  # 0: a free port
    rate: float = 40.0  # requests per second
    namespace: str = "default"
    kube: bool = False  # the real control plane (rollouts.demo.kube) instead of the in-memory API


@dataclass(frozen=True)
class Frame:
    """What the screen shows: the cluster's objects, the live traffic, the stage."""

    stage: str
    why: str  # what this release is meant to show
    release: int  # 0: initial deploy, then 1..N
    releases: int
    expected: str
    rollout: dict[str, Any] | None
    replica_sets: list[dict[str, Any]]
    analysis_runs: list[dict[str, Any]]
    routes: tuple[Backend, ...]
    traffic: dict[str, tuple[float, float]]  # workload -> (requests/s, non-5xx share) over the last seconds
    events: tuple[Recorded, ...]
    apps: dict[str, tuple[str, int]]  # ReplicaSet -> (image, port) of its running app process
    elapsed: float


class Observer(Protocol):
    def started(self, endpoints: dict[str, str], kubeconfig: str) -> None: ...
    def frame(self, frame: Frame) -> None: ...
    def release_done(self, record: ReleaseRecord) -> None: ...


class DemoPrometheus(PrometheusServer):
    """The helper's Prometheus plus a file_sd job: app targets come and go without a reload."""

    file_sd: Path | None = None

    def _config_text(self) -> str:
        text = super()._config_text()
        if self.file_sd is None:
            return text
        job = (f"  - job_name: apps\n    file_sd_configs:\n      - files: ['{self.file_sd}']\n"
               "        refresh_interval: 1s\n")
        return text + job if "scrape_configs:" in text else text + "scrape_configs:\n" + job


class Demo:
    releases: tuple[scenarios.Release, ...] = scenarios.RELEASES

    def __init__(self, options: Options, observer: Observer) -> None:
        self.options = options
        self.observer = observer
        self.scenario = scenarios.build(scenarios.SHORT if options.short else scenarios.FULL,
                                        namespace=options.namespace)
        self.judge_template = judging.judge_template(self.scenario.timing, namespace=options.namespace) \
            if any(r.judge for r in self.releases) else None
        self.cluster: Cluster = InMemoryCluster()  # replaced when started: served, or the real one (--kube)
        self.endpoints: dict[str, str] = {}
        self.kubeconfig = ""
        self._stack = ExitStack()
        self._ticker_stop = threading.Event()
        self._ticker_error: BaseException | None = None
        self._app_ports: set[str] = set()
        self._started = time.monotonic()
        self.manager: Manager | None = None
        self._stage, self._why, self._release, self._expected = "starting", "", 0, ""

    # ---------------------------------------------------------------- lifecycle

    def run(self) -> Summary:
        try:
            self._start()
            records = [self._release_one(i + 1, r) for i, r in enumerate(self.releases)]
            self._release, self._expected = 0, ""
            self._hold(2.0 if not self.options.short else 0.5, "done: all traffic on the stable ReplicaSet")
        finally:
            signals.close_shielded(self._stack)
        return self._summarize(records, duration_seconds=time.monotonic() - self._started)

    def _summarize(self, records: list[Any], *, duration_seconds: float) -> Summary:
        return summarize(records, duration_seconds=duration_seconds, endpoints=self.endpoints,
                         kubeconfig=self.kubeconfig)

    def _start(self) -> None:
        if shutil.which("prometheus") is None:
            raise DemoError(f"prometheus is not installed: {INSTALL_HINT} (or run `make deps`)")
        stack, ns = self._stack, self.options.namespace
        stack.enter_context(lifetime.recorded_run())  # closed last: what is left stays recorded
        workdir = lifetime.mkdtemp("rollouts-demo-")
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if self.options.kube:
            self._start_kube(workdir)
        else:
            self._serve_memory(workdir)
        for obj in self._objects():
            self.cluster.create(copy.deepcopy(obj))

        pods = PodRunner(self.cluster, namespace=ns, service=self._app_service(), ready_only=self.options.kube)
        stack.callback(pods.close)
        targets = workdir / "apps.json"
        targets.write_text("[]")
        ticker = threading.Thread(target=self._tick_pods, args=(pods, targets), name="demo-pods", daemon=True)
        ticker.start()
        stack.callback(ticker.join, 10)
        stack.callback(self._ticker_stop.set)
        self.pods = pods
        scrape_targets = self._start_traffic(pods)

        prometheus = DemoPrometheus(scrape_targets=scrape_targets)
        prometheus.file_sd = targets
        try:
            stack.enter_context(prometheus)
        except PrometheusError as err:
            raise DemoError(f"Prometheus could not start: {_one_line(str(err))}") from None
        self.endpoints["prometheus"] = prometheus.url

        manager = Manager(self.cluster, default_providers(prometheus_address=prometheus.url), clock=SystemClock(),
                          namespace=ns, leader_election=False, workers=2)
        manager.start()
        stack.callback(manager.stop)
        self.manager = manager
        self.observer.started(dict(self.endpoints), self.kubeconfig)
        self._wait_initial()

    def _serve_memory(self, workdir: Path) -> None:
        memory = InMemoryCluster()
        try:
            api = self._stack.enter_context(apiserver.serve(memory, port=self.options.api_port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise DemoError(f"port {self.options.api_port} on 127.0.0.1 is taken: stop what listens there "
                                "or pass --api-port 0 for a free port") from None
            raise DemoError(f"cannot serve the demo's API on port {self.options.api_port}: {err.strerror}") from None
        self.cluster = memory
        self.kubeconfig = str(api.write_kubeconfig(workdir / "kubeconfig", context="rollouts-demo",
                                                   namespace=self.options.namespace))
        self.endpoints["api"] = api.url

    def _start_kube(self, workdir: Path) -> None:
        """`--kube`: the real control plane (rollouts.demo.kube) instead of the in-memory API."""
        try:
            real = demo_kube.start(self._stack, workdir, self.options.namespace)
        except demo_kube.KubeDemoError as err:
            raise DemoError(str(err)) from None
        self.cluster = real.cluster
        self.kubeconfig = str(real.kubeconfig)
        self.endpoints["api"] = real.url

    # ---------------------------------------------------------------- what differs by strategy

    def _objects(self) -> list[dict[str, Any]]:
        return ([] if self.judge_template is None else [self.judge_template]) + self.scenario.objects

    def _app_service(self) -> str:
        return self.scenario.service_name

    def _start_traffic(self, pods: PodRunner) -> list[str]:
        """Start the traffic generator following the VirtualService; its scrape targets."""
        vs = str(self.scenario.virtual_service["metadata"]["name"])
        traffic = TrafficGenerator(lambda: pods.routes(vs, self.scenario.route),
                                   service=self.scenario.service_name, rate=self.options.rate)
        self.endpoints["traffic"] = f"http://127.0.0.1:{traffic.serve_metrics()}/metrics"
        traffic.start()
        self._stack.callback(traffic.stop)
        self.traffic, self._vs_name = traffic, vs
        self.window = rec.TrafficWindow(self._sent, window=TRAFFIC_WINDOW)
        self.weights = rec.WeightLog(self.cluster, namespace=self.options.namespace, name=vs,
                                     route=self.scenario.route, canary_service=self.scenario.canary_service)
        return [self.endpoints["traffic"].split("/")[2]]

    def _tick_pods(self, pods: PodRunner, targets: Path) -> None:
        written: list[str] = []
        while not self._ticker_stop.wait(POD_TICK):
            try:
                pods.sync()
            except (AppStartError, ClusterError, OSError) as err:
                self._ticker_error = err
                return
            current = pods.metrics_targets()
            self._app_ports.update(current)
            if current != written:
                tmp = targets.with_suffix(".tmp")
                tmp.write_text(json.dumps([{"targets": current, "labels": {"job": "apps"}}]))
                tmp.replace(targets)  # Prometheus reads whole files only
                written = current

    # ---------------------------------------------------------------- waiting

    def _wait_initial(self) -> None:
        self._stage = f"initial deploy: {scenarios.FIRST_IMAGE}"
        deadline = time.monotonic() + READY_TIMEOUT
        while not (rec.healthy(self._rollout()) and self._scraped()):
            if time.monotonic() > deadline:
                why = "the Rollout did not become Healthy" if not rec.healthy(self._rollout()) else \
                    f"Prometheus at {self.endpoints['prometheus']} has no traffic samples yet"
                raise DemoError(f"the demo could not get ready within {READY_TIMEOUT:.0f}s: {why}")
            self._tick()

    def _scraped(self) -> bool:
        try:
            answer = requests.get(f"{self.endpoints['prometheus']}/api/v1/query", timeout=2,
                                  params={"query": 'count(rate(istio_requests_total{reporter="source"}[10s]))'})
            return bool(answer.ok and answer.json()["data"]["result"])
        except (requests.RequestException, ValueError, KeyError):
            return False

    def _release_one(self, index: int, release: scenarios.Release) -> ReleaseRecord:
        self._stage = f"release {index}/{len(self.releases)}: {release.image}"
        self._why = release.why
        self._release, self._expected = index, release.expected
        started, before = _now(), self._sent()
        self.weights.restart()
        rollout = self._rollout()
        old_stable = str((rollout.get("status") or {}).get("stableRS", ""))
        old_hash = str((rollout.get("status") or {}).get("currentPodHash", ""))  # aborted before: not this release
        patch = judging.judge_patch(rollout, release.image, service_name=self.scenario.service_name) \
            if release.judge else scenarios.with_image(rollout, release.image)
        self.cluster.patch("Rollout", scenarios.ROLLOUT_NAME, self.options.namespace, patch)
        deadline = time.monotonic() + self.scenario.timing.release_timeout
        while True:
            self._tick()
            rollout = self._rollout()
            status = rollout.get("status") or {}
            pod_hash = str(status.get("currentPodHash", ""))
            promoted = pod_hash != old_stable and rec.healthy(rollout) and status.get("stableRS") == pod_hash
            aborted = status.get("abort") is True and self.weights.weights[-1] == 0 and pod_hash != old_hash
            if promoted or aborted or time.monotonic() > deadline:
                break
        self.weights.drain()  # the promotion's last weights are written before its status
        run = self._analysis_run(pod_hash, metric="judge" if release.judge else None)
        canary, stable = f"{scenarios.ROLLOUT_NAME}-{pod_hash}", f"{scenarios.ROLLOUT_NAME}-{old_stable}"
        ended = _now()
        judged: dict[str, Any] = {} if not release.judge else {
            "judge": rec.judge_message(run), "threshold": self._threshold(pod_hash, started, ended),
            "baseline_requests": rec.delta(self._sent().get(stable, {}), before.get(stable, {}))}
        record = ReleaseRecord(
            image=release.image, expected=Outcome(release.expected), started=started, ended=ended,
            phase=str(status.get("phase", "")), message=str(status.get("message", "")),
            aborted=status.get("abort") is True, promoted=promoted, weights=tuple(self.weights.weights),
            canary=canary, analysis_run=None if run is None else run["metadata"]["name"],
            analysis_phase=rec.run_phase(run), measurements=rec.measurements(run),
            requests=rec.delta(self._sent().get(canary, {}), before.get(canary, {})), **judged,
        )
        self.observer.release_done(record)
        self._hold(1.5 if not self.options.short else 0.3, f"{release.image}: {outcome(record)}")
        return record

    def _threshold(self, pod_hash: str, start: datetime, end: datetime) -> str:
        """What the threshold template says, replayed on the release's window for its canary."""
        try:
            replayed = judging.threshold_replay(self.scenario.template, prometheus=self.endpoints["prometheus"],
                                                service_name=self.scenario.service_name, canary_hash=pod_hash,
                                                start=start, end=end)
        except ValueError as err:  # a spec or arg the replay refuses: shown, never a crash
            return f"threshold template: could not be replayed: {err}"
        return replayed.text()

    def _analysis_run(self, pod_hash: str, *, metric: str | None = None) -> dict[str, Any] | None:
        """The release's AnalysisRun, once it is over (a promotion terminates it a moment later)."""
        deadline = time.monotonic() + 5.0
        while True:
            run = rec.run_for(self.cluster.list("AnalysisRun", self.options.namespace), pod_hash, metric=metric)
            if run is None or rec.run_phase(run) not in rec.RUNNING_PHASES or time.monotonic() > deadline:
                return run
            self._tick()

    def _hold(self, seconds: float, stage: str) -> None:
        self._stage, self._why = stage, ""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self._tick()

    # ---------------------------------------------------------------- one tick

    def _tick(self) -> None:
        if self._ticker_error is not None:
            raise DemoError(f"the demo's pods stopped: {self._ticker_error}")
        if self.manager is not None and not self.manager.healthy():
            raise DemoError("the controller stopped")
        self._record()
        self.observer.frame(self._frame())
        time.sleep(TICK)

    def _record(self) -> None:
        self.weights.drain()
        self.window.sample(time.monotonic())

    def _frame(self) -> Frame:
        ns, manager = self.options.namespace, self.manager
        return Frame(
            stage=self._stage, why=self._why, release=self._release, releases=len(self.releases),
            expected=self._expected, rollout=self._rollout_or_none(),
            replica_sets=self.cluster.list("ReplicaSet", ns), analysis_runs=self.cluster.list("AnalysisRun", ns),
            routes=tuple(self.pods.routes(self._vs_name, self.scenario.route)), traffic=self.window.rates(),
            events=() if manager is None else tuple(manager.recorder.recorded),
            apps={name: (app.image, app.port) for name, app in self.pods.apps.items()},
            elapsed=time.monotonic() - self._started,
        )

    def _sent(self) -> rec.Counts:
        return {workload: dict(codes) for workload, codes in list(self.traffic.sent.items())}

    def _rollout(self) -> dict[str, Any]:
        return self.cluster.get("Rollout", scenarios.ROLLOUT_NAME, self.options.namespace)

    def _rollout_or_none(self) -> dict[str, Any] | None:
        try:
            return self._rollout()
        except ClusterError:
            return None

    def app_endpoints(self) -> list[str]:
        return sorted(f"http://{target}/" for target in self._app_ports)


def _one_line(message: str) -> str:
    """`what failed: last line of the log` out of a message carrying a log tail."""
    lines = [line for line in message.splitlines() if line.strip()] or [""]
    return lines[0] if len(lines) == 1 else f"{lines[0].split(':')[0]}: {lines[-1].strip()}"


def _now() -> datetime:
    return SystemClock().now()


def run_demo(options: Options, observer: Observer, kind: type[Demo] = Demo) -> Summary:
    """Run the demo; `kind` is the canary `Demo` or a subclass (rollouts.demo.bluegreen_run.BlueGreenDemo)."""
    demo = kind(options, observer)
    summary = demo.run()
    endpoints = dict(summary.endpoints)
    endpoints.update({f"app{i}": url for i, url in enumerate(demo.app_endpoints(), 1)})
    return Summary(summary.releases, summary.duration_seconds, endpoints, summary.kubeconfig)
