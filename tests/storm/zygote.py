"""A fork server for kill storms: `rollouts controller` processes without the import cost.

A fresh `python -m rollouts controller` spends about a second of CPU importing (the
kubernetes client, the analysis providers) before it reconciles anything; a storm of a
thousand kills on two shared cores would spend most of its time there. This script
imports the controller once, then, for each JSON line on stdin (`{"argv": [...], "log":
PATH}`), forks a child that runs `rollouts.cli.main(argv)` exactly as the console script
does (its own session, stdout and stderr to PATH, default signal handlers) and answers
the child's pid on stdout. The child is a real OS process holding no state from any
earlier child: nothing has started in the parent but imports. It is killed with SIGKILL
by the storm like any other process; the parent ignores SIGCHLD, so the kernel reaps it.

Run as `python tests/storm/zygote.py`; it exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def preload() -> None:
    """What `rollouts controller` imports before it starts (rollouts.cli.controller._run)."""
    import analysis.providers.registry  # noqa: F401
    import rollouts.cli
    import rollouts.cli.connect
    import rollouts.cli.controller
    import rollouts.controller.manager
    import rollouts.controller.metrics
    import rollouts.kube.cluster  # noqa: F401


def child(argv: list[str], log: str) -> None:
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    from rollouts.cli import main

    code = 1
    try:
        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(list(request["argv"]), str(request["log"]))
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve()
