"""`rollouts backtest TEMPLATE.yaml --from T --to T`: replay an AnalysisTemplate's run on metric history.

"Would this template have caught last Tuesday's bad release, and would it have failed a good one?"

Rules:
- The template (AnalysisTemplate or ClusterAnalysisTemplate, one document) becomes a run
  spec through `analysis.build` (args merged, the rules of analysis.checks applied) and is
  replayed by `analysis.backtest.replay`: the run's own state machine on a stepped clock
  from --from, each measurement taken at its time (Prometheus `time=`), until the verdict
  or --to. The output is the measurement timeline (time, metric, value, phase, message)
  and the verdict with the time it would have been reached; a run still going at --to says
  so, with the time of the next measurement.
- `--prometheus URL` is the Prometheus holding the history: every prometheus metric is
  asked there, whatever its `address` (templates name the cluster's server, which a
  backtest does not reach). Without it, metrics keep their address (else
  $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS).
- Times are RFC 3339 (`2024-03-05T10:00:00Z`), epoch seconds, `now`, or relative to now
  (`now-2h`, `now-7d`: Go durations plus `d` for days). --to defaults to now; --from must
  be before --to, and --to not in the future.
- Bad input exits 2 with one line naming the file or flag, the field and the fix, and
  never reaches a backend: a bad time, a missing or unknown arg, a template that needs a
  cluster (an arg from valueFrom: a secret, a fieldRef, a pod hash; nested `templates`),
  a provider this controller does not run, a spec that breaks a rule.
- A web metric has no history: each replayed measurement asks the endpoint as it is now;
  a warning on stderr says so.
- Exit 0 when the replayed run is Successful, 1 otherwise (Failed, Error, Inconclusive, or
  no verdict by --to). `--json` prints {template, from, to, phase, decidedAt, nextMeasurement,
  message, measurements: [{time, metric, value, phase, message, dryRun?, held?}], metrics:
  [{name, phase, count, successful, failed, inconclusive, error}]}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analysis import args as arguments
from analysis import backtest, build
from analysis.model import AnalysisPhase, AnalysisRun, AnalysisTemplate, Argument, DurationError, parse_duration
from analysis.providers import Providers, UnsupportedProvider
from rollouts.cli import PROMETHEUS_ENV, CommandError, prometheus_default, prometheus_url
from rollouts.cli.analyze import load_template, parse_args

_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*(?:(\d+)d)?(.*))?$")
TIME_HELP = "RFC 3339 like 2024-03-05T10:00:00Z, epoch seconds, now, or relative like now-2h or now-7d"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="replay an AnalysisTemplate on metric history and print when it would have decided",
        description="Replay an AnalysisTemplate's full AnalysisRun semantics (initialDelay, interval, count, "
        "limits, dryRun) on Prometheus history with a stepped clock from --from to --to, querying at each "
        "measurement's time. Exit 0 if the run would have been Successful, 1 if not, 2 on bad input.",
    )
    parser.add_argument("template", metavar="TEMPLATE.yaml", help="file holding an AnalysisTemplate")
    parser.add_argument("--prometheus", metavar="URL", type=prometheus_url,
                        help="the Prometheus holding the history: every prometheus metric is asked there, "
                        f"whatever its address (default: each metric's address, else ${PROMETHEUS_ENV})")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="template argument")
    parser.add_argument("--from", dest="start", required=True, metavar="TIME", help=f"replay start: {TIME_HELP}")
    parser.add_argument("--to", dest="end", default="now", metavar="TIME",
                        help=f"replay end (default now): {TIME_HELP}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (for CI pipelines)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, providers: Providers | None = None, now: datetime | None = None) -> int:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start, end = parse_time(args.start, "--from", now=now), parse_time(args.end, "--to", now=now)
    if start >= end:
        raise CommandError(f"--from {args.start!r} is not before --to {args.end!r}; give a window that moves "
                           "forward", 2)
    if end > now:
        raise CommandError(f"--to {args.end!r} is in the future ({_stamp(end)}); history ends now: use --to now", 2)
    template = load_template(Path(args.template))
    analysis_run = prepare(template, parse_args(args.arg), where=args.template)
    if providers is None:
        from analysis.providers.registry import default_providers  # lazily: HTTP clients, only to measure

        providers = default_providers(prometheus_default=prometheus_default(None, os.environ),
                                      prometheus_address=args.prometheus)
    _check_providers(analysis_run, providers, where=args.template)
    try:
        result = backtest.replay(analysis_run, providers, start=start, end=end)
    except backtest.ReplayTooLong as err:
        raise CommandError(f"{args.template}: {err}", 2) from None
    if args.json:
        print(json.dumps(as_json(template, result), indent=2))
    else:
        print(as_text(template, result))
    return 0 if result.phase is AnalysisPhase.SUCCESSFUL else 1


# ---------------------------------------------------------------- input


def parse_time(text: str, flag: str, *, now: datetime) -> datetime:
    """An RFC 3339 time, epoch seconds, `now`, or `now-2h` / `now-7d` / `now-1d12h`, in UTC whole seconds."""
    written = text.strip()
    relative = _RELATIVE.match(written)
    if written.startswith("now") and relative is None:
        raise CommandError(f"{flag} {text!r} is not a time; use {TIME_HELP}", 2)
    if relative:
        return _relative(relative, text, flag, now=now)
    try:
        return datetime.fromtimestamp(float(written), UTC).replace(microsecond=0)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        raise CommandError(f"{flag} {text!r} is not a time; use {TIME_HELP}", 2) from None
    if moment.tzinfo is None:
        raise CommandError(f"{flag} {text!r} has no time zone; add Z (UTC) or an offset like +02:00", 2)
    return moment.astimezone(UTC).replace(microsecond=0)


def _relative(match: re.Match[str], text: str, flag: str, *, now: datetime) -> datetime:
    sign, days, rest = match.groups()
    if sign is None:
        return now
    rest = rest.strip()
    if not days and not rest:
        raise CommandError(f"{flag} {text!r} is not a time; use {TIME_HELP}", 2)
    try:
        seconds = int(days or 0) * 86400 + (parse_duration(rest) if rest else 0)
    except DurationError:
        raise CommandError(f"{flag} {text!r}: {rest!r} is not a duration; use {TIME_HELP}", 2) from None
    return now + timedelta(seconds=-seconds if sign == "-" else seconds)


def prepare(template: AnalysisTemplate, values: dict[str, str], *, where: str) -> AnalysisRun:
    """The run to replay: args from --arg or their defaults; anything that needs a cluster is refused."""
    if template.spec.templates:
        raise CommandError(f"{where}: spec.templates references other templates, which a backtest cannot fetch "
                           "from a cluster; copy their metrics into this template", 2)
    declared = {arg.name: (index, arg) for index, arg in enumerate(template.spec.args or [])}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise CommandError(f"{where}: the template declares no arg {unknown[0]!r} (declared: {names}); "
                           f"pass only declared args with --arg", 2)
    for name, (index, arg) in declared.items():
        if name in values:
            continue
        if arg.value_from is not None:
            source = next(key for key, set_ in (("secretKeyRef", arg.value_from.secret_key_ref),
                                                ("fieldRef", arg.value_from.field_ref),
                                                ("podTemplateHashValue", arg.value_from.pod_template_hash_value))
                          if set_ is not None)
            raise CommandError(f"{where}: spec.args[{index}].valueFrom.{source}: arg {name!r} takes its value from "
                               f"a cluster, which a backtest does not read; pass it with --arg {name}=VALUE", 2)
        if arg.value is None:
            raise CommandError(f"{where}: spec.args[{index}]: arg {name!r} is required; "
                               f"pass it with --arg {name}=VALUE", 2)
    given = [Argument(name=name, value=value) for name, value in values.items()]
    try:
        return build.build_run(name=template.metadata.name or "backtest", namespace="default", templates=[template],
                               args=given)
    except arguments.ArgError as err:
        raise CommandError(f"{where}: {err} (with rollouts backtest, pass args as --arg NAME=VALUE)", 2) from None
    except build.SpecError as err:
        raise CommandError(f"{where}: {err}", 2) from None


def _check_providers(run: AnalysisRun, providers: Providers, *, where: str) -> None:
    for index, metric in enumerate(run.spec.metrics):
        try:
            providers.for_metric(metric)
        except UnsupportedProvider as err:
            raise CommandError(f"{where}: spec.metrics[{index}].provider: {err}; a backtest runs the providers "
                               "this controller runs", 2) from None
        if metric.provider.web is not None:
            print(f"rollouts backtest: warning: metric {metric.name!r} uses the web provider, which has no "
                  "history: each replayed measurement asks it as it answers now", file=sys.stderr)


# ---------------------------------------------------------------- output


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _after(result: backtest.Replay, moment: datetime) -> str:
    seconds = int((moment - result.start).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or hours else "") + f"{secs}s"
    return f"{text} after --from"


def verdict_line(result: backtest.Replay) -> str:
    if result.decided_at is None:
        due = f"; next measurement due at {_stamp(result.next_due)}" if result.next_due else ""
        why = f" ({result.message})" if result.message else ""
        return f"Verdict: none by --to: still Running at {_stamp(result.end)}{why}{due}"
    why = f": {result.message}" if result.message else ""
    return f"Verdict: {result.phase} at {_stamp(result.decided_at)} ({_after(result, result.decided_at)}){why}"


def as_text(template: AnalysisTemplate, result: backtest.Replay) -> str:
    rows = [("TIME", "METRIC", "VALUE", "PHASE", "MESSAGE")]
    for taken in result.timeline:
        m = taken.measurement
        name = taken.metric + (" (dry run)" if taken.dry_run else "")
        phase = str(m.phase) + (" (held)" if taken.held else "")
        rows.append((_stamp(m.started_at or result.start), name, m.value or "", phase, m.message or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"Backtest of {template.kind} {template.metadata.name} from {_stamp(result.start)} "
             f"to {_stamp(result.end)}"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
              for row in rows]
    if len(rows) == 1:
        lines.append("(no measurement was due in the window)")
    lines.append(verdict_line(result))
    return "\n".join(line.rstrip() for line in lines)


def as_json(template: AnalysisTemplate, result: backtest.Replay) -> dict[str, Any]:
    measurements = []
    for taken in result.timeline:
        m = taken.measurement
        shown: dict[str, Any] = {"time": _stamp(m.started_at or result.start), "metric": taken.metric,
                                 "value": m.value, "phase": str(m.phase), "message": m.message or ""}
        shown |= ({"dryRun": True} if taken.dry_run else {}) | ({"held": True} if taken.held else {})
        measurements.append(shown)
    metrics = [{"name": r.name, "phase": str(r.phase), "count": r.count or 0, "successful": r.successful or 0,
                "failed": r.failed or 0, "inconclusive": r.inconclusive or 0, "error": r.error or 0}
               | ({"dryRun": True} if r.dry_run else {})
               for r in result.status.metric_results or []]
    return {
        "template": {"kind": template.kind, "name": template.metadata.name},
        "from": _stamp(result.start), "to": _stamp(result.end),
        "phase": str(result.phase),
        "decidedAt": _stamp(result.decided_at) if result.decided_at else None,
        "nextMeasurement": _stamp(result.next_due) if result.next_due else None,
        "message": result.message,
        "measurements": measurements,
        "metrics": metrics,
    }
