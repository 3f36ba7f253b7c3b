"""A real Prometheus (Debian's package) as a plain local process, for tests and the demo.

Rules:
- It listens on 127.0.0.1 only, on a free port, with its own temp storage dir that is
  removed on stop; it never touches /var/lib/prometheus or port 9090.
- Backfilled history is written as OpenMetrics text and turned into blocks with
  `promtool tsdb create-blocks-from openmetrics` in a fresh dir before the server
  starts; promtool's exit code and the number of samples it kept are checked, because
  promtool silently drops out-of-order samples and reads milliseconds as seconds.
- Retention is 100 years, so history at fixed past timestamps is never deleted; query it
  with an explicit `time=` (an instant query looks back only 5 minutes).
- Start waits for `/-/ready` for a bounded time; stop sends SIGTERM to our own PID and
  SIGKILL after a bound. Prometheus and promtool are started by
  `rollouts.demo.lifetime.popen`: killed with the process that started them (the demo,
  or the test run using the suite's fixture), and the temp dir is recorded for the
  next demo to remove (`lifetime.mkdtemp`, when inside a recorded demo run). A missing
  binary or a failed start is a `PrometheusError` with the install hint or the tail of
  the server's log.

`render_openmetrics` is the tiny writer for that history: timestamps in seconds, each
series in increasing time order, `# EOF` at the end.
"""

from __future__ import annotations

import math
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from rollouts.demo import lifetime

INSTALL_HINT = "install Debian's prometheus: apt-get install --no-install-recommends prometheus"

# Timestamps above this are surely milliseconds (year 5138 in seconds).
_MAX_SECONDS = 1e11


class PrometheusError(RuntimeError):
    """Prometheus or promtool is missing, or failed; the message says what to do."""


# ---------------------------------------------------------------- OpenMetrics


@dataclass(frozen=True)
class Series:
    """One time series: samples are (timestamp in seconds, value), strictly increasing in time."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]


def counter(
    name: str, labels: Mapping[str, str], *, start: float, step: float, increments: Iterable[float]
) -> Series:
    """A counter that grows by each increment, one sample every `step` seconds from `start`.

    >>> counter("c_total", {}, start=0, step=15, increments=[2, 3]).samples
    ((0, 2.0), (15, 5.0))
    """
    total, samples = 0.0, []
    for index, increment in enumerate(increments):
        total += increment
        samples.append((start + index * step, total))
    return Series(name, dict(labels), tuple(samples))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text that promtool backfills exactly: seconds, increasing time, `# EOF`.

    Raises ValueError for a timestamp that looks like milliseconds or for samples that
    are not strictly increasing in time (promtool would drop them silently).
    """
    lines: list[str] = []
    for one in series:
        labels = ",".join(f'{key}="{_escape(value)}"' for key, value in one.labels.items())
        selector = f"{one.name}{{{labels}}}" if labels else one.name
        previous = -math.inf
        for timestamp, value in one.samples:
            if timestamp > _MAX_SECONDS:
                raise ValueError(f"{selector}: timestamp {timestamp} looks like milliseconds; use seconds")
            if timestamp <= previous:
                raise ValueError(f"{selector}: timestamp {timestamp} is not after {previous}; samples must increase")
            previous = timestamp
            lines.append(f"{selector} {_number(value)} {_number(timestamp)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def count_samples(openmetrics: str) -> int:
    """Number of sample lines in OpenMetrics text (comments and blank lines excluded)."""
    return sum(1 for line in openmetrics.splitlines() if line.strip() and not line.startswith("#"))


# ---------------------------------------------------------------- the server


@dataclass
class PrometheusServer:
    """`with PrometheusServer(backfill=text) as prom: prom.url` — a private, real Prometheus."""

    backfill: str | None = None
    scrape_targets: Sequence[str] = ()
    scrape_interval: str = "1s"
    ready_timeout: float = 20.0
    stop_timeout: float = 10.0
    binary: str = "prometheus"
    promtool: str = "promtool"
    url: str = field(default="", init=False)
    backfilled_samples: int = field(default=0, init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)

    # -- lifecycle

    def start(self) -> Self:
        if self._process is not None:
            raise PrometheusError("this Prometheus is already running")
        prometheus = shutil.which(self.binary)
        if prometheus is None:
            raise PrometheusError(f"{self.binary!r} is not on PATH; {INSTALL_HINT}")
        self._workdir = lifetime.mkdtemp("rollouts-prometheus-")
        try:
            storage = self._workdir / "data"
            if self.backfill is not None:
                self.backfilled_samples = self._create_blocks(self.backfill, storage)
            config = self._workdir / "prometheus.yml"
            config.write_text(self._config_text())
            self._launch(prometheus, config, storage)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop our process (SIGTERM, then SIGKILL after `stop_timeout`) and remove the temp dir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- steps

    def _config_text(self) -> str:
        lines = ["global:", f"  scrape_interval: {self.scrape_interval}", f"  scrape_timeout: {self.scrape_interval}"]
        if self.scrape_targets:
            targets = ", ".join(f"'{target}'" for target in self.scrape_targets)
            lines += ["scrape_configs:", "  - job_name: app", "    static_configs:", f"      - targets: [{targets}]"]
        return "\n".join(lines) + "\n"

    def _create_blocks(self, openmetrics: str, storage: Path) -> int:
        promtool = shutil.which(self.promtool)
        if promtool is None:
            raise PrometheusError(f"{self.promtool!r} is not on PATH; {INSTALL_HINT}")
        assert self._workdir is not None
        source = self._workdir / "backfill.om"
        source.write_text(openmetrics)
        created = _run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        "--max-block-duration=24h", str(source), str(storage)])
        if created.returncode != 0:
            raise PrometheusError(f"promtool could not backfill the history: {_tail(created.stderr + created.stdout)}")
        kept, wanted = self._stored_samples(promtool, storage), count_samples(openmetrics)
        if kept != wanted:
            raise PrometheusError(
                f"promtool kept {kept} of {wanted} samples; write each series in increasing time order, "
                "timestamps in seconds, no duplicates"
            )
        return kept

    @staticmethod
    def _stored_samples(promtool: str, storage: Path) -> int:
        listed = _run([promtool, "tsdb", "list", str(storage)])
        if listed.returncode != 0:
            raise PrometheusError(f"promtool tsdb list failed: {_tail(listed.stderr)}")
        rows = [line.split() for line in listed.stdout.splitlines()[1:] if line.strip()]
        return sum(int(row[4]) for row in rows)

    def _launch(self, prometheus: str, config: Path, storage: Path) -> None:
        assert self._workdir is not None
        log_path = self._workdir / "prometheus.log"
        for _ in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            with log_path.open("wb") as log:
                self._process = lifetime.popen(
                    [prometheus, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                     "--storage.tsdb.retention.time=100y", "--web.enable-lifecycle",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(log_path):
                return
            if "address already in use" not in log_path.read_text(errors="replace"):
                break
        raise PrometheusError(f"prometheus did not become ready: {_tail(log_path.read_text(errors='replace'))}")

    def _wait_ready(self, log_path: Path) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self._process.kill()
        self._process.wait()
        return False


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """subprocess.run(args, capture_output=True, text=True), the child bound to this process's life."""
    with lifetime.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept) if kept else "(no output)"
