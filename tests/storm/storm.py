"""The kill storm: controller processes SIGKILLed at seeded random moments while a fleet rolls out.

Rules:
- Shards: each namespace has its own `rollouts controller --namespace NS` process (no
  leader election: a killed process is dead, waited for, before its replacement starts,
  so two never write at once). Many shards share one API server and one history.
- A process is killed with SIGKILL at a seeded random moment: most of the time 0.3-1.5 s
  after it logged `controller starting` (mid-reconcile, mid-pause, mid-measurement), one
  time in ten during its start-up (mid-list). It is replaced at once on the same API
  server. Processes come from the zygote (tests/storm/zygote.py: forked after the imports,
  so a restart costs no import time) and, every `exec_every`-th restart, from a fresh
  `python -m rollouts controller`, the console script's own path.
- Rounds: every Rollout goes through revisions `app:good-N`/`app:bad-N` (seeded, about a
  third bad; `pauses` only good). When the revision is at rest (promoted, or aborted) its
  outcome is recorded and the next one is applied, until the kill budget is spent. Then
  one controller is left running and every Rollout must reach rest (bounded polling).
- Nothing here asserts on time: deadlines only bound the waits; the verdicts are states.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rollouts.platform.cluster import ClusterError
from rollouts.platform.labels import HASH_LABEL
from tests.storm import fleet

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).with_name("zygote.py")
READY = "controller starting"
WAIT_SECONDS = 20.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_dead(pid: int, popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None:
        popen.wait(WAIT_SECONDS)
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not _alive(pid), f"controller {pid} outlived SIGKILL"


class Zygote:
    """The fork server (tests/storm/zygote.py) as a subprocess; `spawn` answers a child's pid."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      cwd=ROOT, text=True, start_new_session=True)
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self._in: TextIO = self.popen.stdin
        self._out: TextIO = self.popen.stdout
        assert "ready" in json.loads(self._out.readline() or "{}"), "the zygote did not start"

    def spawn(self, argv: list[str], log: Path) -> int:
        self._in.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self._in.flush()
        return int(json.loads(self._out.readline())["pid"])

    def close(self) -> None:
        self._in.close()
        self.popen.wait(WAIT_SECONDS)
        self._out.close()


@dataclass
class Process:
    """One `rollouts controller` process: forked by the zygote, or exec'd (`popen`)."""

    pid: int
    log: Path
    offset: int  # where this process's lines start in the shard's log
    popen: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    ready_at: float | None = None

    def ready(self) -> bool:
        if self.ready_at is None:
            with contextlib.suppress(OSError), self.log.open("rb") as out:
                out.seek(self.offset)
                if READY.encode() in out.read():
                    self.ready_at = time.monotonic()
        return self.ready_at is not None

    def exited(self) -> bool:
        return (self.popen.poll() is not None) if self.popen is not None else not _alive(self.pid)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        _wait_dead(self.pid, self.popen)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            _wait_dead(self.pid, self.popen)
        except (AssertionError, subprocess.TimeoutExpired):
            self.kill()


@dataclass
class Shard:
    namespace: str
    kubeconfig: Path
    log: Path
    process: Process | None = None
    kill_at: float | None = None
    kill_before_ready: bool = False


@dataclass
class Round:
    namespace: str
    name: str
    revision: int
    image: str
    good: bool
    outcome: str | None = None
    pod_hash: str | None = None


@dataclass
class Tally:
    kills: int = 0
    kills_in_startup: int = 0
    exec_starts: int = 0
    fork_starts: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    during: Counter[str] = field(default_factory=Counter)  # what the shard's Rollouts were doing at the kills

    def line(self) -> str:
        during = ", ".join(f"{what} {n}" for what, n in sorted(self.during.items()))
        return (f"{self.kills} SIGKILLs ({self.kills_in_startup} during start-up); restarts: {self.fork_starts} "
                f"forked, {self.exec_starts} exec'd; Rollouts caught {during}")


class Storm:
    def __init__(self, cluster: Any, shards: list[Shard], names: dict[str, list[str]], *, seed: int,
                 exec_every: int = 10, workers: int = 2) -> None:
        self.cluster, self.shards, self.names = cluster, shards, names
        self.rng = random.Random(seed)
        self.verdict_rng = random.Random(seed + 1)
        self.exec_every, self.workers = exec_every, workers
        self.tally = Tally()
        self.rounds: list[Round] = []
        self.current: dict[tuple[str, str], Round] = {}
        self.zygote: Zygote | None = None
        self._starts = 0

    # --- processes -------------------------------------------------------------------
    def argv(self, shard: Shard) -> list[str]:
        return ["controller", "--kubeconfig", str(shard.kubeconfig), "--namespace", shard.namespace,
                "--no-leader-elect", "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0",
                "--log-format", "json", "--workers", str(self.workers), "--analysis-workers", str(self.workers)]

    def start(self, shard: Shard) -> None:
        self._starts += 1
        offset = shard.log.stat().st_size if shard.log.exists() else 0
        if self.zygote is None or (self.exec_every and self._starts % self.exec_every == 0):
            with shard.log.open("ab") as out:
                popen = subprocess.Popen([sys.executable, "-m", "rollouts", *self.argv(shard)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                                         start_new_session=True)
            shard.process = Process(popen.pid, shard.log, offset, popen=popen)
            self.tally.exec_starts += 1
        else:
            shard.process = Process(self.zygote.spawn(self.argv(shard), shard.log), shard.log, offset)
            self.tally.fork_starts += 1
        shard.kill_before_ready = self.rng.random() < 0.1
        shard.kill_at = (shard.process.started + self.rng.uniform(0.0, 0.5)) if shard.kill_before_ready else None

    def tick(self, shard: Shard) -> bool:
        """Kill the shard's process if its moment came (and restart it); True when it was killed."""
        process = shard.process
        assert process is not None
        now = time.monotonic()
        if process.exited():
            self.tally.unexpected_exits.append(f"{shard.namespace}: controller {process.pid} exited by itself")
            self.start(shard)
            return False
        if shard.kill_at is None and process.ready():
            shard.kill_at = (process.ready_at or now) + self.rng.uniform(0.3, 1.5)
        if shard.kill_at is None or now < shard.kill_at:
            return False
        if shard.kill_before_ready and process.ready():
            shard.kill_before_ready = False  # it was quicker than the moment drawn: an ordinary kill
        self._note_what_is_happening(shard)
        process.kill()
        self.tally.kills += 1
        self.tally.kills_in_startup += shard.kill_before_ready
        self.start(shard)
        return True

    def _note_what_is_happening(self, shard: Shard) -> None:
        with contextlib.suppress(ClusterError):
            running = {(r["metadata"].get("ownerReferences") or [{}])[0].get("name")
                       for r in self.cluster.list("AnalysisRun", shard.namespace)
                       if (r.get("status") or {}).get("phase") in (None, "", "Pending", "Running")}
            for ro in self.cluster.list("Rollout", shard.namespace):
                st = ro.get("status") or {}
                if st.get("pauseConditions"):
                    self.tally.during["in a pause"] += 1
                elif ro["metadata"]["name"] in running:
                    self.tally.during["measuring"] += 1
                elif st.get("phase") == "Progressing":
                    self.tally.during["stepping"] += 1

    # --- rounds ----------------------------------------------------------------------
    def begin(self, namespace: str, name: str) -> None:
        """The first round: the revision the Rollout was created with (good-0)."""
        self._track(Round(namespace, name, 0, fleet.image(0, True), True))

    def _track(self, round_: Round) -> None:
        self.rounds.append(round_)
        self.current[(round_.namespace, round_.name)] = round_

    def next_round(self, previous: Round) -> None:
        good = fleet.shape_of(previous.name) not in fleet.ANALYZED or self.verdict_rng.random() >= 0.35
        revision = previous.revision + 1
        following = Round(previous.namespace, previous.name, revision, fleet.image(revision, good), good)
        self.cluster.patch("Rollout", previous.name, previous.namespace, {"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": following.image}]}}}})
        self._track(following)

    def follow_rounds(self, advance: bool) -> int:
        """Record the outcome of every round at rest, and start the next one when `advance`;
        returns how many rounds are still under way."""
        going = 0
        for namespace in {s.namespace for s in self.shards}:
            images = {(rs["metadata"].get("labels") or {}).get(HASH_LABEL):
                      rs["spec"]["template"]["spec"]["containers"][0]["image"]
                      for rs in self.cluster.list("ReplicaSet", namespace)}
            for ro in self.cluster.list("Rollout", namespace):
                round_ = self.current.get((namespace, ro["metadata"]["name"]))
                if round_ is None:
                    continue
                if round_.outcome is None:
                    round_.outcome, round_.pod_hash = _outcome(ro, images, round_.image)
                if round_.outcome is None:
                    going += 1
                elif advance:
                    self.next_round(round_)
                    going += 1
        return going

    def promoted(self) -> list[tuple[str, str, str]]:
        return [(r.namespace, r.name, r.pod_hash) for r in self.rounds
                if r.outcome == "promoted" and r.pod_hash and r.revision > 0]

    def mismatches(self) -> list[str]:
        wrong = []
        for r in self.rounds:
            expected = "promoted" if r.good else "aborted"
            if r.outcome not in (None, expected):
                wrong.append(f"Rollout {r.namespace}/{r.name} revision {r.image}: {r.outcome}, expected {expected}")
        return wrong

    def unfinished(self) -> list[str]:
        return [f"Rollout {r.namespace}/{r.name} revision {r.image} never came to rest"
                for r in self.current.values() if r.outcome is None]

    # --- the whole run ---------------------------------------------------------------
    def run(self, kills: int, *, give_up: float, settle: Callable[[], list[str]]) -> list[str]:
        """Kill until `kills`, then leave one process per shard running until every round is at
        rest and `settle()` (the end-state checks) has nothing to say, or `give_up` seconds
        pass; returns settle()'s last answer."""
        deadline = time.monotonic() + give_up
        for shard in self.shards:
            self.start(shard)
        last_rounds = 0.0
        while self.tally.kills < kills and time.monotonic() < deadline:
            for shard in self.shards:
                if self.tally.kills < kills:
                    self.tick(shard)
            if time.monotonic() - last_rounds > 0.2:
                self.follow_rounds(advance=True)
                last_rounds = time.monotonic()
            time.sleep(0.01)
        for shard in self.shards:  # the storm is over: the last processes live
            assert shard.process is not None
            if shard.process.exited():
                self.start(shard)
        answer = ["never checked"]
        while time.monotonic() < deadline:
            if self.follow_rounds(advance=False) == 0:
                answer = settle()
                if not answer:
                    break
            time.sleep(0.3)
        return answer

    def close(self) -> None:
        for shard in self.shards:
            if shard.process is not None:
                shard.process.stop()
        if self.zygote is not None:
            self.zygote.close()

    @contextlib.contextmanager
    def forking(self) -> Iterator[Storm]:
        self.zygote = Zygote()
        try:
            yield self
        finally:
            self.close()


def _outcome(ro: dict[str, Any], images: dict[Any, str], image: str) -> tuple[str | None, str | None]:
    """"promoted" or "aborted" once the Rollout's revision `image` is at rest, else None."""
    st = ro.get("status") or {}
    current = st.get("currentPodHash")
    if not current or images.get(current) != image:
        return None, None
    if st.get("abort") and st.get("phase") == "Degraded":
        return "aborted", current
    if st.get("phase") == "Healthy" and st.get("stableRS") == current:
        return "promoted", current
    return None, current


def figures(storm: Storm, history: Any, report: Any, where: str, seed: int) -> list[str]:
    """The lines a storm prints: kills, rounds, versions recorded, the invariant summary."""
    outcomes = Counter(r.outcome for r in storm.rounds)
    return [f"kill storm (seed {seed}, {where}): {storm.tally.line()}",
            f"rounds: {len(storm.rounds)} ({outcomes['promoted']} promoted, {outcomes['aborted']} aborted, "
            f"{outcomes[None]} unfinished); versions recorded: {history.count()}",
            f"invariants: {report.summary()}"]


def assert_survived(storm: Storm, report: Any, kills: int, unsettled: list[str]) -> None:
    """What every storm must show: the kills done, every round at rest with the outcome its
    verdict calls for, no process dying by itself, no invariant broken, and the storm having
    exercised what it is for (both verdicts, kills in pauses and mid-measurement)."""
    tails = "\n".join(f"--- {s.namespace}\n" + "\n".join(s.log.read_text(errors="replace").splitlines()[-15:])
                      for s in storm.shards if s.log.exists())
    assert storm.tally.kills >= kills, (storm.tally.line(), tails)
    assert not unsettled, (unsettled, tails)
    assert not storm.unfinished(), storm.unfinished()
    assert not storm.mismatches(), storm.mismatches()
    assert not storm.tally.unexpected_exits, (storm.tally.unexpected_exits, tails)
    assert not report.violations, "\n".join(report.violations[:30])
    outcomes = Counter(r.outcome for r in storm.rounds)
    assert outcomes["promoted"] > len(storm.rounds) // 3 and outcomes["aborted"] > 0, outcomes
    assert storm.tally.during["in a pause"] > 0 and storm.tally.during["measuring"] > 0, storm.tally.line()
    assert report.looked_at["step moves"] > 0 and report.looked_at["promotions with evidence"] > 0, report.summary()

