"""The `rollouts` command line.

Every module in this package that defines ``register(subparsers)`` contributes its
sub-commands; ``register`` adds parsers whose ``func`` default takes the parsed
namespace and returns the exit code. Usage errors exit 2; a command's own failure
exits 1 with a one-line message on stderr, never a traceback.

Start-up stays fast by importing only the chosen command's module: `COMMANDS` names the
module of each top-level command, and when the first argument is one of them only that
module registers (its parser is the one `--help` and every usage error come from). Anything
else (`--help`, no command, a mistyped one) registers every module, in module-name order, so
the listing and the "invalid choice" message are argparse's own. What a command needs only
on some paths (the kubernetes client, rich, the pydantic models behind the duration parser)
is imported where it is used, so modules that import each other (`status` and `list` use
`get`) stay cheap.
`tests/cli/test_imports.py` checks the table against what the modules register, and that
`eval` and `lint` never load the kubernetes client, requests, rich and the like.

Layer: the top. May import every rollouts package and analysis; a command imports only
what it needs, lazily, so start-up stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def prometheus_url(text: str) -> str:
    """An argparse type for --prometheus: an http(s) URL with a host (analysis.provider_checks'
    rule for a metric's address), so `--prometheus file:///etc/passwd` is a usage error at start."""
    from analysis.provider_checks import prometheus_address_problem  # lazily: most commands never need it

    problem = prometheus_address_problem(text.strip() or "-")  # empty is not "unset" here
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem.message}; {problem.fix}")
    return text.strip().rstrip("/")


PROMETHEUS_ENV = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"  # Argo's variable, same meaning
PROMETHEUS_HELP = (f"Prometheus for metrics whose provider.prometheus.address is unset (a metric's own address "
                   f"always wins); default ${PROMETHEUS_ENV}, as in Argo Rollouts; --prometheus wins over it")


def prometheus_default(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The address of prometheus metrics that name none: --prometheus, else $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS
    (empty = unset, as Argo), else None. An env value that is not an http(s) URL is a usage error (exit 2)."""
    if flag:
        return flag
    text = environ.get(PROMETHEUS_ENV, "").strip()
    if not text:
        return None
    try:
        return prometheus_url(text)
    except argparse.ArgumentTypeError as err:
        raise CommandError(f"{PROMETHEUS_ENV}: {err}", 2) from None


# Top-level command -> the module of this package whose register() adds it.
COMMANDS: Mapping[str, str] = {
    "promote": "actions", "abort": "actions", "retry": "actions", "pause": "actions", "resume": "actions",
    "restart": "actions", "set": "actions",
    "analyze": "analyze",
    "backtest": "backtest",
    "controller": "controller",
    "crds": "crds",
    "dashboard": "dashboard",
    "demo": "demo",
    "eval": "eval",
    "get": "get",
    "lint": "lint",
    "list": "list",
    "status": "status",
}


def command_modules(argv: Sequence[str] | None = None) -> list[str]:
    """The modules to register for `argv`: the chosen command's alone when the first argument
    names one in `COMMANDS`, else every module of the package in name order."""
    if argv and argv[0] in COMMANDS:
        return [COMMANDS[argv[0]]]
    import pkgutil  # only for the full listing

    return sorted(info.name for info in pkgutil.iter_modules(__path__))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (None: every command, as `rollouts --help` shows them)."""
    parser = argparse.ArgumentParser(
        prog="rollouts",
        description="Progressive delivery for Kubernetes: canary steps, Istio weights, analysis.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules(argv):
        module = importlib.import_module(f"{__name__}.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CommandError as err:
        print(f"rollouts {args.command}: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
