"""--prometheus and ARGO_ROLLOUTS_PROMETHEUS_ADDRESS on the CLI: a fallback for metrics without an address, the flag
winning over the variable, a metric's own address winning over both (Argo's NewPrometheusAPI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rollouts.cli import PROMETHEUS_ENV, CommandError, main, prometheus_default
from tests.analysis.test_prometheus_argo_cases import StandIn, serve, vector


def server(value: str) -> Iterator[str]:
    class Answering(StandIn):
        seen: ClassVar[list[tuple[str, dict[str, str], dict[str, str]]]] = []
        answer: ClassVar[dict[str, Any]] = vector(value)

    yield from serve(Answering)


@pytest.fixture
def flag_server() -> Iterator[str]:
    yield from server("1")


@pytest.fixture
def env_server() -> Iterator[str]:
    yield from server("2")


@pytest.fixture
def own_server() -> Iterator[str]:
    yield from server("3")


def template(tmp_path: Path, address: str | None = None) -> str:
    prometheus: dict[str, Any] = {"query": "up", **({"address": address} if address else {})}
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
           "spec": {"metrics": [{"name": "m", "provider": {"prometheus": prometheus}}]}}
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(doc))
    return str(path)


def analyzed(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str | None]:
    main(["analyze", *argv, "--json"])
    [metric] = json.loads(capsys.readouterr().out)["metrics"]
    return metric["phase"], metric["value"]


def test_flag_wins_over_env(tmp_path, capsys, monkeypatch, flag_server, env_server) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PROMETHEUS_ENV, env_server)
    assert analyzed(capsys, template(tmp_path), "--prometheus", flag_server) == ("Successful", [1.0])


def test_env_is_the_fallback_without_the_flag(tmp_path, capsys, monkeypatch, env_server) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PROMETHEUS_ENV, env_server)
    assert analyzed(capsys, template(tmp_path)) == ("Successful", [2.0])


def test_the_metrics_own_address_wins_over_flag_and_env(  # type: ignore[no-untyped-def]
        tmp_path, capsys, monkeypatch, flag_server, env_server, own_server) -> None:
    monkeypatch.setenv(PROMETHEUS_ENV, env_server)
    assert analyzed(capsys, template(tmp_path, own_server), "--prometheus", flag_server) == ("Successful", [3.0])


def test_override_sends_every_metric_to_one_server(tmp_path, capsys, flag_server, own_server) -> None:  # type: ignore[no-untyped-def]
    assert analyzed(capsys, template(tmp_path, own_server), "--prometheus-override", flag_server)[1] == [1.0]


def test_neither_is_an_error_naming_the_field(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(PROMETHEUS_ENV, raising=False)
    main(["analyze", template(tmp_path), "--json"])
    [metric] = json.loads(capsys.readouterr().out)["metrics"]
    assert metric["phase"] == "Error"
    assert "provider.prometheus.address: prometheus address is not configured" in metric["message"]


@pytest.mark.parametrize(("flag", "env", "expected"), [
    (None, "", None), (None, "  ", None), ("http://a:1", "http://b:2", "http://a:1"), (None, "http://b:2/", "http://b:2"),
])
def test_precedence(flag: str | None, env: str, expected: str | None) -> None:
    assert prometheus_default(flag, {PROMETHEUS_ENV: env}) == expected


def test_an_env_address_that_is_not_http_is_a_usage_error() -> None:
    with pytest.raises(CommandError) as caught:
        prometheus_default(None, {PROMETHEUS_ENV: "prometheus:9090"})
    assert caught.value.code == 2 and f"{PROMETHEUS_ENV}: address is not an http(s) URL" in str(caught.value)


def test_help_documents_the_precedence(capsys) -> None:  # type: ignore[no-untyped-def]
    for command in ("analyze", "controller"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "$ARGO_ROLLOUTS_PROMETHEUS_ADDRESS" in text and "--prometheus wins over it" in text
