"""rollouts.spec.manifests parses with libyaml where it can: the same documents as PyYAML's
pure-Python parser, and the pure parser's own message, line and column for bad YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rollouts.spec import manifests

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted({*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/spec/**/*.yaml"), *ROOT.glob("crds/*.yaml")})
TRICKY = [
    "restartAt: 2024-01-01T00:00:00Z\nwhen: 2024-01-01\n",  # timestamps stay strings
    "a: yes\nb: off\nc: 0x1F\nd: 1e3\ne: .inf\nf: ~\ng: 0o17\nh: 012\n",  # YAML 1.1 scalars
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",  # anchors and merge keys
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "kind: List\nitems:\n  - {kind: Rollout}\n  - {kind: Service}\n",
    "a: 1\n---\n---\nb: 2\n",
    "k: 'it''s'\nq: \"\\u00e9\\t\"\n",
]
BAD = [
    "a: [1, 2\n", "key: value\n  other: x\n", "a: b: c\n", "a: &x 1\nb: *y\n", "a: \x07b\n", "a: 'x\n",
    "a: !!python/object:os.system x\n", "a: 1\n---\n  - b\n c: d\n",
]


def pure(text: str) -> list[object]:
    return list(yaml.load_all(text, Loader=manifests._Loader))


def assert_loaded_as_by_the_pure_parser(text: str) -> None:
    """load_text gives what it gave with the pure-Python parser alone: the documents, or the error's line."""
    loaded = manifests.Loaded()
    manifests.load_text(text, "f.yaml", loaded)
    try:
        expected = pure(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        assert mark is not None
        assert [(i.line, i.column, i.message) for i in loaded.issues] == [
            (mark.line + 1, mark.column + 1, err.problem or err.context)]
    except yaml.YAMLError as err:
        assert [i.message for i in loaded.issues] == [str(err).splitlines()[0]]
    else:
        assert loaded.issues == []
        assert manifests._parsed(text) == expected


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__  # the pinned PyYAML wheel has it
    assert issubclass(manifests._FastLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_of_the_corpus_loads_the_same(path: Path) -> None:
    assert_loaded_as_by_the_pure_parser(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_documents_parse_the_same(text: str) -> None:
    assert manifests._parsed(text) == pure(text)
    assert_loaded_as_by_the_pure_parser(text)


@pytest.mark.parametrize("text", BAD)
def test_bad_yaml_gets_the_pure_parsers_message_line_and_column(text: str) -> None:
    assert manifests._parsed(text) is None  # libyaml rejects it too
    with pytest.raises(yaml.YAMLError):
        pure(text)
    assert_loaded_as_by_the_pure_parser(text)
