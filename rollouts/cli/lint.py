"""`rollouts lint FILE_OR_DIR...`: validate manifests offline.

Output, one line per problem, in file and document order:
    FILE: Kind/name: field.path: what is wrong (how to fix)
Warnings (fields Argo accepts that this controller does not run) start with
`warning: ` and do not fail. Exit 0 with `OK: N files, M objects` when there is no
error; exit 1 with `FAILED: ...` after the problem lines; exit 2 when a path is
missing or holds no manifest.

Per document: YAML syntax, then the object's identity (mapping, apiVersion, kind,
name), then the schema of our CRDs (`rollouts.spec.crdschema`), then the semantic checks
of `rollouts.plan.validation` with every AnalysisTemplate, VirtualService,
DestinationRule and Service found in the given files as references.

Start-up: a kind's model module is imported only when a file holds that kind (`model_of`),
so a file of Rollouts does not build the Experiment models (benchmarks/bench_cli.py).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from analysis.model import API_VERSION, AnalysisRun, AnalysisTemplate, ArgoModel
from rollouts.cli import CommandError
from rollouts.plan import validation
from rollouts.spec import crdschema, manifests
from rollouts.spec.model import Rollout
from rollouts.spec.problems import Problem, did_you_mean, from_validation_error, warning

ARGO_KINDS: Mapping[str, str] = {  # kind -> "module:Model", imported when a file holds the kind
    "Rollout": "rollouts.spec.model:Rollout",
    "AnalysisTemplate": "analysis.model:AnalysisTemplate",
    "ClusterAnalysisTemplate": "analysis.model:AnalysisTemplate",
    "AnalysisRun": "analysis.model:AnalysisRun",
    "Experiment": "rollouts.spec.experiment:Experiment",
}
ARGO_API = API_VERSION  # = rollouts.spec.crdgen's GROUP/VERSION (crdgen imports every model)
ARGO_GROUP = ARGO_API.rsplit("/", 1)[0]


def model_of(kind: str) -> type[ArgoModel]:
    module, name = ARGO_KINDS[kind].split(":")
    model: type[ArgoModel] = getattr(importlib.import_module(module), name)
    return model
_ARGO_OTHER_KINDS: tuple[str, ...] = ()  # kinds Argo serves and this controller does not run (none now)
_REFERENCED = {  # kind -> apiVersion group it must come from
    "VirtualService": "networking.istio.io",
    "DestinationRule": "networking.istio.io",
    "Service": "",
}


@dataclass(frozen=True)
class Finding:
    file: str
    subject: str
    problem: Problem

    def __str__(self) -> str:
        prefix = "" if self.problem.is_error else "warning: "
        return f"{prefix}{self.file}: {self.subject}: {self.problem}"


def _subject(doc: manifests.Document) -> str:
    data = doc.data if isinstance(doc.data, Mapping) else {}
    kind = data.get("kind")
    meta = data.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, generated = meta.get("name"), meta.get("generateName")
    if not isinstance(kind, str) or not kind:
        return f"document {doc.index}"
    if isinstance(name, str) and name:
        return f"{kind}/{name}"
    return f"{kind}/{generated}*" if isinstance(generated, str) and generated else f"{kind}/<no name>"


def _identity_problems(data: Any) -> list[Problem]:
    """Problems that stop a document from being looked at any further."""
    if not isinstance(data, Mapping):
        got = "a list" if isinstance(data, list) else f"the scalar {data!r}"
        return [Problem("", f"expected a Kubernetes object (a mapping with apiVersion and kind), got {got}",
                        "write apiVersion, kind, metadata and spec as top-level keys")]
    missing = [key for key in ("apiVersion", "kind") if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        return [Problem(key, "is required", "add apiVersion and kind, e.g. apiVersion: argoproj.io/v1alpha1, "
                        "kind: Rollout") for key in missing]  # fmt: skip
    api, kind = data["apiVersion"], data["kind"]
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    if kind in ARGO_KINDS and api != ARGO_API:
        return [Problem("apiVersion", f"{api!r} is not served for {kind}", f"use apiVersion: {ARGO_API}")]
    if group == ARGO_GROUP and kind not in ARGO_KINDS:
        if kind in _ARGO_OTHER_KINDS:
            return [warning("kind", f"{kind} is not supported by this controller", "let Argo Rollouts run it")]
        guess = did_you_mean(kind, ARGO_KINDS)
        return [Problem("kind", f"unknown kind {kind!r} in {ARGO_GROUP}",
                        f"did you mean {guess}?" if guess else f"use one of {', '.join(ARGO_KINDS)}")]
    return []


@dataclass
class _Parsed:
    doc: manifests.Document
    model: ArgoModel | None
    problems: list[Problem]


def _parse(doc: manifests.Document) -> _Parsed:
    problems = _identity_problems(doc.data)
    if problems or doc.data["kind"] not in ARGO_KINDS:
        return _Parsed(doc, None, problems)
    problems = crdschema.problems(doc.data)
    if problems:
        return _Parsed(doc, None, problems)
    try:
        return _Parsed(doc, model_of(doc.data["kind"]).load(manifests.drop_nulls(doc.data)), [])
    except ValidationError as err:
        return _Parsed(doc, None, from_validation_error(err))


def _references(parsed: list[_Parsed]) -> validation.References:
    def named(kind: str) -> dict[str, Any]:
        group = _REFERENCED[kind]
        return {
            p.doc.data["metadata"]["name"]: p.doc.data
            for p in parsed
            if not p.problems and p.doc.data.get("kind") == kind
            and str(p.doc.data.get("apiVersion", "")).rsplit("/", 1)[0] == (group or p.doc.data.get("apiVersion"))
            and isinstance(p.doc.data.get("metadata"), Mapping) and isinstance(p.doc.data["metadata"].get("name"), str)
        }  # fmt: skip

    def templates(kind: str) -> dict[str, AnalysisTemplate] | None:
        given = [p for p in parsed if isinstance(p.doc.data, Mapping) and p.doc.data.get("kind") == kind]
        if not given:
            return None
        return {p.model.metadata.name or "": p.model for p in given if isinstance(p.model, AnalysisTemplate)}

    vs, dr, svc = named("VirtualService"), named("DestinationRule"), named("Service")
    return validation.References(
        templates=templates("AnalysisTemplate"),
        cluster_templates=templates("ClusterAnalysisTemplate"),
        virtual_services=vs or None,
        destination_rules=dr or None,
        services=set(svc) or None,
        template_errors=False,  # reported on the template itself
    )


def lint(loaded: manifests.Loaded) -> list[Finding]:
    """Every finding for the loaded files, in file and document order."""
    findings = [
        Finding(issue.file, f"line {issue.line}, column {issue.column}",
                Problem("", f"invalid YAML: {issue.message}", "fix the indentation, or quote values holding ': '"))
        for issue in loaded.issues
    ]  # fmt: skip
    parsed = [_parse(doc) for doc in loaded.documents]
    refs = _references(parsed)
    for item in parsed:
        problems = list(item.problems)
        if isinstance(item.model, Rollout):
            problems.extend(validation.validate_rollout(item.model, refs))
        elif isinstance(item.model, AnalysisTemplate):
            problems.extend(validation.validate_template(item.model))
        elif isinstance(item.model, AnalysisRun):
            problems.extend(validation.validate_analysis_run(item.model))
        elif item.model is not None and item.doc.data["kind"] == "Experiment":
            problems.extend(validation.validate_experiment(item.model, refs))  # type: ignore[arg-type]
        findings.extend(Finding(item.doc.file, _subject(item.doc), p) for p in problems)
    order = {name: i for i, name in enumerate(loaded.files)}
    return sorted(findings, key=lambda f: order.get(f.file, len(order)))


def run(args: argparse.Namespace) -> int:
    try:
        loaded = manifests.load(args.paths)
    except manifests.ManifestError as err:
        raise CommandError(str(err), code=2) from None
    findings = lint(loaded)
    for finding in findings:
        print(finding)
    errors = sum(1 for f in findings if f.problem.is_error)
    warnings = len(findings) - errors
    counts = f"{len(loaded.files)} file{'s' * (len(loaded.files) != 1)}, {len(loaded.documents)} " \
             f"object{'s' * (len(loaded.documents) != 1)}"  # fmt: skip
    noted = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    if errors:
        print(f"FAILED: {errors} error{'s' * (errors != 1)}{noted} in {counts}")
        return 1
    print(f"OK: {counts}{noted}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="validate Rollout, AnalysisTemplate and related manifests offline",
        description="Check manifests against the CRD schemas and Argo Rollouts' rules, and check the "
        "references between them (templates, args, VirtualService routes). Exit 0 when there is no "
        "error, 1 when there are errors, 2 when a path is missing or holds no manifest.",
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="YAML files or directories")
    parser.set_defaults(func=run)
