"""`rollouts set image --file`: change a container image in a Rollout manifest in a Git
working copy, touching nothing but that image.

Rules and invariants:
- Only `kind: Rollout` documents change; other documents (Services, Deployments that
  happen to have a container of the same name) are left byte for byte.
- The edit is a splice: ruamel.yaml's composer (the parser behind its round-trip mode)
  gives the exact start and end of each `image` scalar, and only those characters are
  replaced. Comments, key order, quotes, indentation, blank lines, line endings and a
  byte-order mark are therefore kept exactly, which is stricter than a round-trip dump.
  The new value keeps the old scalar's quoting; a plain scalar that would not read back
  as the same string is written double-quoted.
- After the splice the whole file is parsed again and compared with the expected data:
  a mismatch is an error and the file is not written.
- Errors (`ManifestError`) name the file, the Rollout and the fix: no Rollout in the
  file, several Rollouts and no `--name`, a Rollout that uses `workloadRef`, an unknown
  container (listing the ones that exist), YAML the parser rejects.
- `*` as the container name sets every container (init, regular, ephemeral), like Argo.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class ManifestError(ValueError):
    """A manifest that cannot be edited as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ImageChange:
    rollout: str
    container: str
    old: str
    new: str


@dataclass(frozen=True)
class _Target:
    rollout: str
    container: str
    node: ScalarNode


def _get(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


def _scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _compose(text: str, source: str) -> list[Node]:
    try:
        return [doc for doc in YAML().compose_all(text) if doc is not None]
    except MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ManifestError(f"{source}: not valid YAML{where}: {err.problem}; fix the file and retry") from None
    except YAMLError as err:
        raise ManifestError(f"{source}: not valid YAML: {err}") from None


def _pick_rollouts(docs: list[Node], name: str | None, source: str) -> list[tuple[str, Node]]:
    rollouts = [(_scalar(_get(_get(d, "metadata"), "name")) or "", d) for d in docs
                if _scalar(_get(d, "kind")) == "Rollout"]
    if not rollouts:
        kinds = sorted({_scalar(_get(d, "kind")) or "?" for d in docs})
        found = f" (found: {', '.join(kinds)})" if kinds else " (the file has no documents)"
        raise ManifestError(f"{source}: no Rollout document{found}; point --file at the Rollout manifest")
    names = [n for n, _ in rollouts]
    if name is not None:
        chosen = [(n, d) for n, d in rollouts if n == name]
        if not chosen:
            raise ManifestError(f"{source}: no Rollout named {name!r} (Rollouts here: {', '.join(names)})")
        return chosen
    if len(rollouts) > 1:
        raise ManifestError(f"{source}: {len(rollouts)} Rollouts ({', '.join(names)}); pass --name to pick one")
    return rollouts


def _targets(rollout: str, doc: Node, container: str, source: str) -> list[_Target]:
    spec = _get(doc, "spec")
    pod_spec = _get(_get(spec, "template"), "spec")
    if pod_spec is None:
        ref = _scalar(_get(_get(spec, "workloadRef"), "name"))
        if ref is not None:
            raise ManifestError(f"{source}: Rollout {rollout!r} uses spec.workloadRef ({ref!r}): "
                                "set the image in that workload's manifest instead")
        raise ManifestError(f"{source}: Rollout {rollout!r} has no spec.template.spec; nothing to update")
    found: list[_Target] = []
    names: list[str] = []
    for field in CONTAINER_LISTS:
        items = _get(pod_spec, field)
        for item in items.value if isinstance(items, SequenceNode) else []:
            ctr_name = _scalar(_get(item, "name")) or ""
            names.append(ctr_name)
            image = _get(item, "image")
            if container in ("*", ctr_name):
                if not isinstance(image, ScalarNode):
                    raise ManifestError(f"{source}: Rollout {rollout!r} container {ctr_name!r} has no image "
                                        f"scalar at spec.template.spec.{field}; add `image:` first")
                found.append(_Target(rollout, ctr_name, image))
    if not found:
        have = ", ".join(repr(n) for n in names) or "none"
        raise ManifestError(f"{source}: Rollout {rollout!r} has no container named {container!r} "
                            f"(containers: {have}); use one of those names, or '*' for all")
    return found


def _render(node: ScalarNode, image: str, *, flow: bool) -> str:
    """`image` written in the style of `node`: quoted as it was, plain when safe."""
    if node.style == "'":
        return "'" + image.replace("'", "''") + "'"
    if node.style is None and _plain_is_safe(image, flow=flow):
        return image
    return json.dumps(image, ensure_ascii=False)


def _plain_is_safe(image: str, *, flow: bool) -> bool:
    if not image or image != image.strip() or (flow and any(c in image for c in ",[]{}")):
        return False
    try:
        data = YAML(typ="safe", pure=True).load(f"k: {image}\n")
    except YAMLError:
        return False
    return isinstance(data, dict) and data.get("k") == image


def _in_flow(node: ScalarNode, text: str) -> bool:
    """Whether the scalar sits inside a flow mapping (`{name: app, image: x}`)."""
    line_start = text.rfind("\n", 0, node.start_mark.index) + 1
    return "{" in text[line_start:node.start_mark.index]


def _path(data: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _expected(text: str, changes: Sequence[tuple[str, str, str]], source: str) -> list[Any]:
    """The documents of `text` as data, with `changes` applied to the Rollouts' containers."""
    try:
        docs = [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    except YAMLError as err:
        raise ManifestError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Rollout":
            continue
        pod_spec = _path(doc, "spec", "template", "spec")
        for field in CONTAINER_LISTS:
            items = pod_spec.get(field)
            for ctr in items if isinstance(items, list) else []:
                if not isinstance(ctr, dict):
                    continue
                for rollout, container, image in changes:
                    if _path(doc, "metadata").get("name") == rollout and ctr.get("name") == container:
                        ctr["image"] = image
    return docs


def set_image_text(
    text: str, assignments: Sequence[tuple[str, str]], *, name: str | None = None, source: str = "<manifest>",
) -> tuple[str, list[ImageChange]]:
    """The manifest with each (container, image) assignment applied, and what changed."""
    docs = _compose(text, source)
    rollouts = _pick_rollouts(docs, name, source)
    splices: dict[int, tuple[int, str, ImageChange]] = {}
    for container, image in assignments:
        for rollout, doc in rollouts:
            for target in _targets(rollout, doc, container, source):
                node = target.node
                if node.style in ("|", ">"):
                    raise ManifestError(f"{source}: Rollout {rollout!r} container {target.container!r}: the image "
                                        "is a block scalar (| or >); write it on one line and retry")
                change = ImageChange(rollout, target.container, str(node.value), image)
                rendered = _render(node, image, flow=_in_flow(node, text))
                splices[node.start_mark.index] = (node.end_mark.index, rendered, change)
    result = text
    for start in sorted(splices, reverse=True):
        end, rendered, _ = splices[start]
        result = result[:start] + rendered + result[end:]
    changes = [change for _, _, change in (splices[s] for s in sorted(splices))]
    wanted = [(c.rollout, c.container, c.new) for c in changes]
    if _expected(result, [], source) != _expected(text, wanted, source):  # pragma: no cover - a bug guard
        raise ManifestError(f"{source}: the edit did not read back as intended; the file was not changed")
    return result, [c for c in changes if c.old != c.new]


def set_image_file(path: str | Path, assignments: Sequence[tuple[str, str]], *,
                   name: str | None = None) -> list[ImageChange]:
    """Edit the manifest at `path` in place (atomically); returns the images that changed."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{file}: no such file; pass the path of the Rollout manifest") from None
    except OSError as err:
        raise ManifestError(f"{file}: cannot read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(f"{file}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    new_text, changes = set_image_text(text, assignments, name=name, source=str(file))
    if changes:
        _write_atomically(file, new_text.encode("utf-8"))
    return changes


def _write_atomically(file: Path, data: bytes) -> None:
    mode = file.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
