"""`rollouts eval`: stdout, stderr and exit codes through rollouts.cli.main."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rollouts.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["result[0] >= 0.95", "--result", "[0.97]"], "true\n"),
        (["result[0] >= 0.95", "--result", "[0.93]"], "false\n"),
        (["len(result) == 0 || result[0] >= 0.95", "--result", "[]"], "true\n"),
        (["result >= 0.9", "--result", "NaN"], "false\n"),
        (["isInf(result)", "--result", "Infinity"], "true\n"),
        (["result.count == 10 and result['average.duration'] < 15.0",
          "--result", '{"count": 10, "average.duration": 12.34}'], "true\n"),
        (["all(result, {# > 10})", "--result", "[11, 12]"], "true\n"),
    ],
)
def test_value_mode_prints_true_or_false(capsys: pytest.CaptureFixture[str], argv: list[str], out: str) -> None:
    assert run(capsys, *argv) == (0, out, "")


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        (["result[0] >= 0.95", "--result", "[]"], "rollouts eval: result is empty: the query returned no series\n"),
        (["result[0] >= 0.95", "--result", "null"], "rollouts eval: result is empty: the query returned no series\n"),
        (["1", "--result", "true"], "rollouts eval: expected bool, but got int\n"),
        (["result < 0.05", "--result", "null"],
         "rollouts eval: invalid operation: < (mismatched types nil and float64)\n"),
        (["asInt(result) == 1", "--result", '"1.1"'],
         'rollouts eval: strconv.ParseInt: parsing "1.1": invalid syntax\n'),
    ],
)
def test_evaluation_errors_exit_1(capsys: pytest.CaptureFixture[str], argv: list[str], err: str) -> None:
    assert run(capsys, *argv) == (1, "", err)


def test_syntax_error_shows_a_caret_under_the_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "result[0] >= )", "--result", "[1]")
    assert (code, out) == (1, "")
    assert err == ("rollouts eval: unexpected token ')' at column 13\n"
                   "  result[0] >= )\n"
                   "               ^\n")


def test_unknown_name_is_reported_with_its_position(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "reslt[0] > 1", "--result", "[1]")
    assert code == 1
    assert err.splitlines() == ["rollouts eval: unknown name reslt at column 0", "  reslt[0] > 1", "  ^"]


def test_json_value_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "result[0] >= 0.95", "--result", "[0.97]", "--json")
    assert (code, json.loads(out)) == (0, {"value": True, "message": None})
    code, out, _ = run(capsys, "result[0] >= 0.95", "--result", "[]", "--json")
    assert (code, json.loads(out)) == (1, {"value": None, "message": "result is empty: the query returned no series"})


@pytest.mark.parametrize(
    ("argv", "code", "out"),
    [
        (["--success", "result[0] >= 0.95", "--result", "[0.97]"], 0,
         'Successful: result [0.97] satisfied successCondition "result[0] >= 0.95"\n'),
        (["--success", "result[0] >= 0.95", "--result", "[0.93]"], 0,
         'Failed: result [0.93] did not satisfy successCondition "result[0] >= 0.95"\n'),
        (["--success", "result[0] >= 0.95", "--failure", "result[0] < 0.9", "--result", "[0.93]"], 0,
         'Inconclusive: result [0.93] satisfied neither successCondition "result[0] >= 0.95" '
         'nor failureCondition "result[0] < 0.9"\n'),
        (["--failure", "isInf(result)", "--result", "Infinity"], 0,
         'Failed: result +Inf met failureCondition "isInf(result)"\n'),
        (["--success", "result[0] >= 0.95", "--result", "[]"], 1,
         'Error: could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: '
         "no data returned from the metric provider\n"),
    ],
)
def test_phase_mode(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, out: str) -> None:
    assert run(capsys, *argv) == (code, out, "")


def test_json_phase_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--success", "true", "--failure", "true", "--result", "1", "--json")
    assert code == 0
    assert json.loads(out) == {"phase": "Failed", "message": 'result 1 met failureCondition "true"'}


def test_result_from_a_file_and_from_stdin(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.json").write_text('{"a": [1, 2, 3]}')
    assert run(capsys, "len(result.a) == 3", "--result", f"@{tmp_path / 'm.json'}") == (0, "true\n", "")
    monkeypatch.setattr("sys.stdin", io.StringIO("[0.5]"))
    assert run(capsys, "result[0] < 1", "--result", "-") == (0, "true\n", "")


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        (["true", "--result", "[0.97"],
         "rollouts eval: --result is not JSON: Expecting ',' delimiter at column 6; "
         "write it like --result '[0.97]' or --result '{\"count\": 10}'\n"),
        (["true", "--result", "@/nonexistent/m.json"],
         "rollouts eval: --result @/nonexistent/m.json: cannot read /nonexistent/m.json: No such file or directory\n"),
        (["true", "--success", "true", "--result", "1"], "rollouts eval: give either EXPR or --success/--failure, not both\n"),
        (["--result", "1"], "rollouts eval: give a condition: EXPR, or --success/--failure EXPR\n"),
    ],
)
def test_bad_json_and_usage_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], err: str) -> None:
    assert run(capsys, *argv) == (2, "", err)


def test_missing_result_is_an_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "true"])
    assert exited.value.code == 2
    assert "--result" in capsys.readouterr().err
