"""How the demo's child processes and temp dirs are bound to the life of the process that made them.

Rules:
- A child dies with its parent. Every child (Prometheus, promtool, the app processes) is
  started by `popen()`: on Linux the child asks the kernel, before exec, for SIGKILL when
  its parent dies (prctl PR_SET_PDEATHSIG) and ends itself if the parent is already gone.
  The kernel sends that signal when the parent *thread* that forked ends, so every fork
  happens on one keeper thread that lives as long as the process. This holds for a
  SIGKILLed demo and for a killed test run (the suite's Prometheus fixture) alike.
- The next run cleans up after a killed one. Inside `recorded_run()` the process keeps a
  record, `run-PID.json` in `rollouts-demo-runs-UID` under the system temp dir (mode 0700,
  ours, not a symlink; else no record is kept): its pid and start time, each child's pid,
  start time and command line, each temp dir made by `mkdtemp()`. The record is rewritten
  whole (temp file, then rename) on each change; at the end what is still alive or present
  stays recorded and an empty record is removed. On entry, each record whose owner is dead
  (no such pid, or one with another start time) is cleaned up: a child is SIGKILLed only
  while /proc shows it with the recorded start time and command line (never a reused pid);
  a temp dir is removed only when it is one of ours, a `rollouts-` dir right in the temp dir.
- Signals (Ctrl-C, SIGTERM, a second one during cleanup) are rollouts.demo.signals' part.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
Child = subprocess.Popen[Any]


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()  # loaded before any fork: the child only calls it

# ---------------------------------------------------------------- /proc


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of a process; None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _start_time(pid: int) -> int | None:
    """Start time of a live process (a zombie is not live); None when there is none."""
    found = _stat(pid)
    return None if found is None or found[0] in "ZXx" else found[1]


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def _identity(pid: int) -> dict[str, Any]:
    return {"pid": pid, "start": _start_time(pid), "cmdline": _cmdline(pid)}


def _still_the_same(entry: dict[str, Any]) -> bool:
    """The recorded process is alive and verifiably the one recorded (start time and command line)."""
    pid, start, cmdline = entry.get("pid"), entry.get("start"), entry.get("cmdline")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(start, int) or not cmdline:
        return False
    return _start_time(pid) == start and _cmdline(pid) == cmdline


def _owner_alive(data: dict[str, Any]) -> bool:
    pid, start = data.get("pid"), data.get("start")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if not isinstance(start, int):  # no /proc when it was written: the pid is all there is
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return _start_time(pid) == start


# ---------------------------------------------------------------- the run record


def state_dir() -> Path | None:
    """This user's private dir of run records under the system temp dir; None when it is not safe to use."""
    path = Path(tempfile.gettempdir()) / f"rollouts-demo-runs-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as err:
        log.warning("no record of the demo's processes: %s", err)
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning("no record of the demo's processes: %s is not a private dir of this user", path)
        return None
    return path


class _Record:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {**_identity(os.getpid()), "children": [], "paths": []}

    def add(self, key: str, value: object) -> None:
        with self.lock:
            self.data[key].append(value)
            self._prune()
            self._write()

    def save(self) -> None:
        with self.lock:
            self._write()

    def finish(self) -> None:
        with self.lock:
            self._prune()
            if self.data["children"] or self.data["paths"]:
                self._write()
                return
            try:
                self.path.unlink(missing_ok=True)
            except OSError as err:
                log.warning("cannot remove the record %s: %s", self.path, err)

    def _prune(self) -> None:
        self.data["children"] = [child for child in self.data["children"] if _still_the_same(child)]
        self.data["paths"] = [path for path in self.data["paths"] if os.path.lexists(path)]

    def _write(self) -> None:
        """Best effort: a record that cannot be written costs the clean-up after a kill, not the run."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)
        except OSError as err:
            log.warning("cannot write the record %s: %s", self.path, err)


_record: _Record | None = None


def _ours(path: Path, state: Path) -> bool:
    """A dir we may remove: a `rollouts-` dir of this user right in the temp dir, not the record dir."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (path.parent == state.parent and path.name.startswith("rollouts-") and path != state
            and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid())


def clean_stale(state: Path) -> list[int]:
    """Clean up after every recorded run whose owner is dead; the owners' pids."""
    cleaned: list[int] = []
    for path in sorted(state.glob("run-*.json")):
        try:
            data = json.loads(path.read_text())
            children = [c for c in data.get("children", []) if isinstance(c, dict)]
            dirs = [Path(p) for p in data.get("paths", []) if isinstance(p, str)]
            if _owner_alive(data):
                continue
        except (OSError, ValueError, AttributeError, TypeError):  # not one of our records: drop it
            path.unlink(missing_ok=True)
            continue
        for child in children:
            if _still_the_same(child):
                try:
                    os.kill(child["pid"], signal.SIGKILL)
                except OSError:
                    pass
        for one in dirs:
            if _ours(one, state):
                shutil.rmtree(one, ignore_errors=True)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        cleaned.append(data.get("pid", 0))
    return cleaned


@contextmanager
def recorded_run() -> Iterator[None]:
    """Clean up after killed runs, then record this run's children and temp dirs until the end."""
    global _record
    state = state_dir() if _record is None else None
    if state is None:
        yield
        return
    for pid in clean_stale(state):
        log.warning("cleaned up after a demo that was killed (pid %s)", pid)
    record = _Record(state / f"run-{os.getpid()}.json")
    record.save()
    _record = record
    try:
        yield
    finally:
        _record = None
        record.finish()


def mkdtemp(prefix: str) -> Path:
    """A new temp dir (tempfile.mkdtemp), recorded when inside `recorded_run()`; the caller removes it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if _record is not None:
        _record.add("paths", str(path))
    return path


# ---------------------------------------------------------------- children


def _bound_to(parent: int) -> Callable[[], None]:
    prctl, kill = _prctl, int(signal.SIGKILL)

    def preexec() -> None:  # runs in the child between fork and exec
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the prctl: nobody would stop us
                os._exit(1)
    return preexec


Jobs = queue.SimpleQueue[tuple[Callable[[], Child], Future[Child]]]
_keepers: dict[int, Jobs] = {}  # pid -> the keeper's jobs (a forked copy of this process needs its own)
_keepers_lock = threading.Lock()


def _keep(jobs: Jobs) -> None:
    while True:
        start, done = jobs.get()
        if done.set_running_or_notify_cancel():
            try:
                done.set_result(start())
            except BaseException as err:  # noqa: BLE001 - handed to the caller, who re-raises it
                done.set_exception(err)


def popen(args: Sequence[str], **options: Any) -> Child:
    """subprocess.Popen(args, **options) forked on the keeper thread, bound to die with this process."""
    parent = os.getpid()

    def start() -> Child:
        child: Child = subprocess.Popen(args, preexec_fn=_bound_to(parent), **options)
        if _record is not None:
            _record.add("children", _identity(child.pid))
        return child

    with _keepers_lock:
        jobs = _keepers.get(parent)
        if jobs is None:
            jobs = _keepers[parent] = queue.SimpleQueue()
            threading.Thread(target=_keep, args=(jobs,), name="rollouts-children", daemon=True).start()
    done: Future[Child] = Future()
    jobs.put((start, done))
    try:
        return done.result()
    except KeyboardInterrupt:
        if not done.cancel() and done.exception() is None:  # started: stop the child nobody will own
            child = done.result()
            child.kill()
            child.wait()
        raise
