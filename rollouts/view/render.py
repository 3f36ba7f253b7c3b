"""Rich rendering of the view-model (`rollouts.view`): the `get rollout` screen and the
`list rollouts` table.

Rules:
- Takes view-model values only; never reads the cluster or a clock. Colour is decoration:
  every fact is also in the text, so `to_text(..., color=False)` is what tests check.
- Layout follows `kubectl argo rollouts get rollout`: a header block (Name, Namespace,
  Status, Message, Strategy, Step, SetWeight, ActualWeight, Images, Replicas), then the
  step list with the current step marked, then the tree
  `NAME KIND STATUS AGE INFO` (⟳ Rollout → # revision:N → ⧉ ReplicaSet / α AnalysisRun →
  metrics) drawn with Argo's `├──` / `└──` prefixes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollouts.view import AnalysisRunRow, ListRow, ReplicaSetRow, RolloutView, StepState

STATUS_STYLE = {
    "Healthy": "green", "Successful": "green", "Progressing": "cyan", "Running": "cyan",
    "Paused": "yellow", "Inconclusive": "yellow", "Pending": "cyan", "Degraded": "red",
    "Failed": "red", "Error": "red", "ReplicaFailure": "red", "InvalidSpec": "red",
    "ScaledDown": "dim",
}
TAG_STYLE = {"stable": "green", "canary": "yellow", "active": "green", "preview": "blue"}
STEP_MARK = {StepState.DONE: ("✔", "green"), StepState.CURRENT: ("▶", "bold yellow"), StepState.PENDING: ("○", "dim")}

ICON_ROLLOUT, ICON_REVISION, ICON_REPLICASET, ICON_ANALYSIS, ICON_METRIC = "⟳", "#", "⧉", "α", "◇"


def _status(icon: str, status: str) -> Text:
    return Text(f"{icon} {status}", style=STATUS_STYLE.get(status, ""))


def header(view: RolloutView) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(min_width=15, no_wrap=True)
    grid.add_column()
    rows: list[tuple[str, Text | str]] = [
        ("Name:", view.name),
        ("Namespace:", view.namespace),
        ("Status:", _status(view.icon, view.status)),
    ]
    if view.message:
        rows.append(("Message:", view.message))
    rows.append(("Strategy:", view.strategy))
    if view.strategy == "Canary":
        rows += [
            ("  Step:", view.step),
            ("  SetWeight:", "" if view.set_weight is None else str(view.set_weight)),
            ("  ActualWeight:", "" if view.actual_weight is None else str(view.actual_weight)),
        ]
    for i, image in enumerate(view.images):
        text = Text(image.image)
        if image.tags:
            text.append(" (")
            for j, tag in enumerate(image.tags):
                text.append((", " if j else "") + tag, style=TAG_STYLE.get(tag, ""))
            text.append(")")
        rows.append(("Images:" if i == 0 else "", text))
    replicas = view.replicas
    rows += [
        ("Replicas:", ""),
        ("  Desired:", str(replicas.desired)),
        ("  Current:", str(replicas.current)),
        ("  Updated:", str(replicas.updated)),
        ("  Ready:", str(replicas.ready)),
        ("  Available:", str(replicas.available)),
    ]
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def steps(view: RolloutView) -> Table | None:
    if not view.steps:
        return None
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for step in view.steps:
        mark, style = STEP_MARK[step.state]
        marker = Text(f"  {mark}", style=style)
        text = Text(step.text, style="bold" if step.state is StepState.CURRENT else "")
        if step.state is StepState.CURRENT:
            text.append("   ← current", style="yellow")
        grid.add_row(marker, str(step.index), text)
    return grid


def hooks(view: RolloutView) -> Table | None:
    """The lifecycle webhooks: last answer, when asked, latency, the decision, the error."""
    if not view.hooks:
        return None
    grid = Table.grid(padding=(0, 2))
    for _ in range(7):
        grid.add_column(no_wrap=True)
    grid.add_column()
    for row in view.hooks:
        style = "green" if row.ok else "yellow" if row.answer in ("waiting", "") else "red"
        grid.add_row(Text(f"  {row.icon}", style=style), row.name, row.type, Text(row.answer or "-", style=style),
                     f"{row.asked} ago" if row.asked else "", row.latency, row.point,
                     Text(row.error[:100], style="dim"))
    return grid


def _prefixes(is_last: bool, parent: str) -> tuple[str, str]:
    """Argo's getPrefixes: this row's prefix and its children's."""
    return (parent + "└──", parent + "   ") if is_last else (parent + "├──", parent + "│  ")


def tree(view: RolloutView) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for column in ("NAME", "KIND", "STATUS", "AGE"):
        table.add_column(column, no_wrap=True)
    table.add_column("INFO", overflow="fold")
    table.add_row(f"{ICON_ROLLOUT} {view.name}", "Rollout", _status(view.icon, view.status), view.age, "")
    for i, revision in enumerate(view.revisions):
        prefix, sub = _prefixes(i == len(view.revisions) - 1, "")
        table.add_row(f"{prefix}{ICON_REVISION} revision:{revision.revision}", "", "", "", "")
        children: list[ReplicaSetRow | AnalysisRunRow] = [*revision.replica_sets, *revision.analysis_runs]
        for j, child in enumerate(children):
            child_prefix, child_sub = _prefixes(j == len(children) - 1, sub)
            if isinstance(child, ReplicaSetRow):
                _replica_set(table, child, child_prefix)
            else:
                _analysis_run(table, child, child_prefix, child_sub)
    return table


def _replica_set(table: Table, rs: ReplicaSetRow, prefix: str) -> None:
    style = "green" if rs.stable else "yellow" if rs.canary else ""
    name = Text(prefix + f"{ICON_REPLICASET} ")
    name.append(rs.name, style=style)
    table.add_row(name, "ReplicaSet", _status(rs.icon, rs.status), rs.age, rs.info)


def _analysis_run(table: Table, run: AnalysisRunRow, prefix: str, sub: str) -> None:
    name = Text(prefix + f"{ICON_ANALYSIS} ")
    name.append(run.name, style=STATUS_STYLE.get(run.phase, ""))
    table.add_row(name, "AnalysisRun", _status(run.icon, run.phase), run.age, run.counts.text)
    for k, metric in enumerate(run.metrics):
        metric_prefix, _ = _prefixes(k == len(run.metrics) - 1, sub)
        info = metric.info
        if metric.message and metric.phase in ("Failed", "Error", "Inconclusive"):
            info = f"{info}  {metric.message}".strip()
        table.add_row(f"{metric_prefix}{ICON_METRIC} {metric.name}", "Metric",
                      _status(metric.icon, metric.phase), "", info)


def rollout(view: RolloutView) -> Group:
    """The whole `get rollout` screen."""
    parts: list[RenderableType] = [header(view), Text("")]
    step_list = steps(view)
    if step_list is not None:
        parts += [Text("Steps:"), step_list, Text("")]
    hook_list = hooks(view)
    if hook_list is not None:
        parts += [Text("Webhooks:"), hook_list, Text("")]
    parts.append(tree(view))
    return Group(*parts)


LIST_COLUMNS = ("NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED", "UP-TO-DATE", "AVAILABLE")


def rollout_list(rows: Sequence[ListRow], *, all_namespaces: bool) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    columns: Iterable[str] = (("NAMESPACE",) if all_namespaces else ()) + LIST_COLUMNS
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        status = Text(row.status, style=STATUS_STYLE.get(row.status, ""))
        cells: list[str | Text] = [row.name, row.strategy, status, row.step, row.set_weight, row.ready,
                                   str(row.desired), str(row.up_to_date), str(row.available)]
        table.add_row(*([row.namespace] if all_namespaces else []), *cells)
    return table


def to_text(renderable: RenderableType, *, width: int = 120, color: bool = False) -> str:
    """Render to a string (tests, and non-TTY output)."""
    console = Console(file=io.StringIO(), width=width, color_system="standard" if color else None,
                      force_terminal=color, record=False, highlight=False)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return "\n".join(line.rstrip() for line in console.file.getvalue().split("\n"))
