"""A demo's processes and temp dirs live no longer than the demo: a SIGKILLed demo takes its children
along and the next demo removes its temp dirs; Ctrl-C pressed again and again during the cleanup still
ends in exit 130 and one line. Real processes throughout, found in /proc; waits are bounded polls.

The demo runs as `python -m rollouts` from the root of the checkout these tests are in, with its own
TMPDIR, so a copy of the repository tests its own code and no other run's files are touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_prometheus
from tests.fixtures.children import Lines

REPO = Path(__file__).resolve().parents[2]
APP_LINE = r"app demo-\S+ \(demo:v1\) listening on"
Process = tuple[int, int, str]  # pid, start time, command line


def start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process, None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in "ZXx" else int(fields[19])


def alive(process: Process) -> bool:
    return start_time(process[0]) == process[1]


def children_of(parent: int) -> list[Process]:
    found: list[Process] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == parent and fields[0] not in "ZXx":
            found.append((int(entry.name), int(fields[19]), cmdline))
    return found


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


seen: list[Process] = []  # every child a test saw, killed after it in any case


@pytest.fixture(autouse=True)
def kill_what_was_seen() -> Iterator[None]:
    seen.clear()
    yield
    for process in seen:
        if alive(process):
            os.kill(process[0], signal.SIGKILL)


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The demos' own TMPDIR."""
    require_prometheus()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield tmp, dict(os.environ, TMPDIR=str(tmp))


def start_demo(env: dict[str, str]) -> tuple[subprocess.Popen[str], Lines, Lines]:
    """The demo and its stdout and stderr lines."""
    demo = subprocess.Popen([sys.executable, "-m", "rollouts", "demo", "--short", "--plain"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = Lines(demo.stderr)
    return demo, Lines(demo.stdout, stderr), stderr


def running_children(demo: subprocess.Popen[str], stdout: Lines) -> list[Process]:
    """Once an app listens: the demo's Prometheus and app processes."""
    stdout.wait_for(APP_LINE)
    children = children_of(demo.pid)
    seen.extend(children)
    assert any("prometheus --config.file=" in c[2] for c in children), children
    assert any("-m rollouts.demo.app --image demo:v1" in c[2] for c in children), children
    return children


def leftovers(tmp: Path) -> list[str]:
    """What is in the demos' TMPDIR besides the dir of run records, and any record in it."""
    records = [p for p in tmp.iterdir() if p.name.startswith("rollouts-demo-runs-")]
    others = sorted(p.name for p in tmp.iterdir() if p not in records)
    return others + sorted(r.name for p in records for r in p.iterdir())


def test_a_killed_demo_takes_its_children_along_and_the_next_demo_removes_its_temp_dirs(
        tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    tmp, env = tmpdir_env
    demo, stdout, _ = start_demo(env)
    try:
        children = running_children(demo, stdout)
        dirs = [p for p in tmp.iterdir() if p.name.startswith(("rollouts-demo-", "rollouts-prometheus-"))
                and not p.name.startswith("rollouts-demo-runs-")]
        assert {p.name.split("-")[1] for p in dirs} == {"demo", "prometheus"}, dirs
    finally:
        demo.kill()
        demo.wait(timeout=30)
    assert wait_until(lambda: not any(alive(c) for c in children), timeout=10), \
        f"still running after the demo was SIGKILLed: {[c for c in children if alive(c)]}"
    assert all(p.exists() for p in dirs)  # nobody could remove them: the next demo does

    second, stdout, stderr = start_demo(env)
    try:
        stdout.wait_for(r"cluster API at")
        seen.extend(children_of(second.pid))
        assert [p.name for p in dirs if p.exists()] == []
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert second.returncode == 130, stderr.text()
    assert leftovers(tmp) == []


def test_ctrl_c_again_and_again_during_the_cleanup_still_exits_130_with_one_line(
        tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    tmp, env = tmpdir_env
    demo, stdout, stderr = start_demo(env)
    try:
        children = running_children(demo, stdout)
    finally:
        demo.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while demo.poll() is None and time.monotonic() < deadline:  # a user pressing Ctrl-C until it is over
        time.sleep(0.02)
        try:
            demo.send_signal(signal.SIGINT)
        except ProcessLookupError:
            break
    demo.wait(timeout=30)
    err = stderr.text()
    assert demo.returncode == 130, err
    assert err.strip().splitlines() == ["rollouts demo: interrupted; every process the demo started has been stopped"]
    assert wait_until(lambda: not any(alive(c) for c in children), timeout=10)
    assert leftovers(tmp) == []


PROMETHEUS_FROM_A_THREAD = """
import sys, threading, time
from rollouts.demo.prometheus import PrometheusServer
server = PrometheusServer()
started = threading.Thread(target=server.start)  # the thread that asked for the fork ends at once
started.start()
started.join()
print(server.pid, server.url, flush=True)
time.sleep(120)
"""


def test_the_suites_prometheus_dies_with_the_process_that_started_it_even_from_a_thread(tmp_path: Path) -> None:
    require_prometheus()
    owner = subprocess.Popen([sys.executable, "-c", PROMETHEUS_FROM_A_THREAD], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        assert owner.stdout is not None
        pid, url = owner.stdout.readline().split()
        prometheus = (int(pid), start_time(int(pid)) or -1, "prometheus")
        seen.append(prometheus)
        with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as ready:
            assert ready.status == 200 and alive(prometheus)  # the starting thread is gone, Prometheus is not
    finally:
        owner.kill()
        owner.communicate(timeout=30)
    assert wait_until(lambda: not alive(prometheus), timeout=10), "Prometheus outlived its killed owner"


# --- the record of a killed run, cleaned by the next one (rollouts.demo.lifetime) -------------------------

def test_stale_runs_lose_only_verified_children_and_our_own_temp_dirs(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from rollouts.demo import lifetime

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    state = lifetime.state_dir()
    assert state is not None and state.parent == tmp_path and (state.stat().st_mode & 0o777) == 0o700
    ours, reused, renamed, mine = (subprocess.Popen(["sleep", "60"]) for _ in range(4))
    try:
        def entry(child: subprocess.Popen[bytes], **changes: object) -> dict[str, object]:
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
            return {"pid": child.pid, "start": start_time(child.pid), "cmdline": cmdline, **changes}

        (tmp_path / "rollouts-demo-old").mkdir()
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "rollouts-demo-deep").mkdir()
        (tmp_path / "rollouts-demo-link").symlink_to(tmp_path / "elsewhere")
        dead_owner = {"pid": os.getpid(), "start": 1, "cmdline": ["gone"]}  # our pid, another start: reused
        record = {**dead_owner, "children": [entry(ours), entry(reused, start=1), entry(renamed, cmdline=["x"])],
                  "paths": [str(tmp_path / n) for n in ("rollouts-demo-old", "elsewhere", "rollouts-demo-link")]
                  + [str(tmp_path / "elsewhere" / "rollouts-demo-deep"), str(state)]}
        (state / "run-1.json").write_text(json.dumps(record))
        live = {"pid": os.getpid(), "start": start_time(os.getpid()), "children": [entry(mine)],
                "paths": [str(tmp_path / "rollouts-demo-old")]}
        (state / "run-2.json").write_text(json.dumps(live))
        (state / "run-3.json").write_text("not json")

        assert lifetime.clean_stale(state) == [os.getpid()]
        assert ours.wait(timeout=10) == -signal.SIGKILL
        assert [p.poll() for p in (reused, renamed, mine)] == [None, None, None]  # not verifiably that process
        assert sorted(p.name for p in state.iterdir()) == ["run-2.json"]  # a live owner's record stays
        assert not (tmp_path / "rollouts-demo-old").exists()
        assert (tmp_path / "elsewhere" / "rollouts-demo-deep").is_dir() and state.is_dir()
        assert (tmp_path / "rollouts-demo-link").is_symlink()
    finally:
        for child in (ours, reused, renamed, mine):
            child.kill()
            child.wait()


def test_no_record_in_a_dir_others_can_write_or_that_is_a_symlink(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from rollouts.demo import lifetime

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = tmp_path / f"rollouts-demo-runs-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    assert lifetime.state_dir() is None
    shared.rmdir()
    (tmp_path / "target").mkdir(mode=0o700)
    shared.symlink_to(tmp_path / "target")
    assert lifetime.state_dir() is None


# --- signals: the first one interrupts, once; a cleanup is never cut short (rollouts.demo.signals) -------

def test_the_first_signal_interrupts_once_and_never_cuts_a_cleanup_short() -> None:
    from rollouts.demo import signals

    before = {sig: signal.getsignal(sig) for sig in signals.SIGNALS}
    steps: list[str] = []
    try:
        with signals.interrupts():
            with pytest.raises(KeyboardInterrupt), signals.shielded():
                signal.raise_signal(signal.SIGTERM)  # the handler runs before raise_signal returns
                steps.append("the cleanup went on")
            signal.raise_signal(signal.SIGINT)
            steps.append("a second signal is ignored")
        # on the way out with 130: a late Ctrl-C cannot end the process by signal
        assert [signal.getsignal(sig) for sig in signals.SIGNALS] == [signal.SIG_IGN, signal.SIG_IGN]
        with signals.interrupts():
            pass
        assert [signal.getsignal(sig) for sig in signals.SIGNALS] == [signal.SIG_IGN, signal.SIG_IGN]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert steps == ["the cleanup went on", "a second signal is ignored"]
    with signals.interrupts():  # not interrupted: the handlers it found are back
        pass
    assert {sig: signal.getsignal(sig) for sig in signals.SIGNALS} == before
