"""The CLI imports only what a command needs: guarded by what is imported, never by a time.

`rollouts --help`, `rollouts eval` and `rollouts lint FILE` run in a fresh interpreter (the only
honest view of sys.modules); the names it imported are written at exit and the heavy libraries
of other commands (the kubernetes client, HTTP, rich, metrics, templates) must not be among
them; `--help` imports no command module at all, and lint neither importlib.metadata nor email
(pydantic's plugin loader, replaced for the offline commands). benchmarks/bench_cli.py measures
the time this buys.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import rollouts.cli
from rollouts.cli import COMMANDS, SUMMARIES, build_parser, command_modules, without_pydantic_plugins
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


def registered(module_name: str) -> dict[str, str | None]:
    """The top-level commands `rollouts.cli.<module_name>.register` adds, in order, with their help lines."""
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(f"rollouts.cli.{module_name}").register(subparsers)
    return {action.dest: action.help for action in subparsers._choices_actions}


def every_registered() -> dict[str, tuple[str, str | None]]:
    """command -> (its module, its help line), from every module of rollouts.cli that registers commands."""
    modules = sorted(info.name for info in pkgutil.iter_modules(rollouts.cli.__path__))
    return {command: (name, summary) for name in modules
            if hasattr(importlib.import_module(f"rollouts.cli.{name}"), "register")
            for command, summary in registered(name).items()}  # fmt: skip


def test_the_table_names_every_command_of_every_module() -> None:
    assert {command: module for command, (module, _) in every_registered().items()} == dict(COMMANDS)
    assert list(COMMANDS) == list(SUMMARIES)


def test_the_listing_gives_each_command_the_help_line_its_module_registers() -> None:
    assert {command: summary for command, (_, summary) in every_registered().items()} == dict(SUMMARIES)


def test_a_named_command_registers_its_module_alone() -> None:
    assert command_modules(["lint", "x.yaml"]) == ["lint"]
    assert command_modules(["promote", "checkout"]) == ["actions"]
    assert command_modules(["--help"]) == command_modules(["evaluate"]) == command_modules([]) == []
    assert set(build_parser(["eval", "true"])._subparsers._group_actions[0].choices) == {"eval"}  # type: ignore[union-attr]


def test_no_argv_registers_every_commands_full_parser() -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == list(COMMANDS)
    assert "--instance-id" in choices["controller"].format_help()


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h", "eval"], ["evaluate"], ["--version"]])
def test_anything_else_lists_every_command(argv: list[str]) -> None:
    """--help lists them all, and a mistyped command gets argparse's own 'invalid choice' list."""
    choices = build_parser(argv)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == list(COMMANDS)


def test_help_lists_every_command_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        rollouts.cli.main(["--help"])
    listing = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"\n    {command}\s+\S", listing), command


def test_a_mistyped_command_gets_argparses_invalid_choice_with_every_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        rollouts.cli.main(["lnt", "x.yaml"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'lnt'" in error
    assert all(f"'{command}'" in error for command in COMMANDS)


def test_rollouts_help_imports_no_command_module(tmp_path: Path) -> None:
    """The listing comes from the tables: no command module, none of the libraries they import."""
    modules = modules_after(tmp_path, "--help")
    assert "rollouts.cli" in modules  # the probe saw it run
    assert {name for name in modules if name.startswith("rollouts.cli.")} == set()
    assert {name.split(".")[0] for name in modules}.isdisjoint(
        {*OTHER_COMMANDS_LIBRARIES, "pydantic", "yaml", "analysis"})
    assert {name for name in modules if name.startswith("rollouts.")} == {"rollouts.cli"}


def test_a_commands_own_help_comes_from_its_full_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        rollouts.cli.main(["lint", "--help"])
    assert exited.value.code == 0
    assert "FILE_OR_DIR" in capsys.readouterr().out


def test_rollouts_eval_imports_no_other_commands_libraries_nor_pydantic(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "eval", "result[0] > 1", "--result", "[2]")
    assert "pydantic.plugin._loader" in modules  # the stand-in, put there in case pydantic is imported
    imported = {name.split(".")[0] for name in modules - {"pydantic.plugin._loader"}}
    assert "analysis" in imported  # the probe saw the command run
    assert imported.isdisjoint({*OTHER_COMMANDS_LIBRARIES, "pydantic", "yaml", "jsonschema"})


def test_rollouts_lint_of_a_file_imports_no_other_commands_libraries(tmp_path: Path) -> None:
    imported = imported_by(tmp_path, "lint", str(EXAMPLE))
    assert "pydantic" in imported  # the probe saw the command run
    assert imported.isdisjoint(OTHER_COMMANDS_LIBRARIES)
    # the CRD schema is checked by rollouts.spec.structural, not jsonschema (and pydantic_settings with it)
    assert imported.isdisjoint({"jsonschema", "openapi_schema_validator", "referencing", "pydantic_settings"})


def test_rollouts_lint_imports_neither_importlib_metadata_nor_email(tmp_path: Path) -> None:
    """pydantic's plugin loader imports them to look plugins up; lint runs with the plugins off."""
    modules = modules_after(tmp_path, "lint", str(EXAMPLE))
    assert "pydantic.plugin._schema_validator" in modules  # a validator was built: the loader was asked
    assert not {name for name in modules if name == "importlib.metadata" or name.startswith(("importlib.metadata.",
                                                                                             "email"))}


def test_lint_of_a_rollout_file_builds_neither_the_condition_language_nor_the_routers_actions(
        tmp_path: Path) -> None:
    """A file without conditions needs no analysis.expr; the Istio checker no rollouts.platform.actions."""
    modules_after(tmp_path, "lint", str(EXAMPLE))  # the first run may fill the schema cache
    modules = modules_after(tmp_path, "lint", str(EXAMPLE))
    assert {"analysis.checks", "rollouts.traffic.istio"} <= modules  # the probe saw them imported
    assert {name for name in modules if name.startswith("analysis.expr")} == set()
    assert "rollouts.platform.actions" not in modules


def test_the_plugin_stand_in_is_all_pydantic_asks_of_its_loader() -> None:
    """pydantic imports get_plugins alone from its loader, and the real one returns () with the plugins off."""
    import pydantic

    source = Path(pydantic.__file__).parent
    imports = {line.strip() for path in source.rglob("*.py") if path.name != "_loader.py"
               for line in path.read_text(encoding="utf-8").splitlines() if "_loader" in line}  # fmt: skip
    assert imports == {"from ._loader import get_plugins"}
    real = subprocess.run([sys.executable, "-c", "from pydantic.plugin._loader import get_plugins; "
                           "print(tuple(get_plugins()))"], env={**os.environ, "PYDANTIC_DISABLE_PLUGINS": "__all__"},
                          capture_output=True, text=True, check=True, timeout=60)
    assert real.stdout.strip() == "()"


@pytest.mark.parametrize(("value", "stands_in"), [(None, True), ("__all__", True), ("1", True), ("true", True),
                                                  ("logfire", False), ("", False)])
def test_the_users_own_pydantic_plugins_setting_wins(value: str | None, stands_in: bool) -> None:
    modules: dict[str, ModuleType] = {}
    environ = {} if value is None else {"PYDANTIC_DISABLE_PLUGINS": value}
    assert without_pydantic_plugins(environ, modules) is stands_in
    assert ("pydantic.plugin._loader" in modules) is stands_in
    if stands_in:
        assert tuple(modules["pydantic.plugin._loader"].get_plugins()) == ()
        assert without_pydantic_plugins(environ, modules)  # once in place, it stays


def test_a_loader_already_imported_is_left_alone() -> None:
    real = ModuleType("pydantic.plugin._loader")
    modules = {"pydantic.plugin._loader": real}
    assert not without_pydantic_plugins({}, modules)
    assert modules["pydantic.plugin._loader"] is real


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
