"""`rollouts crds`: write the CustomResourceDefinitions generated from the models.

`rollouts crds` writes crds/*.yaml (or `--out DIR`); `rollouts crds --check` writes
nothing and exits 1 when the files differ from what the models generate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rollouts.cli import CommandError
from rollouts.spec import crdgen

DEFAULT_DIR = "crds"


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.check:
        stale = crdgen.drift(out)
        if stale:
            raise CommandError(f"{', '.join(stale)} in {out} differ from the models (run `rollouts crds --out {out}`)")
        print(f"OK: {len(crdgen.KINDS)} CRDs in {out} match the models")
        return 0
    for path in crdgen.write(out):
        print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="write the CRDs generated from the models",
        description="Write apiextensions.k8s.io/v1 CustomResourceDefinitions for Rollout, AnalysisTemplate, "
        "ClusterAnalysisTemplate, AnalysisRun and Experiment, generated from the models.",
    )
    parser.add_argument("--out", default=DEFAULT_DIR, metavar="DIR", help="directory to write (default: crds)")
    parser.add_argument("--check", action="store_true", help="exit 1 if DIR differs from the models; write nothing")
    parser.set_defaults(func=run)
