"""`rollouts lint`: one bad manifest per class of mistake, each with its documented line.

Each file under bad/ (warn/) starts with `# expect: LINE`: lint run on that file alone
must print exactly that problem line and exit 1 (warnings: exit 0). A file may hold
several objects (a Rollout and the template it names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rollouts.cli import CommandError, lint, main
from rollouts.spec import manifests

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad").glob("*.yaml"))
WARN = sorted((HERE / "warn").glob("*.yaml"))


def run_lint(*paths: str | Path) -> int:
    """`rollouts lint PATHS` through lint's own parser (isolated from other commands)."""
    parser = argparse.ArgumentParser(prog="rollouts")
    lint.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["lint", *map(str, paths)])
    try:
        return args.func(args)
    except CommandError as err:
        print(f"rollouts lint: {err}")
        return err.code


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' header"
    return first.removeprefix("# expect: ")


def test_there_are_at_least_25_classes_of_mistake() -> None:
    assert len(BAD) >= 25
    assert len({expected(p).split(": ", 3)[-1] for p in BAD}) == len(BAD)  # no two files give the same message


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_manifest_gives_its_documented_line(path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(path.parent)
    code = run_lint(path.name)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[:-1] == [expected(path)]
    assert lines[-1].startswith("FAILED: 1 error in 1 file, ")


@pytest.mark.parametrize("path", WARN, ids=[p.stem for p in WARN])
def test_unsupported_but_argo_valid_is_a_warning(path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(path.parent)
    objects = len(manifests.load([str(path)]).documents)
    code = run_lint(path.name)
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        expected(path), f"OK: 1 file, {objects} object{'s' * (objects != 1)}, 1 warning"]


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"rollouts lint: no such file or directory: {tmp_path / 'nope.yaml'}\n"


def test_directory_without_manifests_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("# nothing to lint\n")
    assert run_lint(tmp_path) == 2
    assert capsys.readouterr().out == f"rollouts lint: no manifests (*.yaml, *.yml) found in {tmp_path}\n"


def test_file_with_only_comments_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.yaml").write_text("# just a comment\n---\n")
    assert run_lint(tmp_path / "empty.yaml") == 2
    assert "no manifests found in" in capsys.readouterr().out


def test_undecodable_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert run_lint(tmp_path / "bin.yaml") == 2
    assert capsys.readouterr().out.startswith(f"rollouts lint: cannot read {tmp_path / 'bin.yaml'}: ")


def test_references_resolve_across_files_and_problems_keep_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = HERE / "bad"
    monkeypatch.chdir(tmp_path)
    template, rollout = (bad / "missing-required-arg.yaml").read_text().split("---\n")
    Path("a-rollout.yaml").write_text(rollout)
    Path("b-template.yaml").write_text(template.replace("# expect:", "# was:"))
    Path("c-bad.yaml").write_text((bad / "setweight-over-100.yaml").read_text())
    assert run_lint(".") == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines[:-1]] == ["a-rollout.yaml", "c-bad.yaml"]
    assert "requires arg 'service-name'" in lines[0]
    assert lines[-1] == "FAILED: 2 errors in 3 files, 3 objects"


def test_several_problems_in_one_object_are_all_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (HERE / "bad" / "setweight-over-100.yaml").read_text()
    text = text.replace("duration: 1m", "duration: 1d").replace("  replicas: 2\n", "  replicas: 2\n  replica: 3\n")
    (tmp_path / "r.yaml").write_text(text)
    assert run_lint(tmp_path / "r.yaml") == 1
    problems = [line.split(": ", 3)[2] for line in capsys.readouterr().out.splitlines()[:-1]]
    assert problems == ["spec.replica", "spec.strategy.canary.steps[0].setWeight",
                        "spec.strategy.canary.steps[1].pause.duration"]  # fmt: skip


def test_quoted_number_is_a_type_error_as_the_api_server_says(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = (HERE / "bad" / "setweight-over-100.yaml").read_text().replace("setWeight: 120", 'setWeight: "50"')
    (tmp_path / "r.yaml").write_text(text)
    assert run_lint(tmp_path / "r.yaml") == 1
    assert "steps[0].setWeight: must be an integer, got '50'" in capsys.readouterr().out


def test_nulls_and_timestamps_are_read_as_the_api_server_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (HERE / "bad" / "setweight-over-100.yaml").read_text().replace("setWeight: 120", "setWeight: 20")
    text = text.replace("  replicas: 2\n", "  replicas: 2\n  restartAt: 2024-01-01T00:00:00Z\n  paused:\n")
    (tmp_path / "r.yaml").write_text(text)
    assert run_lint(tmp_path / "r.yaml") == 0
    assert capsys.readouterr().out == "OK: 1 file, 1 object\n"


def test_other_kinds_are_counted_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"
                                      "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, "
                                      "metadata: {name: s}}\n")  # fmt: skip
    assert run_lint(tmp_path) == 0
    assert capsys.readouterr().out == "OK: 1 file, 2 objects\n"
