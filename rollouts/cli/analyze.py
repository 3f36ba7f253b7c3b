"""`rollouts analyze TEMPLATE.yaml`: measure every metric of an AnalysisTemplate once, now or at a time.

Rules:
- Input problems (missing file, bad YAML, wrong kind, schema errors with field paths,
  missing or unknown args, bad --at) exit 2 with one message naming the file, the field
  and the fix; they never show a traceback and never reach a metric backend.
- The template becomes a run spec through `analysis.build` (args merged, rules checked),
  args are substituted with `analysis.args`, each metric is measured ONCE by the default
  providers at `--at` (default: now), and judged by `analysis.expr.evaluate_condition`.
  A provider failure is that metric's Error, not a crash.
- `--prometheus URL` (else $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS) is the address of prometheus
  metrics that set none; a metric's own `address` wins, as in Argo. `--prometheus-override URL`
  sends every prometheus metric there (a template written for a cluster, tried locally).
- The run phase is the worst phase of the metrics that are not dry-run (PHASE_SEVERITY).
  Exit 0 when it is Successful, 1 otherwise.
- `--json` prints {"phase", "metrics": [{"name", "query", "value", "phase", "message"}]};
  values are JSON (NaN and infinities as the strings "NaN", "+Inf", "-Inf").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from analysis import args as arguments
from analysis import build
from analysis import measure as measuring
from analysis.assess import Unmeasured
from analysis.expr import evaluate_condition, format_value
from analysis.model import PHASE_SEVERITY, AnalysisPhase, AnalysisTemplate, Argument, Metric
from analysis.providers import Providers
from rollouts.cli import PROMETHEUS_HELP, CommandError, prometheus_default, prometheus_url

KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
_ARG = re.compile(r"^([A-Za-z0-9_.-]+)=(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Outcome:
    name: str
    query: str
    value: object
    phase: AnalysisPhase
    message: str
    dry_run: bool


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="measure an AnalysisTemplate's metrics once and judge them",
        description="Take one measurement of every metric in an AnalysisTemplate and judge it with its "
        "successCondition/failureCondition. Exit 0 if the run is Successful, 1 if not, 2 on bad input.",
    )
    parser.add_argument("template", metavar="TEMPLATE.yaml", help="file holding an AnalysisTemplate")
    parser.add_argument("--prometheus", metavar="URL", type=prometheus_url, help=PROMETHEUS_HELP)
    parser.add_argument("--prometheus-override", metavar="URL", type=prometheus_url,
                        help="use this Prometheus for every prometheus metric, whatever its address (to try a "
                        "template written for a cluster against another server)")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="template argument")
    parser.add_argument("--at", metavar="TIME", help="evaluation time: RFC 3339 or epoch seconds (default: now)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, providers: Providers | None = None) -> int:
    at = parse_time(args.at) if args.at else datetime.now(UTC)
    template = load_template(Path(args.template))
    values = parse_args(args.arg)
    metrics, dry_run = prepare(template, values, where=args.template)
    from analysis.providers.registry import default_providers  # lazily: HTTP clients, only to measure

    providers = providers or default_providers(
        prometheus_default=prometheus_default(args.prometheus, os.environ),
        prometheus_address=getattr(args, "prometheus_override", None))
    outcomes = [measure(metric, providers, at=at, dry_run=metric.name in dry_run) for metric in metrics]
    phase = run_phase(outcomes)
    if args.json:
        print(json.dumps({"phase": str(phase), "metrics": [_json_outcome(o) for o in outcomes]}, indent=2))
    else:
        _print_table(template, outcomes, phase, at)
    return 0 if phase is AnalysisPhase.SUCCESSFUL else 1


# ---------------------------------------------------------------- input


def parse_time(text: str) -> datetime:
    """RFC 3339 (`2024-01-01T00:30:00Z`, with an offset) or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--at {text!r} is not a time; use RFC 3339 like 2024-01-01T00:30:00Z or epoch seconds", 2
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"--at {text!r} has no time zone; add Z (UTC) or an offset like +02:00", 2)
    return moment


def load_template(path: Path) -> AnalysisTemplate:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file", 2) from None
    except OSError as err:
        raise CommandError(f"{path}: cannot read: {err.strerror}", 2) from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise CommandError(f"{path}: not valid YAML{where}: {problem}", 2) from None
    found = [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") in KINDS]
    if len(found) != 1:
        kinds = [doc.get("kind") if isinstance(doc, dict) else type(doc).__name__ for doc in documents]
        got = "no documents" if not kinds else "kinds " + ", ".join(repr(k) for k in kinds)
        raise CommandError(f"{path}: expected exactly one AnalysisTemplate or ClusterAnalysisTemplate, found {got}", 2)
    try:
        return AnalysisTemplate.load(found[0])
    except ValidationError as err:
        problems = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in err.errors(include_url=False))
        raise CommandError(f"{path}: {found[0]['kind']} is invalid: {problems}", 2) from None


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_args(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        match = _ARG.match(item)
        if match is None:
            raise CommandError(f"--arg {item!r}: write it as NAME=VALUE, e.g. --arg service-name=web-canary", 2)
        values[match.group(1)] = match.group(2)
    return values


def prepare(template: AnalysisTemplate, values: dict[str, str], *, where: str) -> tuple[list[Metric], set[str]]:
    """Metrics with their args substituted, and the names of the dry-run metrics."""
    declared = {arg.name: arg for arg in template.spec.args or []}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise CommandError(f"{where}: the template declares no arg {unknown[0]!r} (declared: {names})", 2)
    for name, arg in declared.items():
        if name not in values and arg.value is None and arg.value_from is None:
            raise CommandError(f"{where}: arg {name!r} is required; pass it with --arg {name}=VALUE", 2)
    given = [Argument(name=name, value=value) for name, value in values.items()]
    try:
        run_doc = build.build_run(name=template.metadata.name or "analyze", namespace="default",
                                  templates=[template], args=given)
        rules = build.metric_rules(run_doc.spec)
        resolved = arguments.resolve_values(run_doc.spec.args, secret_lookup=None)
        metrics = [arguments.substitute(metric, resolved.values) for metric in run_doc.spec.metrics]
    except arguments.ArgError as err:
        raise CommandError(f"{where}: {err} (with rollouts analyze, pass args as --arg NAME=VALUE)", 2) from None
    except build.SpecError as err:
        raise CommandError(f"{where}: {err}", 2) from None
    return metrics, {rule.name for rule in rules if rule.dry_run}


# ---------------------------------------------------------------- measuring


def measure(metric: Metric, providers: Providers, *, at: datetime, dry_run: bool) -> Outcome:
    query = describe_query(metric)
    outcome = measuring.observe(providers, metric, at=at)
    if isinstance(outcome, Unmeasured):
        return Outcome(metric.name, query, None, AnalysisPhase.ERROR, outcome.message, dry_run)
    verdict = evaluate_condition(metric.success_condition, metric.failure_condition, outcome.value)
    query = outcome.metadata.get("ResolvedPrometheusQuery", query)
    return Outcome(metric.name, query, outcome.value, AnalysisPhase(str(verdict.phase)), verdict.message, dry_run)


def describe_query(metric: Metric) -> str:
    provider = metric.provider
    if provider.prometheus is not None:
        return provider.prometheus.query
    if provider.web is not None:
        return f"{provider.web.method or 'GET'} {provider.web.url}"
    return ", ".join(provider.kinds())


def run_phase(outcomes: list[Outcome]) -> AnalysisPhase:
    counted = [o.phase for o in outcomes if not o.dry_run]
    return max(counted, key=PHASE_SEVERITY.__getitem__, default=AnalysisPhase.SUCCESSFUL)


# ---------------------------------------------------------------- output


def _json_value(value: object) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _json_outcome(outcome: Outcome) -> dict[str, Any]:
    shown = {"name": outcome.name, "query": outcome.query, "value": _json_value(outcome.value),
             "phase": str(outcome.phase), "message": outcome.message}
    return shown | ({"dryRun": True} if outcome.dry_run else {})


_STYLE = {AnalysisPhase.SUCCESSFUL: "green", AnalysisPhase.FAILED: "red", AnalysisPhase.ERROR: "red",
          AnalysisPhase.INCONCLUSIVE: "yellow"}


def _print_table(template: AnalysisTemplate, outcomes: list[Outcome], phase: AnalysisPhase, at: datetime) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    table = Table(title=f"{template.kind} {template.metadata.name} at {stamp}", title_justify="left")
    for column in ("metric", "query", "value", "phase", "message"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        name = o.name + (" (dry run)" if o.dry_run else "")
        value = "" if o.phase is AnalysisPhase.ERROR and o.value is None else format_value(o.value)
        table.add_row(Text(name), Text(o.query), Text(value), Text(str(o.phase), style=_STYLE.get(o.phase, "")),
                      Text(o.message))
    console.print(table)
    console.print(Text.assemble("Phase: ", Text(str(phase), style=_STYLE.get(phase, ""))))
