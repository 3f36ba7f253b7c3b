"""The webhook shell: POST the calls the plan asked for, bounded, and return their answers.

Rules (what is due and what an answer means: rollouts.plan.hooks; the fields: plan.hook_checks):
- One call is one bounded fetch (analysis.providers.fetch): a JSON POST inside ONE deadline of
  the hook's `timeout` covering every attempt and wait; `retries` more attempts after a
  connection error, a timeout, 429 or 5xx (tenacity, exponential waits from 0.2 s, at most 2 s,
  never past the deadline); at most 3 redirects, to http(s) only; the answer body is capped
  at 64 KiB and only its first 200 characters are kept, in the error of a non-2xx answer.
- Never raises: every fault is an `Answer` with no code and an error (a refused connection, a
  timeout, a redirect loop, a URL that is not http(s)), so nothing can promote by a fault.
- The latency is wall time (time.perf_counter); the answer's time is the controller clock's.
- `on_call(hook_type, result, seconds, namespace, rollout)`, when given, sees every call (result:
  ok, refused, error); the controller's metrics count them (ControllerMetrics.hook_call).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from rollouts.plan.hook_calls import Answer, Call
from rollouts.plan.hook_checks import retries_of, timeout_of
from rollouts.platform.clock import Clock

__all__ = ["HookCaller", "OnCall"]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
ERROR_TEXT = 200
OnCall = Callable[[str, str, float, str, str], None]  # type, result, seconds, namespace, rollout


class HookCaller:
    def __init__(self, *, clock: Clock, on_call: OnCall | None = None, session: Any = None,
                 first_wait: float = 0.2, max_wait: float = 2.0) -> None:
        self.clock, self.on_call = clock, on_call
        self._session = session
        self._waits = (first_wait, max_wait)

    def call_all(self, calls: Sequence[Call]) -> list[tuple[Call, Answer]]:
        """Each call in order (hooks run one after the other, as Flagger runs them)."""
        return [(call, self.call(call)) for call in calls]

    def call(self, call: Call) -> Answer:
        started = time.perf_counter()
        code, error = self._post(call)
        seconds = time.perf_counter() - started
        answer = Answer(at=self.clock.now(), code=code, latency_ms=round(seconds * 1000), error=error)
        if self.on_call is not None:
            try:
                self.on_call(call.hook.type, answer.result, seconds, str(call.payload.get("namespace", "")),
                             str(call.payload.get("name", "")))
            except Exception:
                log.exception("webhook on_call callback failed")
        return answer

    def _post(self, call: Call) -> tuple[int | None, str | None]:
        import tenacity  # lazily: lint and eval never call a webhook

        from analysis.providers import ProviderError
        from analysis.providers.fetch import Request, fetch, shown_url
        from analysis.providers.sessions import new_session

        hook = call.hook
        if not hook.url.lower().startswith(("http://", "https://")):
            return None, "the URL is not http(s)"  # validation refuses it first; never called
        if self._session is None:
            self._session = new_session()
        shown = f"webhook {hook.name!r}: POST {shown_url(hook.url)}"
        request = Request("POST", hook.url, shown, timeout_of(hook), MAX_BODY,
                          data=json.dumps(call.payload, sort_keys=True).encode(), content_type="application/json")
        last: list[int] = []

        def describe(answer: Any) -> str:
            last.append(answer.status)
            return f"HTTP {answer.status}"

        first, most = self._waits
        try:
            answer = fetch(self._session, request, attempts=retries_of(hook) + 1,
                           wait=tenacity.wait_exponential(multiplier=first, max=most), describe=describe)
        except ProviderError as err:
            text = str(err).removeprefix(shown).lstrip(": ")
            return (last[-1] if last and "HTTP" in text else None), text[:ERROR_TEXT]
        if 200 <= answer.status < 300:
            return answer.status, None
        body = answer.text().strip()[:ERROR_TEXT]
        return answer.status, body or None  # a refusal's body says why (Flagger shows it in events)
