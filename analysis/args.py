"""AnalysisRun arguments: resolving their values and substituting `{{args.NAME}}`.

Rules:
- A placeholder is `{{ args.NAME }}`: inner whitespace is trimmed and NAME may hold
  hyphens and dots (`{{args.service-name}}`). Other `{{...}}` text is left alone.
- Substitution works on the dumped metric (camelCase dict): every string in it (keys
  included, nested values included: query, address, url, headers, body, jsonBody,
  conditions and the IntOrString fields count/interval/failureLimit/...) has its
  placeholders replaced, then the dict is validated again as a Metric. This is the
  equivalent of Argo's marshal-replace-unmarshal with JSON-escaped values.
- An arg value comes from `value`, or from `valueFrom.secretKeyRef` through the
  `secret_lookup(name, key)` callable given by the shell (the AnalysisRun keeps the
  reference, never the value; it is read at measurement time). A Rollout-side
  `fieldRef` or `podTemplateHashValue` is resolved to a literal when the run is built
  from a Rollout (`resolve_rollout_args`).
- Secret values are tracked (`ResolvedArgs.secrets`) and `redact` replaces them with
  `*****` in any text that may reach a message, log, event or status: raw and in every
  encoding the code writes them in (percent-encoded, JSON- and repr-escaped).
- Deliberate differences from Argo: only `{{args.*}}` placeholders are touched (Argo
  fails on any other `{{...}}`), and a fieldRef to a missing label or annotation is an
  error naming it (Argo silently substitutes "").
- Every failure is `ArgError` with a message naming the arg and the fix; nothing here
  reads a clock, the network or the cluster.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import ValidationError

from analysis.model import Argument, Metric

REDACTED = "*****"
PLACEHOLDER = re.compile(r"\{\{\s*args\.([^{}\s]+)\s*\}\}")
_DOWNWARD_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

SecretLookup = Callable[[str, str], str]
"""secret_lookup(secret name, key) -> decoded value; raises LookupError when missing."""


class ArgError(ValueError):
    """An argument could not be resolved or substituted; the message says how to fix it."""


@dataclass(frozen=True)
class ResolvedArgs:
    values: Mapping[str, str]
    secrets: frozenset[str] = frozenset()


# ---------------------------------------------------------------- values


def resolve_values(args: Sequence[Argument] | None, *, secret_lookup: SecretLookup | None) -> ResolvedArgs:
    """Literal values for every arg, reading secrets through `secret_lookup`."""
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for arg in args or ():
        ref = arg.value_from.secret_key_ref if arg.value_from else None
        if ref is not None:
            if secret_lookup is None:
                raise ArgError(f"args.{arg.name} reads secret {ref.name!r} but no secret access is configured")
            try:
                value = secret_lookup(ref.name, ref.key)
            except LookupError as err:
                raise ArgError(f"args.{arg.name}: {_lookup_message(err)}") from None
            values[arg.name] = value
            if value:
                secrets.add(value)
        else:
            values[arg.name] = literal_value(arg)
    return ResolvedArgs(values=values, secrets=frozenset(secrets))


def values_without_secrets(args: Sequence[Argument] | None) -> dict[str, str]:
    """Arg values for the core, with every secret standing in as `*****` (never read)."""
    return {
        arg.name: REDACTED if arg.value_from and arg.value_from.secret_key_ref else literal_value(arg)
        for arg in args or ()
    }


def literal_value(arg: Argument) -> str:
    """The arg's `value`; an arg that still waits for a value is an ArgError saying how to give one."""
    if arg.value is not None:
        return arg.value
    source = arg.value_from
    if source is not None and source.field_ref is not None:
        raise ArgError(
            f"args.{arg.name} was not resolved: valueFrom.fieldRef ({source.field_ref.field_path}) is "
            "resolved only from a Rollout's analysis args; pass the arg from the Rollout or give it a value"
        )
    if source is not None and source.pod_template_hash_value is not None:
        raise ArgError(
            f"args.{arg.name} was not resolved: valueFrom.podTemplateHashValue is resolved only when a "
            "Rollout creates the run; give the arg a value"
        )
    raise ArgError(
        f"args.{arg.name} was not resolved: the template declares it without a value; pass it from the "
        f"Rollout (analysis.args: [{{name: {arg.name}, value: ...}}]) or set a default `value` in the template"
    )


def _lookup_message(err: LookupError) -> str:
    text = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    return text or type(err).__name__


# ---------------------------------------------------------------- substitution


def substitute(metric: Metric, values: Mapping[str, str]) -> Metric:
    """`metric` with every `{{args.NAME}}` replaced; unknown names are an ArgError."""

    def replace(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ArgError(
                    f"failed to resolve {{{{args.{name}}}}} in metric {metric.name!r}: the run has no arg "
                    f"named {name!r}; declare it under spec.args of the AnalysisTemplate"
                )
            return values[name]

        return PLACEHOLDER.sub(one, text)

    document = _walk(metric.dump(), replace)
    try:
        return Metric.load(document)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False)
        )
        raise ArgError(f"metric {metric.name!r} is invalid after substituting its args: {problems}") from None


def _walk(node: Any, on_text: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return on_text(node)
    if isinstance(node, dict):
        return {on_text(k) if isinstance(k, str) else k: _walk(v, on_text) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(item, on_text) for item in node]
    return node


_REQUOTE_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what requests.utils.requote_uri leaves unquoted


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every (non-empty) secret value replaced by `*****`, longest first.

    Not only the raw value: every encoding this code base writes a value in (see `encodings`)
    is replaced too, so a secret percent-encoded in a URL, JSON-escaped in a measured value
    or repr-escaped in a message is masked as well.
    """
    forms = {form for secret in secrets if secret for form in encodings(secret) if form}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def encodings(secret: str) -> set[str]:
    """The ways `secret` may appear in text we produce: raw; percent-encoded (quote with safe=''
    and the default '/', quote_plus as requests encodes params, requests' URL requoting); JSON
    string escaping (ASCII-only and not); Python repr escaping (either quote), also of its UTF-8 bytes."""
    forms = {
        secret,
        quote(secret, safe=""), quote(secret), quote_plus(secret), quote(secret, safe=_REQUOTE_SAFE),
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1], repr(secret + '"')[1:-2], repr(secret.encode("utf-8", "replace"))[2:-1],
    }
    return {form for form in forms if form}


# ---------------------------------------------------------------- Rollout-side args


def resolve_rollout_args(
    args: Sequence[Argument] | None, rollout_doc: Mapping[str, Any], *, stable_hash: str | None,
    latest_hash: str | None,
) -> list[Argument]:
    """Rollout analysis args with fieldRef/podTemplateHashValue turned into literal values.

    `secretKeyRef` args are kept as references (read at measurement time).
    """
    rollout = (rollout_doc.get("metadata") or {}).get("name", "?")
    resolved: list[Argument] = []
    for arg in args or ():
        source = arg.value_from
        if arg.value is not None or source is None or source.secret_key_ref is not None:
            resolved.append(arg)
        elif source.pod_template_hash_value is not None:
            which = source.pod_template_hash_value
            value = stable_hash if which == "Stable" else latest_hash
            if not value:
                raise ArgError(
                    f"args.{arg.name}: Rollout {rollout!r} has no {which.lower()} ReplicaSet yet, so "
                    f"podTemplateHashValue: {which} has no value"
                )
            resolved.append(Argument(name=arg.name, value=value))
        elif source.field_ref is not None:
            value = field_value(rollout_doc, source.field_ref.field_path)
            resolved.append(Argument(name=arg.name, value=value))
        else:
            raise ArgError(f"args.{arg.name}: valueFrom must set secretKeyRef, fieldRef or podTemplateHashValue")
    return resolved


def field_value(rollout_doc: Mapping[str, Any], path: str) -> str:
    """A fieldRef path read from the Rollout: downward-API syntax under metadata, else a JSON walk."""
    rollout = (rollout_doc.get("metadata") or {}).get("name", "?")
    where = f"fieldRef {path!r} of Rollout {rollout!r}"
    metadata = rollout_doc.get("metadata") or {}
    if path.startswith("metadata"):
        subscript = _DOWNWARD_SUBSCRIPT.match(path)
        if subscript:
            kind, key = subscript.groups()
            entries = metadata.get(kind) or {}
            if key not in entries:
                raise ArgError(f"{where}: the Rollout has no {kind[:-1]} {key!r}")
            return str(entries[key])
        field = path.removeprefix("metadata.")
        if field in ("name", "namespace", "uid") and field in metadata:
            return str(metadata[field])
        if field in ("labels", "annotations"):
            return "\n".join(f'{k}="{v}"' for k, v in sorted((metadata.get(field) or {}).items()))
        raise ArgError(
            f"{where}: unsupported metadata path; use metadata.name, metadata.namespace, metadata.uid, "
            "metadata.labels['KEY'] or metadata.annotations['KEY']"
        )
    node: Any = rollout_doc
    for match in _PATH_TOKEN.finditer(path):
        key, index = match.groups()
        if key is not None and isinstance(node, Mapping) and key in node:
            node = node[key]
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            raise ArgError(f"{where}: {match.group(0)!r} does not exist in the Rollout")
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | float):
        return _number(node)
    if isinstance(node, str):
        return node
    raise ArgError(f"{where}: the path must end on a string, number or boolean, not {type(node).__name__}")


def _number(value: int | float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e21):
        return str(int(value))
    return json.dumps(value)
