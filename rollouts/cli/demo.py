"""`rollouts demo`: run the local canary demo (rollouts.demo.run) and show it.

Rules:
- On a terminal the `get rollout --watch` screen is drawn live (rich Live): the view-model
  and renderers of `rollouts.view`/`rollouts.view.render`, laid out with the demo's own lines
  (stage, live traffic split, the controller's latest events, how to reach the demo from
  a second terminal). Without a terminal: one plain line per change. `--json`: nothing
  but the summary as JSON on stdout (progress goes to stderr).
- The end is the summary table (or JSON) and exit 0 when every release had its expected
  outcome, else 1. Ctrl-C and SIGTERM stop the demo and every process it started (exit
  130 and one line, whatever more Ctrl-C come during the cleanup: rollouts.demo.signals);
  a killed demo's children die with it and the next demo removes its temp dirs
  (rollouts.demo.lifetime). A taken port or a Prometheus that cannot start is one line
  and exit 1.
- `--kube`: the same demo on a real control plane (rollouts.demo.kube) instead of the
  embedded API; the screen, the summary and the exit code are the same.
- The web dashboard (rollouts.dashboard) is served on the demo's cluster once it is up, on
  127.0.0.1:3100 (or a free port when that is taken; `--dashboard-port`, 0 = free, `-1` = off),
  and its URL is printed beside the second-terminal hint.
- Controller logs go to a bounded in-memory buffer, never onto the screen; when the demo
  fails, the last warnings are printed with the message.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rollouts import view
from rollouts.cli import CommandError
from rollouts.demo import bluegreen_summary, signals
from rollouts.demo.summary import ReleaseRecord, Summary, outcome, table, to_json
from rollouts.view import render

WIDTH = 120
HEADER_WIDTH = 58


def second_terminal(kubeconfig: str, dashboard: str = "") -> list[str]:
    lines = [f"export KUBECONFIG={kubeconfig}",
             "rollouts get rollout demo --watch   ·   rollouts promote demo   ·   rollouts abort demo"]
    return [*lines, f"dashboard: {dashboard}"] if dashboard else lines


class WithDashboard:
    """An observer that serves the web dashboard on the demo's cluster once it started (its URL
    goes into the inner observer's `dashboard`, which the second-terminal hint prints); `close()` stops it."""

    def __init__(self, inner: Any, port: int) -> None:
        self.inner, self.port = inner, port
        self.served: Any = None

    def started(self, endpoints: dict[str, str], kubeconfig: str) -> None:
        from rollouts.dashboard.server import Options, Served, build  # lazily: only the demo pays for it
        from rollouts.kube.cluster import KubeCluster

        dash = build(KubeCluster(kubeconfig=kubeconfig, request_timeout=15), Options(port=self.port))
        try:
            self.served = Served(dash, "127.0.0.1", self.port)
        except OSError:  # the port is taken (another dashboard): a free one
            self.served = Served(dash, "127.0.0.1", 0)
        self.inner.dashboard = self.served.url + "/"
        self.inner.started(endpoints, kubeconfig)

    def frame(self, frame: Any) -> None:
        self.inner.frame(frame)

    def release_done(self, record: ReleaseRecord) -> None:
        self.inner.release_done(record)

    def close(self) -> None:
        if self.served is not None:
            self.served.close()


class RecentLogs(logging.Handler):
    """Keeps the last warnings of the controller threads instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[str] = deque(maxlen=5)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}".splitlines()[0][:200])


@contextmanager
def captured_logs() -> Iterator[RecentLogs]:
    root, handler = logging.getLogger(), RecentLogs()
    old_handlers, old_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.handlers[:] = old_handlers
        root.setLevel(old_level)


# --- observers -------------------------------------------------------------------------

def _rollout_view(frame: Any) -> view.RolloutView | None:
    if frame.rollout is None:
        return None
    return view.build(frame.rollout, frame.replica_sets, frame.analysis_runs, now=datetime.now(UTC))


def traffic_rows(frame: Any) -> list[tuple[str, str, int]]:
    """(role, workload, weight) per ReplicaSet that routes reach; a ReplicaSet behind both
    Services (after a promotion or an abort) is one row with the summed weight."""
    status = (frame.rollout or {}).get("status") or {}
    stable = f"{((frame.rollout or {}).get('metadata') or {}).get('name', '')}-{status.get('stableRS', '')}"
    weights: dict[str, int] = {}
    for backend in frame.routes:
        weights[backend.workload] = weights.get(backend.workload, 0) + backend.weight
    return [("stable" if name == stable else "canary", name, weight) for name, weight in weights.items()]


def _blue_green_view(frame: Any) -> Any:
    """rollouts.demo.bluegreen_view for a blue-green demo's frame, else None (imported late, as the demo is)."""
    from rollouts.demo import bluegreen_run, bluegreen_view

    return bluegreen_view if isinstance(frame, bluegreen_run.BlueGreenFrame) else None


def traffic_table(frame: Any) -> Table:
    if (blue_green := _blue_green_view(frame)) is not None:
        services: Table = blue_green.traffic_table(frame)
        return services
    grid = Table.grid(padding=(0, 2))
    for _ in range(5):
        grid.add_column(no_wrap=True)
    grid.add_row(Text("Traffic", style="bold"), "", Text("weight", style="dim"), Text("req/s", style="dim"),
                 Text("ok (last 5s)", style="dim"))
    for role, workload, weight in traffic_rows(frame):
        rate, ok = frame.traffic.get(workload, (0.0, 1.0))
        ok_text = Text(f"{ok * 100:5.1f}%", style="green" if ok >= 0.95 else "bold red") if rate else Text("    -")
        grid.add_row(f"  {role}", Text(workload, style="green" if role == "stable" else "yellow"),
                     f"{weight:>3}%", f"{rate:5.1f}", ok_text)
    return grid


def events_table(frame: Any, limit: int = 4) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=23)
    grid.add_column(overflow="ellipsis", no_wrap=True, max_width=80)
    grid.add_row(Text("Events", style="bold"), "")
    for event in list(frame.events)[-limit:]:
        style = "red" if event.type == "Warning" else "dim"
        grid.add_row(Text(f"  {event.reason}", style="yellow" if event.type == "Warning" else ""),
                     Text(event.message, style=style))
    return grid


class LiveScreen:
    """The live `get rollout --watch` screen with the demo's stage, traffic and events."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, auto_refresh=False, redirect_stdout=False, transient=False)
        self.kubeconfig = ""
        self.dashboard = ""
        self.last: Any = None

    def __enter__(self) -> LiveScreen:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.last is not None:  # the demo's cluster is gone: no more second-terminal hint
            self.kubeconfig = ""
            self.live.update(self.screen(self.last), refresh=True)
        self.live.__exit__(None, None, None)

    def started(self, endpoints: dict[str, str], kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig

    def release_done(self, record: ReleaseRecord) -> None:
        pass

    def frame(self, frame: Any) -> None:
        self.last = frame
        self.live.update(self.screen(frame), refresh=True)

    def screen(self, frame: Any) -> RenderableType:
        title = Text("rollouts demo", style="bold magenta")
        title.append(f"   {frame.stage}", style="bold")
        if frame.expected:
            title.append(f"   expected: {frame.expected}", style="bold cyan")
        title.append(f"   {frame.elapsed:.0f}s", style="dim")
        subtitle = Text(frame.why, style="dim")
        current = _rollout_view(frame)
        if current is None:
            return Group(title, subtitle, Text("starting…", style="dim"))
        side = Group(*(part for part in (render.steps(current), Text(""), traffic_table(frame), Text(""),
                                         events_table(frame)) if part is not None))
        top = Table.grid(padding=(0, 3))
        top.add_column(width=HEADER_WIDTH)
        top.add_column()
        top.add_row(render.header(current), side)
        return Group(title, subtitle, top, Text(""), render.tree(current), Text(""), self.hint())

    def hint(self) -> Text:
        if not self.kubeconfig:
            return Text("")
        hint = Text("Second terminal:  ", style="dim")
        hint.append(f"export KUBECONFIG={self.kubeconfig}\n", style="cyan")
        hint.append(" " * 18 + "rollouts get rollout demo --watch   ·   rollouts promote demo   ·   "
                    "rollouts abort demo",
                    style="cyan")
        if self.dashboard:
            hint.append("\n" + " " * 18 + f"dashboard: {self.dashboard}", style="cyan")
        return hint


class LinePrinter:
    """One plain line per change, for logs and CI."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.last = ""
        self.stage = ""
        self.apps: dict[str, tuple[str, int]] = {}
        self.dashboard = ""

    def started(self, endpoints: dict[str, str], kubeconfig: str) -> None:
        print("rollouts demo: cluster API at " + endpoints.get("api", "?") + ", Prometheus at "
              + endpoints.get("prometheus", "?"), file=self.out, flush=True)
        print("  from a second terminal:", file=self.out, flush=True)
        for line in second_terminal(kubeconfig, self.dashboard):
            print(f"    {line}", file=self.out, flush=True)

    def frame(self, frame: Any) -> None:
        if frame.stage != self.stage:
            self.stage = frame.stage
            print(f"[{frame.elapsed:5.1f}s] == {frame.stage}", file=self.out, flush=True)
        for name, (image, port) in sorted(frame.apps.items()):
            if self.apps.get(name) != (image, port):
                print(f"[{frame.elapsed:5.1f}s] app {name} ({image}) listening on 127.0.0.1:{port}",
                      file=self.out, flush=True)
        self.apps = dict(frame.apps)
        current = _rollout_view(frame)
        if current is None:
            return
        weights = " ".join(f"{b.workload}={b.weight}" for b in frame.routes)
        if (blue_green := _blue_green_view(frame)) is not None:
            weights = blue_green.routes_text(frame)
        key = f"{view.change_key(current)}  routes: {weights}"
        if key != self.last:
            self.last = key
            print(f"[{frame.elapsed:5.1f}s] {key}", file=self.out, flush=True)

    def release_done(self, record: ReleaseRecord) -> None:
        why = f"{record.phase}: {record.message}" if record.message else record.phase
        print(f"== {record.image}: {outcome(record)} ({why})", file=self.out, flush=True)


# --- the command -------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    with signals.interrupts():
        try:
            with captured_logs() as logs:
                return _run(args, logs)
        except KeyboardInterrupt:
            print("rollouts demo: interrupted; every process the demo started has been stopped", file=sys.stderr)
            return 130


def _run(args: argparse.Namespace, logs: RecentLogs) -> int:
    from rollouts.demo.bluegreen_run import BlueGreenDemo
    from rollouts.demo.run import Demo, DemoError, Options

    if args.kube and args.api_port:
        raise CommandError("--api-port is for the embedded API; with --kube the control plane picks free ports", 2)
    if args.kube and args.blue_green:
        raise CommandError("--blue-green runs on the embedded API only; drop --kube", 2)
    options = Options(short=args.short, api_port=args.api_port, rate=args.rate, kube=args.kube)
    kind = BlueGreenDemo if args.blue_green else Demo
    tty = sys.stdout.isatty() and not args.json and not args.plain
    console = Console(file=sys.stdout, force_terminal=tty, highlight=False, width=None if tty else WIDTH)
    try:
        if tty:
            with LiveScreen(console) as screen:
                summary = _observed(options, screen, kind, args.dashboard_port)
        else:
            summary = _observed(options, LinePrinter(sys.stderr if args.json else sys.stdout), kind,
                                args.dashboard_port)
    except DemoError as err:
        raise CommandError(_with_logs(str(err), logs)) from None
    show(summary, json_output=args.json, console=console, tty=tty)
    return 0 if summary.ok else 1


def _observed(options: Any, observer: Any, kind: Any, dashboard_port: int) -> Summary:
    from rollouts.demo.run import run_demo

    if dashboard_port < 0:
        return run_demo(options, observer, kind)
    with_dashboard = WithDashboard(observer, dashboard_port)
    try:
        return run_demo(options, with_dashboard, kind)
    finally:
        with_dashboard.close()


def _with_logs(message: str, logs: RecentLogs) -> str:
    if not logs.lines:
        return message
    return message + "\n  last controller warnings:\n    " + "\n    ".join(logs.lines)


def show(summary: Summary, *, json_output: bool, console: Console, tty: bool) -> None:
    blue_green = any(isinstance(r, bluegreen_summary.BlueGreenSummary) for r in summary.releases)
    as_json, as_table = (bluegreen_summary.to_json, bluegreen_summary.table) if blue_green else (to_json, table)
    if json_output:
        print(json.dumps(as_json(summary), indent=2), flush=True)
        return
    if tty:
        console.print()
        console.print(as_table(summary))
    else:
        print("\n" + render.to_text(as_table(summary), width=WIDTH), end="", flush=True)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 1 <= rate <= 500:
        raise argparse.ArgumentTypeError(f"{text!r} is not a request rate: use 1 to 500 requests per second")
    return rate


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0 (a free port) to 65535")
    return int(text)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="Run a whole canary on this machine: v2 promoted, v3 aborted by analysis, v4 by the judge",
        description="Start an in-memory cluster, real app processes, a traffic generator, Debian's Prometheus and "
                    "the controller; release demo:v2 (promoted), demo:v3 (aborted by analysis), then demo:v4, a subtle "
                    "regression the threshold template passes, aborted by the statistical judge; print a summary. "
                    "Exit 0 when every outcome is as expected.",
    )
    parser.add_argument("--json", action="store_true", help="print only the summary, as JSON (no live view)")
    parser.add_argument("--short", "--fast", action="store_true", help="shorter pauses and intervals (for CI)")
    parser.add_argument("--blue-green", action="store_true",
                        help="release with the blueGreen strategy (examples/blue-green): preview analysis, then switch")
    parser.add_argument("--plain", action="store_true", help="one line per change even on a terminal")
    parser.add_argument("--api-port", type=_port, default=0, metavar="PORT",
                        help="serve the demo's cluster API on this port (default: a free one)")
    parser.add_argument("--kube", action="store_true",
                        help="run on a real control plane (kube-apiserver, the ReplicaSet controller and garbage "
                             "collector of Kubernetes 1.20.2, tools/k8s/build.sh) instead of the in-memory API")
    parser.add_argument("--rate", type=_rate, default=40.0, metavar="RPS", help="requests per second (default 40)")
    parser.add_argument("--dashboard-port", type=int, default=3100, metavar="PORT",
                        help="serve the web dashboard on 127.0.0.1:PORT (default 3100, a free one if taken; "
                             "0: a free one; -1: no dashboard)")
    parser.set_defaults(func=run)
