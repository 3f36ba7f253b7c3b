"""`rollouts backtest` against a real Prometheus holding last Tuesday's good and bad releases.

Covers: the verdict and the time it would have been reached are what the run semantics say
(tests/fixtures/release_history.py: the bad release's success rate is 0.8 from 10:20:00;
the template measures every minute, count 5, failureLimit 1), in text and in --json; a
ClusterAnalysisTemplate the same; a window that ends first says Running with the next
measurement due; the hold waits through a gap in the data; times (RFC 3339, epoch, now-2h,
now-7d) and every input error exit 2 naming the flag or the field and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import CommandError, main
from rollouts.cli.backtest import parse_time
from rollouts.demo.prometheus import PrometheusServer
from tests.conftest import require_prometheus
from tests.fixtures import release_history

TEMPLATE = Path(__file__).parent.parent / "fixtures" / "success-rate-template.yaml"
GOOD = f"service-name={release_history.GOOD}"
BAD = f"service-name={release_history.BAD}"


@pytest.fixture(scope="module")
def history() -> Iterator[str]:
    require_prometheus()
    with PrometheusServer(backfill=release_history.openmetrics()) as server:
        yield server.url


def backtest(capsys: pytest.CaptureFixture[str], *argv: str, template: Path = TEMPLATE) -> tuple[int, str, str]:
    code = main(["backtest", str(template), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str, template: Path = TEMPLATE) -> tuple[int, dict[str, Any]]:
    code, out, _ = backtest(capsys, *argv, "--json", template=template)
    return code, json.loads(out)


def test_the_bad_release_fails_at_the_second_bad_minute(history: str, capsys: pytest.CaptureFixture[str]) -> None:
    """10:18 and 10:19 good (0.99), 10:20 and 10:21 bad (0.8): failed 2 > failureLimit 1 at 10:21, before count 5."""
    code, out = as_json(capsys, "--prometheus", history, "--arg", BAD,
                        "--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T11:00:00Z")
    assert code == 1
    assert (out["phase"], out["decidedAt"], out["nextMeasurement"]) == ("Failed", "2024-03-05T10:21:00Z", None)
    assert [(m["time"], m["value"], m["phase"]) for m in out["measurements"]] == [
        ("2024-03-05T10:18:00Z", "[0.99]", "Successful"), ("2024-03-05T10:19:00Z", "[0.99]", "Successful"),
        ("2024-03-05T10:20:00Z", "[0.8]", "Failed"), ("2024-03-05T10:21:00Z", "[0.8]", "Failed")]
    assert "failed (2) > failureLimit (1)" in out["message"]
    assert out["metrics"] == [{"name": "success-rate", "phase": "Failed", "count": 4, "successful": 2, "failed": 2,
                               "inconclusive": 0, "error": 0}]


def test_the_good_release_passes_at_its_fifth_measurement(history: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = as_json(capsys, "--prometheus", history, "--arg", GOOD,
                        "--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T11:00:00Z")
    assert code == 0
    assert (out["phase"], out["decidedAt"]) == ("Successful", "2024-03-05T10:22:00Z")
    assert [m["value"] for m in out["measurements"]] == ["[0.99]"] * 5


def test_the_text_output_is_the_timeline_and_the_verdict(history: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = backtest(capsys, "--prometheus", history, "--arg", BAD,
                            "--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T11:00:00Z")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == ("Backtest of AnalysisTemplate success-rate from 2024-03-05T10:18:00Z "
                        "to 2024-03-05T11:00:00Z")
    assert lines[1].split() == ["TIME", "METRIC", "VALUE", "PHASE", "MESSAGE"]
    assert lines[4].split()[:4] == ["2024-03-05T10:20:00Z", "success-rate", "[0.8]", "Failed"]
    assert lines[-1].startswith("Verdict: Failed at 2024-03-05T10:21:00Z (3m0s after --from): ")
    assert len(lines) == 7


def test_a_cluster_template_replays_the_same(history: str, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["kind"] = "ClusterAnalysisTemplate"
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out = as_json(capsys, "--prometheus", history, "--arg", BAD, "--from", "2024-03-05T10:18:00Z",
                        "--to", "2024-03-05T11:00:00Z", template=path)
    assert (code, out["template"]["kind"], out["phase"], out["decidedAt"]) == (
        1, "ClusterAnalysisTemplate", "Failed", "2024-03-05T10:21:00Z")


def test_a_window_that_ends_first_is_running_with_the_next_measurement_due(
        history: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = as_json(capsys, "--prometheus", history, "--arg", GOOD,
                        "--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T10:20:30Z")
    assert code == 1
    assert (out["phase"], out["decidedAt"], out["nextMeasurement"]) == ("Running", None, "2024-03-05T10:21:00Z")
    assert len(out["measurements"]) == 3
    code, text, _ = backtest(capsys, "--prometheus", history, "--arg", GOOD,
                             "--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T10:20:30Z")
    assert text.splitlines()[-1] == ("Verdict: none by --to: still Running at 2024-03-05T10:20:30Z; "
                                     "next measurement due at 2024-03-05T10:21:00Z")


def test_the_hold_waits_through_a_gap_in_the_data(history: str, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """Before 10:00 there is no history: `[]` meets neither condition (Inconclusive, held), then data."""
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["spec"]["metrics"][0] |= {"successCondition": "len(result) > 0 && result[0] >= 0.95",
                                  "failureCondition": "len(result) > 0 && result[0] < 0.95",
                                  "inconclusive": {"hold": True}, "count": 2}
    path = tmp_path / "hold.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out = as_json(capsys, "--prometheus", history, "--arg", GOOD, "--from", "2024-03-05T09:58:30Z",
                        "--to", "2024-03-05T11:00:00Z", template=path)
    assert [(m["time"], m["phase"], m.get("held", False)) for m in out["measurements"]] == [
        ("2024-03-05T09:58:30Z", "Inconclusive", True), ("2024-03-05T09:59:30Z", "Inconclusive", True),
        ("2024-03-05T10:00:30Z", "Successful", False), ("2024-03-05T10:01:30Z", "Successful", False)]
    assert (code, out["phase"], out["decidedAt"]) == (0, "Successful", "2024-03-05T10:01:30Z")


NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-03-05T10:18:00Z", datetime(2024, 3, 5, 10, 18, tzinfo=UTC)),
    ("2024-03-05T12:18:00+02:00", datetime(2024, 3, 5, 10, 18, tzinfo=UTC)),
    ("1709634000", datetime(2024, 3, 5, 10, 20, tzinfo=UTC)),
    ("now", NOW),
    ("now-2h", datetime(2026, 12, 3, 12, 0, tzinfo=UTC)),
    ("now-7d", datetime(2026, 11, 26, 14, 0, tzinfo=UTC)),
    ("now - 1d12h", datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),
])
def test_times_are_rfc3339_epoch_or_relative_to_now(text: str, expected: datetime) -> None:
    assert parse_time(text, "--from", now=NOW) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("yesterday", "--from 'yesterday' is not a time; use RFC 3339"),
    ("now-2x", "--from 'now-2x': '2x' is not a duration"),
    ("nowish", "--from 'nowish' is not a time"),
    ("now-", "--from 'now-' is not a time"),
    ("2024-03-05T10:18:00", "has no time zone; add Z (UTC)"),
])
def test_a_bad_time_names_the_flag_and_the_fix(text: str, says: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_time(text, "--from", now=NOW)
    assert says in str(caught.value) and caught.value.code == 2


def write(tmp_path: Path, change: Any) -> Path:
    doc = yaml.safe_load(TEMPLATE.read_text())
    change(doc)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


WINDOW = ("--from", "2024-03-05T10:18:00Z", "--to", "2024-03-05T11:00:00Z")


@pytest.mark.parametrize(("change", "argv", "says"), [
    (None, (), "arg 'service-name' is required; pass it with --arg service-name=VALUE"),
    (None, ("--arg", GOOD, "--arg", "other=1"), "declares no arg 'other'"),
    (lambda d: d["spec"]["args"][0].update(valueFrom={"secretKeyRef": {"name": "s", "key": "k"}}), (),
     "spec.args[0].valueFrom.secretKeyRef: arg 'service-name' takes its value from a cluster, which a backtest "
     "does not read; pass it with --arg service-name=VALUE"),
    (lambda d: d["spec"]["args"][0].update(valueFrom={"podTemplateHashValue": "Latest"}), (),
     "spec.args[0].valueFrom.podTemplateHashValue"),
    (lambda d: d["spec"].update(templates=[{"templateName": "other"}]), ("--arg", GOOD),
     "spec.templates references other templates, which a backtest cannot fetch from a cluster; copy their metrics"),
    (lambda d: d["spec"]["metrics"][0].update(provider={"job": {"spec": {}}}), ("--arg", GOOD),
     "spec.metrics[0].provider: metric 'success-rate': provider 'job' is not supported"),
    (lambda d: d["spec"]["metrics"][0].update(interval="1d"), ("--arg", GOOD),
     "spec.metrics[0].interval: '1d' is not a duration (Go durations have no 'd' unit: write 24h)"),
])
def test_input_errors_exit_2_naming_the_field_and_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, argv: tuple[str, ...], says: str) -> None:
    path = write(tmp_path, change) if change else TEMPLATE
    code, out, err = backtest(capsys, "--prometheus", "http://127.0.0.1:9", *argv, *WINDOW, template=path)
    assert (code, out) == (2, "")
    assert says in err, err


@pytest.mark.parametrize(("window", "says"), [
    (("--from", "2024-03-05T11:00:00Z", "--to", "2024-03-05T10:00:00Z"), "is not before --to"),
    (("--from", "now-1h", "--to", "now+1h"), "--to 'now+1h' is in the future"),
    (("--from", "tuesday"), "--from 'tuesday' is not a time"),
])
def test_a_bad_window_exits_2(capsys: pytest.CaptureFixture[str], window: tuple[str, ...], says: str) -> None:
    code, out, err = backtest(capsys, "--arg", GOOD, *window)
    assert (code, out) == (2, "")
    assert says in err, err


def test_rollouts_backtest_imports_the_providers_but_no_other_commands_libraries(history: str,
                                                                                  tmp_path: Path) -> None:
    from tests.cli.test_imports import modules_after

    modules = modules_after(tmp_path, "backtest", str(TEMPLATE), "--prometheus", history, "--arg", GOOD, *WINDOW)
    assert {"analysis.backtest", "analysis.providers.prometheus"} <= modules  # the probe saw it run
    assert {name.split(".")[0] for name in modules}.isdisjoint({"kubernetes", "rich", "prometheus_client", "jinja2"})
    assert not {name for name in modules if name.startswith(("rollouts.plan", "rollouts.controller", "rollouts.spec",
                                                             "rollouts.demo", "rollouts.kube"))}
