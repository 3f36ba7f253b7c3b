"""The CLI imports only what a command needs: guarded by what is imported, never by a time.

`rollouts eval` and `rollouts lint FILE` run in a fresh interpreter (the only honest view of
sys.modules); the names it imported are written at exit and the heavy libraries of other
commands (the kubernetes client, HTTP, rich, metrics, templates) must not be among them.
benchmarks/bench_cli.py measures the time this buys.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rollouts.cli
from rollouts.cli import COMMANDS, build_parser, command_modules
from tests.cli.conftest import Shop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "istio-canary" / "rollout.yaml"
OTHER_COMMANDS_LIBRARIES = ("kubernetes", "requests", "urllib3", "rich", "prometheus_client", "jinja2")

PROBE = """
import json, sys
from rollouts.cli import main
out = sys.argv[1]
try:
    code = main(sys.argv[2:])
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
sys.exit(code)
"""


def modules_after(tmp_path: Path, *argv: str) -> set[str]:
    """sys.modules after `rollouts ARGV` ran in a fresh interpreter."""
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *argv], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return set(json.loads(out.read_text()))


def imported_by(tmp_path: Path, *argv: str) -> set[str]:
    """Top-level packages in sys.modules after `rollouts ARGV` ran in a fresh interpreter."""
    return {name.split(".")[0] for name in modules_after(tmp_path, *argv)}


def registered(module_name: str) -> list[str]:
    """The top-level commands `rollouts.cli.<module_name>.register` adds, in order."""
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(f"rollouts.cli.{module_name}").register(subparsers)
    return list(subparsers.choices)


def test_the_table_names_every_command_of_every_module() -> None:
    modules = sorted(info.name for info in pkgutil.iter_modules(rollouts.cli.__path__))
    found = {command: name for name in modules
             if hasattr(importlib.import_module(f"rollouts.cli.{name}"), "register")
             for command in registered(name)}  # fmt: skip
    assert found == dict(COMMANDS)


def test_a_named_command_registers_its_module_alone() -> None:
    assert command_modules(["lint", "x.yaml"]) == ["lint"]
    assert command_modules(["promote", "checkout"]) == ["actions"]
    assert set(build_parser(["eval", "true"])._subparsers._group_actions[0].choices) == {"eval"}  # type: ignore[union-attr]


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h", "eval"], ["evaluate"], ["--version"]])
def test_anything_else_registers_every_command(argv: list[str]) -> None:
    """--help lists them all, and a mistyped command gets argparse's own 'invalid choice' list."""
    choices = build_parser(argv)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == list(COMMANDS)


def test_help_lists_every_command_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        rollouts.cli.main(["--help"])
    listing = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"\n    {command}\s+\S", listing), command


def test_rollouts_eval_imports_no_other_commands_libraries_nor_pydantic(tmp_path: Path) -> None:
    imported = imported_by(tmp_path, "eval", "result[0] > 1", "--result", "[2]")
    assert "analysis" in imported  # the probe saw the command run
    assert imported.isdisjoint({*OTHER_COMMANDS_LIBRARIES, "pydantic", "yaml", "jsonschema"})


def test_rollouts_lint_of_a_file_imports_no_other_commands_libraries(tmp_path: Path) -> None:
    imported = imported_by(tmp_path, "lint", str(EXAMPLE))
    assert "pydantic" in imported  # the probe saw the command run
    assert imported.isdisjoint(OTHER_COMMANDS_LIBRARIES)
    # the CRD schema is checked by rollouts.spec.structural, not jsonschema (and pydantic_settings with it)
    assert imported.isdisjoint({"jsonschema", "openapi_schema_validator", "referencing", "pydantic_settings"})


def test_rollouts_lint_imports_the_models_of_the_kinds_the_file_holds_only(tmp_path: Path) -> None:
    """A Rollout file builds neither the Experiment models nor the judge's config (nor the CRD generator,
    once the schema cache is warm: the first run may fill it)."""
    modules_after(tmp_path, "lint", str(EXAMPLE))
    modules = modules_after(tmp_path, "lint", str(EXAMPLE))
    assert "rollouts.spec.model" in modules  # the probe saw it run
    assert modules.isdisjoint({"rollouts.spec.experiment", "rollouts.plan.experiment_checks", "analysis.judge.config",
                               "rollouts.spec.crdgen"})


def test_the_judge_plugin_name_lint_looks_for_is_the_judges() -> None:
    from analysis import provider_checks
    from analysis.judge import config

    assert provider_checks.JUDGE_PLUGIN == config.PLUGIN


def test_rollouts_get_rollout_imports_the_light_reader_and_the_view_only(tmp_path: Path, shop: Shop,
                                                                        kubeconfig: Path) -> None:
    """The light reader (http.client) and rich; not the kubernetes client, no model, no plan, no provider."""
    shop.seed("paused")
    modules = modules_after(tmp_path, "get", "rollout", "checkout", "--kubeconfig", str(kubeconfig))
    assert {"rollouts.kube.light", "rollouts.view.render"} <= modules  # the probe saw it run
    assert "rollouts.kube.cluster" not in modules
    assert {name.split(".")[0] for name in modules}.isdisjoint({"kubernetes", "urllib3", "requests"})
    ours = {name for name in modules if name.startswith(("analysis", "rollouts.spec", "rollouts.plan",
                                                         "rollouts.controller", "rollouts.demo"))}
    assert ours == set()
    assert {name.split(".")[0] for name in modules}.isdisjoint({"prometheus_client", "jinja2", "ruamel"})
