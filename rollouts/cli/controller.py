"""`rollouts controller`: run the Rollout and AnalysisRun controllers until SIGTERM or Ctrl-C.

Rules:
- Against the cluster of `--kubeconfig`/`--context` (or the in-cluster service account);
  `--namespace` limits the watches (default: all namespaces); `--instance-id` shards
  objects with Argo's instance-id label; `--workers` reconcile in parallel.
- Leader election is on by default: one Lease per shard (`rollouts-controller-lock`, plus
  `-<instance-id>` and `-ns-<namespace>`: README "Sharding"), in `--namespace`, else
  $POD_NAMESPACE, else the context's namespace. Losing the lease stops the process with
  exit 1, so the pod restarts and a new term starts from status alone (Argo does this).
  `--leader-election-lease-duration`, `-renew-deadline` and `-retry-period` (Argo's flags:
  `15s`, `10s`, `2s`) must be in that order of size, else exit 2 naming them. The start
  line logs the shard, its Lease and this replica's identity (the `reportingInstance` of
  every event it writes).
- `--metrics-addr` serves `/metrics` (and `/healthz`), `--health-addr` serves `/healthz`
  (and `/metrics`); `:8090` means every interface, port 0 a free port. The bound
  addresses are logged, so `127.0.0.1:0` is usable in tests.
- `--log-format json` writes one JSON object per line on stderr (`time`, `level`,
  `logger`, `msg`); `text` is for people.
- `--local` runs against a fresh InMemoryCluster served over HTTP on 127.0.0.1 and logs
  the kubeconfig that reaches it, so `rollouts get rollout NAME --watch --kubeconfig ...`
  works from another terminal; `--apply PATH` loads manifests into it first.
- `--prometheus URL` is the address of prometheus metrics that set none (a metric's own
  `address` always wins), else $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS as in Argo; the flag wins over it.
- `--notifications-configmap NAMESPACE/NAME` turns on notifications
  (rollouts.controller.notify): routes, templates and settings from that ConfigMap, read
  again every `settings.reloadSeconds`; a bad one is logged naming its key.
- SIGTERM or Ctrl-C stops cleanly (exit 0) from the first moment, even while the servers
  start or the cluster is reached: the handlers are installed before anything else.
- Mistakes are one line and exit 1 (bad address: exit 2), never a traceback: an address
  whose port is taken names the flag; a kubeconfig that does not exist names the file.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rollouts.cli import PROMETHEUS_HELP, CommandError, connect, prometheus_default, prometheus_url

log = logging.getLogger("rollouts.controller.manager.cli")

DEFAULT_METRICS_ADDR = ":8090"
DEFAULT_HEALTH_ADDR = ":8080"


# --- flags ----------------------------------------------------------------------------

def address(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `:PORT` (every interface) as (host, port); argparse type."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address: use HOST:PORT or :PORT, e.g. :8090 or 127.0.0.1:0")
    return host.strip("[]") or "0.0.0.0", int(port)


def configmap_target(text: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` of the notifications ConfigMap; argparse type."""
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAMESPACE/NAME of a ConfigMap, e.g. rollouts/rollouts-notifications")
    return namespace, name


def seconds(text: str) -> float:
    """A duration: `15s`, `500ms`, `1m` or plain seconds; argparse type."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    number, unit = text, "s"
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            number, unit = text[: -len(suffix)], suffix
            break
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 15s, 500ms or 1m")
    return value


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of workers")
    return int(text)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "controller", help="Run the controller (Rollouts and AnalysisRuns) until stopped",
        description="Run the Rollout and AnalysisRun controllers against a cluster until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--namespace", "-n", metavar="NS", help="watch only this namespace (default: all namespaces)")
    parser.add_argument("--instance-id", metavar="ID",
                        help="handle only objects labelled argo-rollouts.argoproj.io/controller-instance-id=ID")
    parser.add_argument("--workers", type=positive, default=4, metavar="N",
                        help="parallel Rollout reconciles (default 4)")
    parser.add_argument("--analysis-workers", type=positive, default=4, metavar="N",
                        help="parallel AnalysisRun measurements, apart from the Rollout workers (default 4)")
    parser.add_argument("--metrics-addr", type=address, default=DEFAULT_METRICS_ADDR, metavar="HOST:PORT",
                        help=f"serve /metrics here (default {DEFAULT_METRICS_ADDR})")
    parser.add_argument("--health-addr", type=address, default=DEFAULT_HEALTH_ADDR, metavar="HOST:PORT",
                        help=f"serve /healthz here (default {DEFAULT_HEALTH_ADDR})")
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                        help="hold a Lease so only one replica reconciles (default: on)")
    election = parser.add_argument_group("leader election (client-go's, as Argo configures it)")
    election.add_argument("--leader-election-lease-duration", type=seconds, default=15.0, metavar="DURATION",
                          help="a standby takes over this long after the leader's last renewal (default 15s)")
    election.add_argument("--leader-election-renew-deadline", type=seconds, default=10.0, metavar="DURATION",
                          help="the leader stops when it could not renew for this long (default 10s)")
    election.add_argument("--leader-election-retry-period", type=seconds, default=2.0, metavar="DURATION",
                          help="how often to renew or try to acquire (default 2s)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines on stderr")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    parser.add_argument("--prometheus", metavar="URL", type=prometheus_url, help=PROMETHEUS_HELP)
    parser.add_argument("--notifications-configmap", type=configmap_target, metavar="NAMESPACE/NAME",
                        help="send notifications as this ConfigMap's routes say (README: Notifications); "
                             "read again every settings.reloadSeconds")
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                                                              "else the in-cluster service account)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: its current-context)")
    local = parser.add_argument_group("trying it out")
    local.add_argument("--local", action="store_true",
                       help="run against a fresh in-memory cluster served on 127.0.0.1 (its kubeconfig is logged)")
    local.add_argument("--apply", action="append", default=[], metavar="PATH",
                       help="with --local: create the manifests in PATH (file or directory) first; repeatable")
    parser.set_defaults(func=run)


# --- logging ---------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line)


@contextmanager
def configured_logging(fmt: str, level: str) -> Iterator[None]:
    """Root logging to stderr in `fmt` for the command's lifetime; the old setup comes back after."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = {name: logging.getLogger(name).level for name in ("urllib3", "kubernetes")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers[:] = old_handlers
        root.setLevel(old_level)
        for name, previous in quiet.items():
            logging.getLogger(name).setLevel(previous)


# --- the pieces ------------------------------------------------------------------------

def _listen(flag: str, addr: tuple[str, int], start: Callable[[str], Any]) -> Any:
    try:
        return start(f"{addr[0]}:{addr[1]}")
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CommandError(f"{flag} {addr[0]}:{addr[1]}: port {addr[1]} is already in use; "
                               f"stop what listens there or pass another {flag}") from None
        raise CommandError(f"{flag} {addr[0]}:{addr[1]}: cannot listen: {err.strerror or err}") from None


def _local_cluster(stack: ExitStack, paths: list[str]) -> Any:
    from rollouts.memory import server as apiserver
    from rollouts.memory.cluster import InMemoryCluster

    cluster = InMemoryCluster()
    _apply(cluster, paths)
    server = stack.enter_context(apiserver.serve(cluster))
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rollouts-local-")))
    kubeconfig = server.write_kubeconfig(workdir / "kubeconfig", context="rollouts-local")
    log.info("local cluster at %s; from another terminal: rollouts get rollout NAME --watch --kubeconfig %s",
             server.url, kubeconfig)
    return cluster


def _apply(cluster: Any, paths: list[str]) -> None:
    from rollouts.platform.cluster import ClusterError
    from rollouts.platform.kinds import UnknownKind
    from rollouts.spec import manifests

    if not paths:
        return
    try:
        loaded = manifests.load(paths)
    except manifests.ManifestError as err:
        raise CommandError(f"--apply: {err}") from None
    for issue in loaded.issues:
        raise CommandError(f"--apply: {issue.file}:{issue.line}:{issue.column}: {issue.message}")
    for doc in loaded.documents:
        try:
            created = cluster.create(manifests.drop_nulls(doc.data))
        except (ClusterError, UnknownKind) as err:
            raise CommandError(f"--apply: {doc.file} (document {doc.index}): {err}") from None
        log.info("applied %s/%s from %s", created["kind"], created["metadata"]["name"], doc.file)


@contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (main thread only); the old handlers come back after."""
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def lease_timing(args: argparse.Namespace) -> Any:
    from rollouts.controller.leader import LeaseTiming

    try:
        return LeaseTiming(args.leader_election_lease_duration, args.leader_election_renew_deadline,
                           args.leader_election_retry_period)
    except ValueError as err:
        raise CommandError(f"--leader-election-lease-duration, --leader-election-renew-deadline, "
                           f"--leader-election-retry-period: {err}", 2) from None


# --- the command -----------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.apply and not args.local:
        raise CommandError("--apply works only with --local (use kubectl apply for a real cluster)", 2)
    args.prometheus = prometheus_default(args.prometheus, os.environ)  # a bad $ARGO_ROLLOUTS_... exits 2 here
    args.lease_timing = lease_timing(args)
    with configured_logging(args.log_format, args.log_level):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from analysis.providers.registry import default_providers
    from rollouts.controller import metrics as controller_metrics
    from rollouts.controller.manager import Manager
    from rollouts.platform.clock import SystemClock

    stop = threading.Event()
    with ExitStack() as stack:
        stack.enter_context(_signals_stop(stop))  # first: a SIGTERM while starting up is a clean stop, not a kill
        if args.local:
            cluster: Any = _local_cluster(stack, args.apply)
            lease_namespace = args.namespace or "default"
        else:
            cluster, target = connect.connect(args)
            if callable(getattr(cluster, "close", None)):
                stack.callback(cluster.close)
            lease_namespace = args.namespace or os.environ.get("POD_NAMESPACE") or target.namespace
            log.info("cluster: %s", target.describe())
        manager = Manager(
            cluster, default_providers(prometheus_default=args.prometheus), clock=SystemClock(),
            namespace=args.namespace, instance_id=args.instance_id, workers=args.workers,
            analysis_workers=args.analysis_workers,
            leader_election=args.leader_elect, lease_namespace=lease_namespace, lease_timing=args.lease_timing,
            notifications=args.notifications_configmap,
        )
        serve = controller_metrics.serve
        metrics_server = _listen("--metrics-addr", args.metrics_addr,
                                 lambda a: serve(manager.metrics, a, healthy=manager.healthy))
        stack.callback(metrics_server.close)
        log.info("metrics on http://%s:%d/metrics", args.metrics_addr[0], metrics_server.port)
        if args.health_addr != args.metrics_addr or args.health_addr[1] == 0:
            health_server = _listen("--health-addr", args.health_addr,
                                    lambda a: serve(manager.metrics, a, healthy=manager.healthy))
            stack.callback(health_server.close)
            log.info("health on http://%s:%d/healthz", args.health_addr[0], health_server.port)
        log.info("controller starting: namespace=%s instance-id=%s workers=%d leader-election=%s identity=%s",
                 args.namespace or "(all)", args.instance_id or "(none)", args.workers,
                 f"lease {manager.elector.namespace}/{manager.elector.name}" if manager.elector else "off",
                 manager.identity)
        manager.start()
        try:
            while not stop.wait(0.5) and manager.healthy():
                pass
        finally:
            manager.stop()
        if not stop.is_set():
            raise CommandError("stopped: lost leadership (another replica holds the lease); restart to rejoin")
        log.info("controller stopped")
    return 0
