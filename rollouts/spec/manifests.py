"""Loading YAML manifests from files and directories, with their file names.

Rules:
- A path is a file, or a directory searched recursively for `*.yaml` / `*.yml`
  (hidden directories skipped), in sorted order; files keep the name the user gave
  (`examples/istio-canary/rollout.yaml`), so messages point at something openable.
- YAML is read the way the Kubernetes API server reads it after kubectl: YAML 1.1
  scalars, except that timestamps stay strings (`restartAt: 2024-01-01T00:00:00Z`
  is the string the API server stores). Empty documents are skipped; a `kind: List`
  is expanded into its items.
- Parsed with libyaml (PyYAML's C parser) where PyYAML has it, the same constructor and
  resolvers on top; a text the C parser rejects is parsed again by the pure-Python one, so a
  syntax error's message, line and column are PyYAML's own as they always were.
- Bad YAML is data, not an exception: a `SyntaxIssue` with file, line and column,
  and the documents before it in that file are kept. A path that does not exist, or
  paths that hold no manifest at all, raise `ManifestError` (a usage error).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml")


class ManifestError(Exception):
    """A path that cannot be linted at all (missing, unreadable, no manifests)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver."""


class _FastLoader(getattr(yaml, "CSafeLoader", _Loader)):  # type: ignore[misc]
    """The same, on libyaml's parser."""


_Loader.yaml_implicit_resolvers = _FastLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    file: str
    index: int  # 1-based position in the file
    data: Any


@dataclass(frozen=True)
class SyntaxIssue:
    file: str
    line: int
    column: int
    message: str


@dataclass
class Loaded:
    files: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    issues: list[SyntaxIssue] = field(default_factory=list)


def find_files(paths: Sequence[str]) -> list[str]:
    """The manifest files named by `paths`, in order; ManifestError for a missing path."""
    found: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not inside:
                raise ManifestError(f"no manifests (*.yaml, *.yml) found in {raw}")
            found.extend(str(p) for p in inside)
        elif path.is_file():
            found.append(raw)
        else:
            raise ManifestError(f"no such file or directory: {raw}")
    return found


def _expand(data: Any) -> Iterator[Any]:
    if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        yield from data["items"]
    elif data is not None:
        yield data


def _parsed(text: str) -> list[Any] | None:
    """Every document of `text` by libyaml, or None when it rejects the text."""
    try:
        return list(yaml.load_all(text, Loader=_FastLoader))
    except yaml.YAMLError:
        return None  # the pure-Python parser says what is wrong, and where


def load_text(text: str, file: str, into: Loaded) -> None:
    """Parse every YAML document of `text` into `into` (documents and syntax issues)."""
    index = 0
    try:
        for data in _parsed(text) or yaml.load_all(text, Loader=_Loader):
            for item in _expand(data):
                index += 1
                into.documents.append(Document(file, index, item))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        into.issues.append(SyntaxIssue(file, line, column, err.problem or err.context or "cannot be parsed"))
    except yaml.YAMLError as err:
        into.issues.append(SyntaxIssue(file, 0, 0, str(err).splitlines()[0]))


def load(paths: Sequence[str]) -> Loaded:
    """Every document in `paths`; ManifestError when a path is missing or nothing is found."""
    loaded = Loaded()
    for name in find_files(paths):
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ManifestError(f"cannot read {name}: {err}") from None
        loaded.files.append(name)
        load_text(text, name, loaded)
    if not loaded.documents and not loaded.issues:
        raise ManifestError(f"no manifests found in {', '.join(paths)}")
    return loaded


def drop_nulls(data: Any) -> Any:
    """`data` without null mapping values, as the API server prunes them from custom resources."""
    if isinstance(data, dict):
        return {k: drop_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [drop_nulls(v) for v in data]
    return data
