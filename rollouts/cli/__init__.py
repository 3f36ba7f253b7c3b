"""The `rollouts` command line.

Every module in this package that defines ``register(subparsers)`` contributes its
sub-commands; ``register`` adds parsers whose ``func`` default takes the parsed
namespace and returns the exit code. Usage errors exit 2; a command's own failure
exits 1 with a one-line message on stderr, never a traceback.

Start-up stays fast by importing only the chosen command's module: `COMMANDS` names the
module of each top-level command, and when the first argument is one of them only that
module registers (its parser is the one the command's own `--help` and every usage error
come from). Anything else (`--help`, no command, a mistyped one) imports no command module:
the listing is built from `SUMMARIES`, each command's help line, so the listing and the
"invalid choice" message are argparse's own. What a command needs only on some paths (the
kubernetes client, rich, the pydantic models behind the duration parser) is imported where
it is used, so modules that import each other (`status` and `list` use `get`) stay cheap.
The offline commands (`OFFLINE`: lint, eval) run with pydantic's plugins off
(`without_pydantic_plugins`): no plugin observes their validation, and pydantic's plugin
loader, which imports importlib.metadata and email to look plugins up, is never imported.
`tests/cli/test_imports.py` checks both tables against what the modules register, and that
`--help` imports no command module and `eval` and `lint` never load the kubernetes client,
requests, rich, importlib.metadata and the like.

Layer: the top. May import every rollouts package and analysis; a command imports only
what it needs, lazily, so start-up stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types
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


# Top-level command -> its line in `rollouts --help` (the help its module's register() gives it).
SUMMARIES: Mapping[str, str] = {
    "promote": "Promote a paused rollout to its next step (or all the way with --full)",
    "abort": "Abort a rollout: traffic back to stable, canary scaled down",
    "retry": "Retry an aborted rollout from step 0 (also: retry rollout NAME)",
    "pause": "Pause a rollout (spec.paused)",
    "resume": "Resume a paused rollout (clears spec.paused and pause conditions)",
    "restart": "Restart the pods of a rollout (spec.restartAt)",
    "set": "Set fields of a rollout (image)",
    "analyze": "measure an AnalysisTemplate's metrics once and judge them",
    "backtest": "replay an AnalysisTemplate on metric history and print when it would have decided",
    "controller": "Run the controller (Rollouts and AnalysisRuns) until stopped",
    "crds": "write the CRDs generated from the models",
    "dashboard": "Serve the live web dashboard: every rollout, analysis charts, actions",
    "demo": "Run a whole canary on this machine: v2 promoted, v3 aborted by analysis, v4 by the judge",
    "eval": "evaluate a condition against a metric result",
    "get": "Show a rollout: status, steps, weights, ReplicaSets, analysis",
    "lint": "validate Rollout, AnalysisTemplate and related manifests offline",
    "list": "List rollouts",
    "status": "Wait until a rollout is Healthy or --until paused|step=N|completed (exit 0), Degraded (1), "
              "the timeout passes (2) or the target cannot be reached (3)",
}

OFFLINE = frozenset({"lint", "eval"})  # commands that read files and arguments only
PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"
PLUGINS_ALL_OFF = ("__all__", "1", "true")  # the values for which pydantic's get_plugins() returns ()
_PLUGIN_LOADER = "pydantic.plugin._loader"


def without_pydantic_plugins(environ: Mapping[str, str] = os.environ,
                             modules: dict[str, types.ModuleType] | None = None) -> bool:
    """Run an offline command with pydantic's plugins off, as $PYDANTIC_DISABLE_PLUGINS=__all__ does,
    unless the user set that variable to something else (theirs wins). pydantic imports its plugin
    loader when it builds the first validator, and the loader imports importlib.metadata (and email)
    at its top to look plugins up, even when the variable turns them all off; so the loader is
    replaced, before pydantic is imported, by a stand-in whose get_plugins() returns () as pydantic's
    own does then (tests/cli/test_imports.py checks that this is all pydantic asks of it). Returns
    whether the stand-in is in place."""
    modules = sys.modules if modules is None else modules
    if environ.get(PLUGINS_ENV, "__all__") not in PLUGINS_ALL_OFF or _PLUGIN_LOADER in modules:
        return isinstance(modules.get(_PLUGIN_LOADER), _NoPlugins)
    modules[_PLUGIN_LOADER] = _NoPlugins(_PLUGIN_LOADER, "pydantic's plugin loader with every plugin off")
    return True


class _NoPlugins(types.ModuleType):
    """The stand-in for pydantic.plugin._loader: no plugin, and no importlib.metadata to find one."""

    @staticmethod
    def get_plugins() -> tuple[()]:
        return ()


def command_modules(argv: Sequence[str] | None = None) -> list[str]:
    """The modules to register for `argv`: the chosen command's alone when the first argument
    names one in `COMMANDS`, none for any other argv (the listing comes from `SUMMARIES`), and
    every module of the package in name order for None (every command's full parser)."""
    if argv is None:
        import pkgutil  # only for the full parser of every command

        return sorted(info.name for info in pkgutil.iter_modules(__path__))
    return [COMMANDS[argv[0]]] if argv and argv[0] in COMMANDS else []


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the chosen command's full parser; for any other argv (`--help`, none,
    a mistyped command) every command with its help line only, as `rollouts --help` lists them;
    for None every command's full parser (what tests and tools that parse many commands use)."""
    parser = argparse.ArgumentParser(
        prog="rollouts",
        description="Progressive delivery for Kubernetes: canary steps, Istio weights, analysis.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = command_modules(argv)
    if argv and argv[0] in OFFLINE:
        without_pydantic_plugins()
    for name in names:
        register = getattr(importlib.import_module(f"{__name__}.{name}"), "register", None)
        if register is not None:
            register(subparsers)
    if not names:
        for command, summary in SUMMARIES.items():
            subparsers.add_parser(command, help=summary)
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
