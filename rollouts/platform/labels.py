"""The labels and annotations Argo Rollouts and this controller put on objects, and the name hash.

Rules:
- One constant per key, with Argo's exact spelling: every layer (the plan, the adapters,
  the view, the demo) reads and writes these and no copy of them.
- `short_hash(value)` is a stable 10-character hash of a JSON value (dict key order does
  not matter) in the alphabet Kubernetes uses for generated names (no vowels, no 0/1/3):
  pod-template hashes, run names, ReplicaSet names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_LABEL = "rollouts-pod-template-hash"
INSTANCE_LABEL = "argo-rollouts.argoproj.io/controller-instance-id"
MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"
REVISION = "rollout.argoproj.io/revision"
DESIRED_REPLICAS = "rollout.argoproj.io/desired-replicas"
SCALE_DOWN_DEADLINE = "scale-down-deadline"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def short_hash(value: Any, length: int = 10) -> str:
    """A stable `length`-character hash of a JSON value (dict keys order-insensitive)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_SAFE))
        chars.append(_SAFE[digit])
    return "".join(chars)
