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
        (["true", "--success", "true", "--result", "1"],
         "rollouts eval: give either EXPR or --success/--failure, not both\n"),
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


# ---------------------------------------------------------------- hostile input: a message, never a traceback


@pytest.mark.parametrize(
    ("result", "err"),
    [
        ("[" * 100_000 + "]" * 100_000, "rollouts eval: --result nests too deeply to read as JSON\n"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, "rollouts eval: --result nests too deeply to read as JSON\n"),
        ("[" + "9" * 5_000 + "]", "rollouts eval: --result cannot be read as JSON: Exceeds the limit (4300 digits) "
                                  "for integer string conversion: value has 5000 digits; use "
                                  "sys.set_int_max_str_digits() to increase the limit\n"),
    ],
    ids=["deep list", "deep map", "5000 digits"],
)  # fmt: skip
def test_unreadable_json_exits_2(capsys: pytest.CaptureFixture[str], result: str, err: str) -> None:
    assert run(capsys, "true", "--result", result) == (2, "", err)


def test_a_file_that_is_not_utf8_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "m.json").write_bytes(b'["\xff"]')
    expected = f"rollouts eval: {tmp_path / 'm.json'} is not UTF-8 text\n"
    assert run(capsys, "true", "--result", f"@{tmp_path / 'm.json'}") == (2, "", expected)


def test_a_deep_file_and_deep_stdin_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.json").write_text("[" * 100_000)
    code, out, err = run(capsys, "true", "--result", f"@{tmp_path / 'm.json'}")
    assert (code, out) == (2, "") and err.endswith("nests too deeply to read as JSON\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("[" * 100_000))
    expected = "rollouts eval: standard input nests too deeply to read as JSON\n"
    assert run(capsys, "true", "--result", "-") == (2, "", expected)


@pytest.mark.parametrize(
    ("argv", "code", "out", "err"),
    [
        (["result == '\ud800'", "--result", '"\\ud800"'], 0, "true\n", ""),
        (["result == '\ud800' && (", "--result", "1"], 1, "",
         "rollouts eval: unexpected end of expression at column 18\n  result == '\\ud800' && (\n"
         "                         ^\n"),
        (["--success", "result == '\udc80'", "--result", '"\\ud800"'], 0,
         "Failed: result \"\\ud800\" did not satisfy successCondition \"result == '\\udc80'\"\n", ""),
        (["--failure", "result > 1", "--result", '["\\udfff", 2]'], 1,
         'Error: could not evaluate failureCondition "result > 1": invalid operation: > '
         "(mismatched types []interface {} and int)\n", ""),
        (["result", "--result", '{"\\ud800": 1}', "--json"], 1, "", None),
        (["true", "--result", "@/nonexistent/\udc80.json"], 2, "",
         "rollouts eval: --result @/nonexistent/\\udc80.json: cannot read /nonexistent/\\udc80.json: "
         "No such file or directory\n"),
    ],
    ids=["value", "caret", "phase", "phase error", "json", "path"],
)  # fmt: skip
def test_lone_surrogates_are_printed_escaped(capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                                             out: str, err: str | None) -> None:
    """capsys encodes strictly, as a UTF-8 stdout does: an unescaped surrogate would raise."""
    got_code, got_out, got_err = run(capsys, *argv)
    if err is None:  # --json: the message is JSON, escaped by json.dumps
        assert (got_code, got_err) == (code, "")
        assert json.loads(got_out) == {"value": None, "message": "expected bool, but got map[string]interface {}"}
        return
    assert (got_code, got_out, got_err) == (code, out, err)


def test_a_surrogate_in_a_real_process_is_no_traceback() -> None:
    """The same through a real process, whose stdout is strict UTF-8 for \\ud800."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import sys; from rollouts.cli import main; sys.exit(main(sys.argv[1:]))",
         "eval", "--success", "result == 'x'", "--result", '"\\ud800"'],
        capture_output=True, timeout=60, cwd=Path(__file__).resolve().parents[2], check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert done.stdout == b'Failed: result "\\ud800" did not satisfy successCondition "result == \'x\'"\n'


@pytest.mark.parametrize(
    ("argv", "code", "err"),
    [
        (["trim('a', 1)", "--result", "1"], 1, "rollouts eval: invalid argument for trim (type int)\n"),
        (["asInt(result) > 0", "--result", '"' + "1" * 5_000 + '"'], 1, None),
        (["-(-9223372036854775807 - 1) > 0", "--result", "1"], 1,
         "rollouts eval: integer overflow in -: the result does not fit in int64\n"),
        (["string(result) != ''", "--result", "[" * 900 + "]" * 900], 0, ""),
    ],
    ids=["trim", "digits", "overflow", "deep but readable"],
)  # fmt: skip
def test_evaluator_failures_are_messages(capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                                         err: str | None) -> None:
    got_code, _, got_err = run(capsys, *argv)
    assert got_code == code
    if err is None:
        assert got_err.startswith("rollouts eval: strconv.ParseInt: parsing") and "Traceback" not in got_err
    else:
        assert got_err == err


def test_an_unexpected_failure_is_reported_not_raised(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(condition: str, result: object) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr("rollouts.cli.eval.eval_condition", broken)
    assert run(capsys, "true", "--result", "1") == (1, "", "rollouts eval: internal error: RuntimeError: boom\n")


def test_a_long_line_shows_the_part_around_the_caret(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "1 + " * 2000 + ")", "--result", "1")
    lines = err.splitlines()
    assert code == 1 and lines[0].startswith("rollouts eval: expression is 8001 characters long")
    assert len(lines[1]) < 130 and lines[1].startswith("  …") and lines[2].endswith("^")
    assert lines[1][len(lines[2]) - 1] != " "  # the caret is under a character of the cut line
