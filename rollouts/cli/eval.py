"""`rollouts eval`: try a successCondition/failureCondition against a result, offline.

- `rollouts eval EXPR --result JSON` prints `true` or `false` (exit 0), or the error
  (exit 1): a syntax error is shown with a caret under its column.
- `rollouts eval --success EXPR [--failure EXPR] --result JSON` prints the measurement
  phase Argo would record and why (exit 0; exit 1 when the phase is Error).
- `--json` prints `{"value": ..., "message": ...}` or `{"phase": ..., "message": ...}`.
- `--result` takes JSON (NaN and Infinity allowed, as Prometheus returns them), `@FILE`,
  or `-` for standard input. Bad JSON or usage exits 2: that includes JSON nested too
  deeply for the parser, a number with more digits than Python converts, and a file or
  standard input that is not UTF-8.
- Never a traceback: text that a stream cannot encode (a lone surrogate in EXPR, in the
  result or in a path) is printed with backslash escapes, and an unexpected failure of
  the evaluator is reported like an evaluation error (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from analysis.expr import ExprError, ExprSyntaxError, MeasurementPhase, eval_condition, evaluate_condition
from rollouts.cli import CommandError

EXAMPLES = """examples:
  rollouts eval 'result[0] >= 0.95' --result '[0.97]'
  rollouts eval --success 'result[0] >= 0.95' --failure 'result[0] < 0.9' --result '[0.93]'
  rollouts eval 'all(result, {# < 0.05})' --result @measurement.json --json
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a condition against a metric result",
        description="Evaluate a successCondition/failureCondition (expr-lang, as Argo Rollouts) against a "
        "result. With EXPR: print true/false. With --success/--failure: print the measurement phase. "
        "Exit 0 for a value, 1 for an evaluation error (or phase Error), 2 for bad JSON or usage.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("expr", nargs="?", metavar="EXPR", help="a condition, e.g. 'result[0] >= 0.95'")
    parser.add_argument("--success", metavar="EXPR", help="successCondition (phase mode)")
    parser.add_argument("--failure", metavar="EXPR", help="failureCondition (phase mode)")
    parser.add_argument("--result", required=True, metavar="JSON",
                        help="the metric result as JSON, @FILE, or - for stdin")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    phase_mode = args.success is not None or args.failure is not None
    if phase_mode and args.expr is not None:
        raise CommandError("give either EXPR or --success/--failure, not both", code=2)
    if not phase_mode and args.expr is None:
        raise CommandError("give a condition: EXPR, or --success/--failure EXPR", code=2)
    result = load_result(args.result)
    if phase_mode:
        return _phase(args.success, args.failure, result, as_json=args.json)
    return _value(args.expr, result, as_json=args.json)


def load_result(text: str) -> object:
    """The --result value: JSON text, @FILE or - (stdin)."""
    source = "--result"
    try:
        if text == "-":
            text, source = sys.stdin.read(), "standard input"
        elif text.startswith("@"):
            path = Path(text[1:])
            source = printable(str(path))
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                message = f"--result {printable(text)}: cannot read {source}: {err.strerror}"
                raise CommandError(message, code=2) from None
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CommandError(
            f"{source} is not JSON: {err.msg} at column {err.colno}; "
            "write it like --result '[0.97]' or --result '{\"count\": 10}'",
            code=2,
        ) from None
    except UnicodeDecodeError:
        raise CommandError(f"{source} is not UTF-8 text", code=2) from None
    except RecursionError:
        raise CommandError(f"{source} nests too deeply to read as JSON", code=2) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise CommandError(f"{source} cannot be read as JSON: {printable(str(err))}", code=2) from None


def printable(text: str, stream: TextIO | None = None) -> str:
    """`text` as `stream` (or UTF-8) can encode it: anything else, such as a lone
    surrogate, becomes a backslash escape."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an encoding Python does not know: keep to ASCII
        return text.encode("ascii", "backslashreplace").decode("ascii")


def say(text: str, stream: TextIO) -> None:
    print(printable(text, stream), file=stream)


def _value(text: str, result: object, *, as_json: bool) -> int:
    try:
        value = eval_condition(text, result)
    except Exception as err:  # noqa: BLE001 - the evaluator's own errors, and anything it let escape
        message = str(err) if isinstance(err, ExprError) else f"internal error: {type(err).__name__}: {err}"
        if as_json:
            say(json.dumps({"value": None, "message": message}), sys.stdout)
        else:
            say(f"rollouts eval: {message}", sys.stderr)
            if isinstance(err, ExprSyntaxError):
                say(caret(text, err.position), sys.stderr)
        return 1
    if as_json:
        say(json.dumps({"value": value, "message": None}), sys.stdout)
    else:
        say("true" if value else "false", sys.stdout)
    return 0


def _phase(success: str | None, failure: str | None, result: object, *, as_json: bool) -> int:
    verdict = evaluate_condition(success, failure, result)
    if as_json:
        say(json.dumps({"phase": str(verdict.phase), "message": verdict.message}), sys.stdout)
    else:
        say(f"{verdict.phase}: {verdict.message}", sys.stdout)
    return 1 if verdict.phase is MeasurementPhase.ERROR else 0


def caret(text: str, position: int, width: int = 120) -> str:
    """The line of `text` holding `position`, indented, with a caret under it; a line
    longer than `width` is cut to the part around the caret."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start : end if end >= 0 else len(text)]
    column = position - start
    if len(line) > width:
        first = max(0, column - width // 2)
        head = "…" if first else ""
        line = head + line[first : first + width] + ("…" if first + width < len(line) else "")
        column += len(head) - first
    column = len(printable(line[:column]))  # under the same character once escaped
    return f"  {printable(line)}\n  {' ' * column}^"
