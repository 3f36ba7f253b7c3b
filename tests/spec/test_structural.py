"""rollouts.spec.structural answers as openapi_schema_validator's OAS30Validator does, error for error.

The corpus: every document of our kinds in examples/ and tests/spec/bad/, and, for each, a
set of seeded mutations (every leaf replaced by a value of each other JSON type and by
None, every mapping stripped of one key, None pushed into every list, an unknown key added
at every mapping) checked against the generated schema of its kind. For each, the two
validators must give the same errors (keyword, path, message) in the same order: that is
what keeps `rollouts lint`'s lines byte-identical now that it no longer imports jsonschema.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from rollouts.spec import crdschema, manifests, structural
from rollouts.spec.manifests import drop_nulls

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun", "Experiment")
OTHER_VALUES: tuple[Any, ...] = ("text", 7, 0.5, True, [], {}, None, "30s", 1)


def corpus() -> list[dict[str, Any]]:
    files = sorted((ROOT / "examples").rglob("*.yaml")) + sorted((ROOT / "tests" / "spec" / "bad").glob("*.yaml"))
    loaded = manifests.load([str(f) for f in files])
    return [doc.data for doc in loaded.documents if isinstance(doc.data, dict) and doc.data.get("kind") in KINDS]


def paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*at, index))


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def mutations(doc: dict[str, Any], rng: random.Random, limit: int = 60) -> Iterator[dict[str, Any]]:
    every = list(paths(doc))[1:]
    for path in rng.sample(every, min(limit, len(every))):
        parent, last = at(doc, path[:-1]), path[-1]
        for value in rng.sample(OTHER_VALUES, 3):
            changed = copy.deepcopy(doc)
            at(changed, path[:-1])[last] = value
            yield changed
        if isinstance(parent, dict):
            changed = copy.deepcopy(doc)
            del at(changed, path[:-1])[last]
            yield changed
            changed = copy.deepcopy(doc)
            at(changed, path[:-1])["unexpectedField"] = {"x": 1}
            yield changed
        if isinstance(at(doc, path), list):
            changed = copy.deepcopy(doc)
            at(changed, path).append(None)
            yield changed


@functools.cache
def oas30(kind: str) -> Any:
    return OAS30Validator(crdschema.generated_schema(kind))


def errors_of_both(kind: str, doc: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    schema = crdschema._our_validator(kind)  # the schema problems() checks against, read once
    instance = drop_nulls(doc)
    ours = [(e.validator, list(e.path), e.message, e.validator_value) for e in structural.iter_errors(schema, instance)]
    theirs = [(e.validator, list(e.absolute_path), e.message, e.validator_value)
              for e in oas30(kind).iter_errors(instance)]
    return ours, theirs


def test_the_corpus_is_there() -> None:
    kinds = {doc["kind"] for doc in corpus()}
    assert kinds >= {"Rollout", "AnalysisTemplate", "AnalysisRun", "Experiment"}


def test_it_gives_oas30s_errors_in_oas30s_order() -> None:
    rng = random.Random(14)
    checked = failing = 0
    for doc in corpus():
        for candidate in [doc, *mutations(doc, rng, limit=4)]:
            ours, theirs = errors_of_both(doc["kind"], candidate)
            assert ours == theirs, candidate
            checked += 1
            failing += bool(ours)
    assert checked > 1000 and failing > 400  # the mutations do break documents


def test_what_a_hand_picked_document_gets() -> None:
    schema = {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "integer"}, "n": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "e": {"type": "string", "enum": ["x", "y"]},
        "m": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "l": {"type": "array", "items": {"type": "number"}}}}
    doc = {"a": True, "n": [], "e": "z", "m": {"k": 1}, "l": [1, None, "2"]}
    found = [(e.validator, e.path, e.message) for e in structural.iter_errors(schema, doc)]
    assert found == [
        ("required", (), "'b' is a required property"),
        ("type", ("a",), "True is not of type 'integer'"),
        ("anyOf", ("n",), "[] is not valid under any of the given schemas"),
        ("enum", ("e",), "'z' is not one of ['x', 'y']"),
        ("type", ("m", "k"), "1 is not of type 'boolean'"),
        ("type", ("l", 1), "None for not nullable"),
        ("type", ("l", 1), "None is not of type 'number'"),
        ("type", ("l", 2), "'2' is not of type 'number'"),
    ]
    assert [e.message for e in structural.iter_errors({"type": "object", "properties": {"a": {}},
                                                      "additionalProperties": False}, {"a": 1, "c": 2, "b": 3})] == [
        "Additional properties are not allowed ('b', 'c' were unexpected)"]


def test_a_keyword_it_does_not_know_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="'pattern' is not supported"):
        list(structural.iter_errors({"type": "string", "pattern": "^a"}, "b"))
