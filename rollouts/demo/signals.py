"""How SIGINT and SIGTERM stop the demo: one orderly cleanup, then exit status 130, whatever comes after.

Rules:
- Inside `interrupts()` (main thread): the first SIGINT or SIGTERM raises
  KeyboardInterrupt, once; later ones are ignored. Inside `shielded()` (cleanup) none
  raises; one that came is raised when the shield ends. After an interrupt both signals
  stay ignored when `interrupts()` ends, so the process leaves with its own exit status
  (130) and a second Ctrl-C during cleanup or shutdown cannot kill it by signal.
- Outside `interrupts()` (the demo run in-process, or from another thread) `shielded()`
  ignores both signals while it lasts (main thread only), as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Signals:
    raised: bool = False
    pending: bool = False
    shields: int = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.raised:
            return
        if self.shields:
            self.pending = True
            return
        self.raise_now()

    def raise_now(self) -> None:
        self.raised, self.pending = True, False
        raise KeyboardInterrupt


_signals: _Signals | None = None


@contextmanager
def interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt once (main thread); see the module's rules."""
    global _signals
    if threading.current_thread() is not threading.main_thread() or _signals is not None:
        yield
        return
    state = _Signals()
    old = {sig: signal.signal(sig, state.handle) for sig in SIGNALS}
    _signals = state
    try:
        yield
    finally:
        _signals = None
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_IGN if state.raised or state.pending else handler)


@contextmanager
def shielded() -> Iterator[None]:
    """No KeyboardInterrupt from SIGINT or SIGTERM inside (cleanup); one that came is raised after."""
    state = _signals
    if state is not None:
        state.shields += 1
        try:
            yield
        finally:
            state.shields -= 1
        if state.pending and not state.shields:
            state.raise_now()
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in SIGNALS}  # outside interrupts(): ignore
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def close_shielded(stack: ExitStack) -> None:
    """Close `stack` inside `shielded()`; a KeyboardInterrupt that came before the shield was up
    does not skip the cleanup: the rest is closed, then it goes on."""
    try:
        with shielded():
            stack.close()
    except KeyboardInterrupt:
        with shielded():
            stack.close()
        raise
