"""Validating a custom resource against a CRD's openAPIV3Schema, offline.

Rules:
- The Kubernetes extensions are mapped onto plain OpenAPI 3.0 before validation:
  `x-kubernetes-int-or-string` becomes `anyOf: [integer, string]`; the root gains
  apiVersion/kind/metadata; every other `x-kubernetes-*` key is dropped. With
  `strict=True` an object node without `x-kubernetes-preserve-unknown-fields` gets
  `additionalProperties: false` (what the API server prunes, or rejects with
  fieldValidation=Strict); the default is the API server's lenient mode.
- Null values are pruned first (`manifests.drop_nulls`), as the API server does.
- `problems(doc)` checks a document against the schema generated from our models
  (`crdgen`) with `rollouts.spec.structural` (no jsonschema: what lint and the controller
  run at start-up) and turns each error into a `Problem` with the wire path, a plain
  message and a fix; `validate(crd, doc)` returns raw `path: message` lines from
  openapi_schema_validator (imported only then) for tests that check files in crds/.
- The generated schema of each kind (after `k8sify`, through JSON) is cached on disk
  (`$ROLLOUTS_CACHE_DIR`, else `$XDG_CACHE_HOME/rollouts`, else `~/.cache/rollouts`),
  keyed by the package version and a hash of every source file of the models
  (`rollouts/spec`, `analysis`): a `rollouts lint` need not regenerate the CRD, and any
  change to a model is a new key. A cache that cannot be read or written is skipped.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollouts.spec import structural
from rollouts.spec.manifests import drop_nulls
from rollouts.spec.problems import Problem, did_you_mean, join

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from openapi_schema_validator import OAS30Validator

_TYPE_TEXT = {
    "integer": ("an integer", "write a whole number such as 20, without quotes"),
    "number": ("a number", "write a number such as 0.95, without quotes"),
    "string": ("a string", "write text, quoted if it looks like a number"),
    "boolean": ("true or false", "write true or false"),
    "object": ("a mapping", "write key: value fields under it"),
    "array": ("a list", "write one '- ' item per line"),
}
_REQUIRED_HINT = {
    "strategy": "add strategy.canary with its steps",
    "metrics": "add at least one metric",
    "provider": "add provider.prometheus or provider.web",
    "templateName": "name an AnalysisTemplate",
}
_INT_OR_STRING = ("a number or a string", "write a number like 30 or a string like 30s")


def k8sify(schema: Mapping[str, Any], *, strict: bool = False, root: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(dict(schema))
    if out.pop("x-kubernetes-int-or-string", False):
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "type"}}
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        out.pop(key)
    if root:
        out.setdefault("properties", {}).update(
            {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
        )
    if "properties" in out:
        out["properties"] = {name: k8sify(sub, strict=strict) for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), Mapping):
            out[key] = k8sify(out[key], strict=strict)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [k8sify(sub, strict=strict) for sub in out[key]]
    if strict and out.get("type") == "object" and "properties" in out and not preserve:
        out.setdefault("additionalProperties", False)
    return out


def _validator(crd: Mapping[str, Any], api_version: str, *, strict: bool) -> OAS30Validator:
    from openapi_schema_validator import OAS30Validator  # lazily: only tests of crds/ files need jsonschema

    version = api_version.rsplit("/", 1)[-1]
    served = next((v for v in crd["spec"]["versions"] if v["name"] == version), None)
    if served is None:
        raise ValueError(f"{crd['metadata']['name']} does not serve version {version}")
    return OAS30Validator(k8sify(served["schema"]["openAPIV3Schema"], strict=strict, root=True))


def _path(error: ValidationError | structural.SchemaError) -> str:
    path = ""
    for part in error.path if isinstance(error, structural.SchemaError) else error.absolute_path:
        path = join(path, part)
    return path


def validate(crd: Mapping[str, Any], doc: Mapping[str, Any], *, strict: bool = False) -> list[str]:
    """`path: message` for every schema error of `doc` against `crd` (empty when valid)."""
    validator = _validator(crd, str(doc.get("apiVersion", "")), strict=strict)
    return sorted(f"{_path(e) or '<root>'}: {e.message}" for e in validator.iter_errors(drop_nulls(doc)))


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("ROLLOUTS_CACHE_DIR"):
        return Path(env["ROLLOUTS_CACHE_DIR"])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rollouts"


@functools.cache
def models_key() -> str:
    """The package version and a hash of every source file the generated schemas come from."""
    from rollouts import __version__

    digest = hashlib.sha256(__version__.encode())
    spec = Path(__file__).resolve().parent
    for root in (spec, spec.parent / "platform", _analysis_root()):
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _analysis_root() -> Path:
    import analysis

    return Path(analysis.__file__).resolve().parent


def generated_schema(kind: str) -> dict[str, Any]:
    """The validation schema of one of our kinds, as `problems` uses it: from the cache when it is there."""
    path = cache_dir() / f"schema-{kind}-{models_key()}.json"
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict):
            return cached
    except (OSError, ValueError):
        pass
    from rollouts.spec import crdgen  # lazily: a cache hit needs no model schema generation

    version = crdgen.crd(crdgen.KIND_BY_NAME[kind])["spec"]["versions"]
    served = next(v for v in version if v["name"] == crdgen.VERSION)
    text = json.dumps(k8sify(served["schema"]["openAPIV3Schema"], strict=False, root=True))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(text)
        temporary.replace(path)  # atomic: a concurrent lint reads the old file or the whole new one
    except OSError:
        pass
    result: dict[str, Any] = json.loads(text)  # the same JSON either way: a cache hit validates alike
    return result


@functools.cache
def _our_validator(kind: str) -> dict[str, Any]:
    """The schema `problems` checks documents of `kind` against (read once per process)."""
    return generated_schema(kind)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    return "a list" if isinstance(value, list) else "a mapping"


def _problems_of(error: structural.SchemaError) -> list[Problem]:
    path = _path(error)
    if error.validator == "required":
        have = error.instance if isinstance(error.instance, Mapping) else {}
        return [Problem(join(path, name), "is required", _REQUIRED_HINT.get(name, f"add {name}"))
                for name in error.validator_value if name not in have]
    if error.validator == "type":
        expected, fix = _TYPE_TEXT.get(str(error.validator_value), (str(error.validator_value), "see crds/"))
        return [Problem(path, f"must be {expected}, got {_describe(error.instance)}", fix)]
    if error.validator == "anyOf" and [s.get("type") for s in error.validator_value] == ["integer", "string"]:
        expected, fix = _INT_OR_STRING
        return [Problem(path, f"must be {expected}, got {_describe(error.instance)}", fix)]
    if error.validator == "enum":
        options = [str(v) for v in error.validator_value]
        guess = did_you_mean(str(error.instance), options)
        return [Problem(path, f"{_describe(error.instance)} is not one of {', '.join(options)}",
                        f"did you mean {guess}?" if guess else f"use one of {', '.join(options)}")]
    return [Problem(path, error.message, "see the schema in crds/")]


def _order(error: structural.SchemaError) -> list[tuple[bool, Any]]:
    return [(isinstance(part, str), part) for part in error.path]


def problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Schema problems of one of our kinds (Rollout, AnalysisTemplate, ...), in path order."""
    schema = _our_validator(str(doc.get("kind")))
    errors = sorted(structural.iter_errors(schema, drop_nulls(doc)), key=_order)
    return [problem for error in errors for problem in _problems_of(error)]
