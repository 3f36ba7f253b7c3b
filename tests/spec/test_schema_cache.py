"""The generated CRD schema that `rollouts lint` validates against, cached on disk.

A hit, a miss, a corrupt file and a cache that cannot be written all validate alike (the
same problems, in the same order), and a file written under another models key is never
read: a changed model is a new key, so a stale schema cannot judge a manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollouts.spec import crdschema

BAD = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "x"},
       "spec": {"replicas": "three", "strategy": {"canary": {"steps": [{"setWeight": "half"}]}}}}


def fresh(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    monkeypatch.setenv("ROLLOUTS_CACHE_DIR", str(where))
    crdschema._our_validator.cache_clear()


def problems_of(doc: dict[str, Any]) -> list[str]:
    return [str(p) for p in crdschema.problems(doc)]


def test_cache_dir_follows_the_environment() -> None:
    assert crdschema.cache_dir({"ROLLOUTS_CACHE_DIR": "/c"}) == Path("/c")
    assert crdschema.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/rollouts")
    assert crdschema.cache_dir({}) == Path.home() / ".cache" / "rollouts"


def test_a_miss_writes_the_schema_and_a_hit_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh(monkeypatch, tmp_path)
    missed = crdschema.generated_schema("Rollout")
    files = list(tmp_path.glob("schema-Rollout-*.json"))
    assert [f.name for f in files] == [f"schema-Rollout-{crdschema.models_key()}.json"]
    assert json.loads(files[0].read_text()) == missed == crdschema.generated_schema("Rollout")
    assert missed["properties"]["spec"]["properties"]["replicas"]["type"] == "integer"
    on_miss = problems_of(BAD)
    assert on_miss and any("spec.replicas: must be an integer" in line for line in on_miss)
    fresh(monkeypatch, tmp_path)
    assert problems_of(BAD) == on_miss  # from the cache


def test_a_corrupt_or_unwritable_cache_validates_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh(monkeypatch, tmp_path / "first")
    expected = problems_of(BAD)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / f"schema-Rollout-{crdschema.models_key()}.json").write_text("{not json")
    fresh(monkeypatch, corrupt)
    assert problems_of(BAD) == expected
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    fresh(monkeypatch, blocked / "cache")  # its parent is a file: nothing can be written there
    assert problems_of(BAD) == expected


def test_a_schema_under_another_models_key_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "schema-Rollout-0000000000stale00000.json").write_text(json.dumps({"type": "string"}))
    fresh(monkeypatch, tmp_path)
    assert crdschema.generated_schema("Rollout")["type"] == "object"
