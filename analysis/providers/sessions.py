"""HTTP sessions for callers outside the providers (lifecycle webhooks: rollouts.controller.hooks).

Rules:
- Only analysis/providers/ talks HTTP (DESIGN.md §2): a caller elsewhere gets its session
  here and sends through `fetch.fetch`, with its deadline, body cap and bounded redirects.
"""

from __future__ import annotations

import requests


def new_session() -> requests.Session:
    return requests.Session()
