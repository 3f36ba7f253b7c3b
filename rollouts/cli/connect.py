"""How the CLI reaches a cluster: `--kubeconfig`, `--context`, `-n/--namespace`.

Rules:
- The kubeconfig is `--kubeconfig`, else `$KUBECONFIG` (first existing path of the list),
  else `~/.kube/config`, else the in-cluster service account. The namespace is `-n`,
  else the context's namespace, else "default".
- Mistakes are one clear line and exit 1, never a traceback: a kubeconfig that does not
  exist, a context it does not define (listing the ones it does), an unreachable server,
  a forbidden verb (403), a missing object (`rollout "x" not found in namespace "y"`).
- The process-wide `Runtime` holds what tests replace: the clock, `sleep`, whether a TTY
  is attached, and `make_cluster` (a factory; None means KubeCluster from the kubeconfig).
  Swap it with `use_runtime(...)`; commands read it once per call, never cache it.
- Only rollouts.kube.cluster imports `kubernetes`; it is imported here lazily, so `--help` and
  `set image --file` do not pay for it. A command that only reads and does not watch says so
  with the parser default `reads_only=True` (`get rollout`, `list rollouts`): it gets rollouts.kube.light's
  http.client reader when the kubeconfig needs nothing that reader lacks, else KubeCluster.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from rollouts.cli import CommandError
from rollouts.platform.clock import Clock, SystemClock
from rollouts.platform.cluster import Cluster, ClusterError, Conflict, Forbidden, NotFound, Unavailable

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
REQUEST_TIMEOUT = 15.0


@dataclass(frozen=True)
class Target:
    """Where a command points: kubeconfig file (None = in-cluster), context, namespace."""

    kubeconfig: Path | None
    context: str | None
    namespace: str
    server: str = ""

    def describe(self) -> str:
        where = f'context "{self.context}"' if self.context else "the in-cluster service account"
        return f"{where} ({self.server})" if self.server else where


@dataclass(frozen=True)
class Runtime:
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], None] = time.sleep
    make_cluster: Callable[[Target], Cluster] | None = None
    tty: bool | None = None  # None: ask sys.stdout
    watch: bool = True  # False: poll with `sleep` (tests on a stepped clock)

    def is_tty(self) -> bool:
        return sys.stdout.isatty() if self.tty is None else self.tty


_runtime = Runtime()


def runtime() -> Runtime:
    return _runtime


@contextmanager
def use_runtime(new: Runtime | None = None, **changes: Any) -> Iterator[Runtime]:
    """Run with `new` (or the current runtime with `changes`), then put the old one back."""
    global _runtime
    old = _runtime
    _runtime = replace(new or old, **changes)
    try:
        yield _runtime
    finally:
        _runtime = old


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster connection")
    group.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context (default: its current-context)")
    group.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's, else 'default')")


# --- resolving the target --------------------------------------------------------------

def _kubeconfig_path(flag: str | None) -> Path | None:
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise CommandError(f"kubeconfig {path} does not exist: pass --kubeconfig PATH to an existing file")
        return path
    env = os.environ.get("KUBECONFIG", "")
    candidates = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    for path in candidates:
        if path.is_file():
            return path
    if candidates:
        raise CommandError(f"KUBECONFIG={env} names no existing file: fix it or pass --kubeconfig PATH")
    default = Path("~/.kube/config").expanduser()
    if default.is_file():
        return default
    if IN_CLUSTER_TOKEN.is_file() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise CommandError(f"no kubeconfig: {default} does not exist and this is not a pod; "
                       "pass --kubeconfig PATH or set KUBECONFIG")


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CommandError(f"kubeconfig {path} cannot be read: {err}") from None
    if not isinstance(data, dict):
        raise CommandError(f"kubeconfig {path} is not a kubeconfig (expected a mapping with contexts and clusters)")
    return data


def _named(items: Any, name: str) -> dict[str, Any] | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get("context") or item.get("cluster") or {}
            return body if isinstance(body, dict) else {}
    return None


def resolve(args: argparse.Namespace) -> Target:
    """The target named by the flags; errors name the file and the fix."""
    path = _kubeconfig_path(getattr(args, "kubeconfig", None))
    if path is None:
        return Target(None, None, args.namespace or _in_cluster_namespace())
    config = _read_kubeconfig(path)
    name = getattr(args, "context", None) or config.get("current-context")
    contexts = [c.get("name") for c in config.get("contexts") or [] if isinstance(c, dict)]
    if not name:
        raise CommandError(f"kubeconfig {path} has no current-context: pass --context "
                           f"(contexts: {', '.join(map(str, contexts)) or 'none'})")
    context = _named(config.get("contexts"), name)
    if context is None:
        raise CommandError(f'context "{name}" is not in kubeconfig {path} '
                           f"(contexts: {', '.join(map(str, contexts)) or 'none'}): pass --context with one of those")
    cluster = _named(config.get("clusters"), str(context.get("cluster", ""))) or {}
    namespace = getattr(args, "namespace", None) or context.get("namespace") or "default"
    return Target(path, name, str(namespace), str(cluster.get("server", "")))


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_TOKEN.with_name("namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def connect(args: argparse.Namespace) -> tuple[Cluster, Target]:
    """The Cluster the flags point at, and where that is."""
    if _runtime.make_cluster is not None:
        target = Target(None, getattr(args, "context", None) or "in-process",
                        getattr(args, "namespace", None) or "default", "in-process")
        return _runtime.make_cluster(target), target
    target = resolve(args)
    try:
        if target.kubeconfig is not None and getattr(args, "reads_only", False) and not getattr(args, "watch", False):
            from rollouts.kube.light import light_cluster

            light = light_cluster(target.kubeconfig, target.context, request_timeout=REQUEST_TIMEOUT)
            if light is not None:
                return light, target
        from rollouts.kube.cluster import KubeCluster  # lazily: the kubernetes client is slow to import

        cluster = KubeCluster(kubeconfig=target.kubeconfig, context=target.context, request_timeout=REQUEST_TIMEOUT)
    except ClusterError as err:
        raise CommandError(str(err)) from None
    return cluster, target


@contextmanager
def session(args: argparse.Namespace) -> Iterator[tuple[Cluster, Target]]:
    """`connect(args)` for the length of a command; a client we opened is closed after."""
    cluster, target = connect(args)
    try:
        yield cluster, target
    finally:
        close = getattr(cluster, "close", None)
        if _runtime.make_cluster is None and callable(close):
            close()


def with_cluster(func: Callable[[argparse.Namespace, Cluster, Target], int]) -> Callable[[argparse.Namespace], int]:
    """Turn `func(args, cluster, target)` into a command `func(args)` run in a session."""
    def command(args: argparse.Namespace) -> int:
        with session(args) as (cluster, target):
            return func(args, cluster, target)

    command.__name__ = command.__qualname__ = func.__name__
    command.__doc__ = func.__doc__
    return command


# --- turning cluster errors into one line ------------------------------------------------

# How rollouts.kube.cluster words a request that never got an HTTP answer.
_UNREACHED = ("cannot reach the Kubernetes API", "dropped the answer", "broke:")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


def _root_cause(message: str) -> str | None:
    """`Connection refused` out of urllib3's `Max retries exceeded ... [Errno 111] ...`;
    None when the server was reached and answered with an error (5xx, 429)."""
    if not any(marker in message for marker in _UNREACHED):
        return None
    found = _ERRNO.search(message)
    if found:
        return found.group(1).strip()
    return "timed out" if "timed out" in message.lower() else message


@contextmanager
def errors(target: Target, *, kind: str = "rollout", name: str | None = None) -> Iterator[None]:
    """Map the port's errors to CommandError messages that say what to do."""
    try:
        yield
    except NotFound as err:
        if name is None:
            raise CommandError(f'{err} (namespace "{target.namespace}")') from None
        raise CommandError(f'{kind} "{name}" not found in namespace "{target.namespace}"') from None
    except Forbidden as err:
        raise CommandError(f"forbidden by {target.describe()}: {err}; ask for RBAC on {kind}s "
                           f'in namespace "{target.namespace}"') from None
    except Unavailable as err:
        cause = _root_cause(str(err))
        if cause is None:  # it answered: 5xx or 429
            raise CommandError(f"the cluster of {target.describe()} failed the request: {err}; "
                               "retry, or look at the API server") from None
        raise CommandError(f"cannot reach the cluster of {target.describe()}: {cause}; "
                           "check that the server is up and that --context names the right cluster") from None
    except Conflict as err:
        raise CommandError(f"{kind} {name or ''} changed while being updated: {err}; retry the command") from None
    except ClusterError as err:
        raise CommandError(f"{kind} {name or ''}: {err}".replace("  ", " ")) from None
