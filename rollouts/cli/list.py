"""`rollouts list rollouts [-A]`: one line per Rollout, Argo's columns
`NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE`
(`NAMESPACE` first with -A). STATUS is the phase a client may trust
(`view.rollout_phase`); READY is ready/current pods.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rollouts import view
from rollouts.cli import connect
from rollouts.cli.get import show
from rollouts.platform.cluster import Cluster
from rollouts.view import render


@connect.with_cluster
def run_list(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    namespace = None if args.all_namespaces else target.namespace
    with connect.errors(target):
        rollouts = cluster.list("Rollout", namespace)
    rows = sorted((view.list_row(r) for r in rollouts), key=lambda row: (row.namespace, row.name))
    if not rows:
        where = "any namespace" if namespace is None else f'namespace "{namespace}"'
        print(f"No rollouts found in {where}.", file=sys.stderr)
        return 0
    show(render.rollout_list(rows, all_namespaces=args.all_namespaces), tty=connect.runtime().is_tty())
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("list", help="List rollouts")
    kinds = parser.add_subparsers(dest="list_kind", metavar="KIND", required=True)
    rollouts = kinds.add_parser("rollouts", aliases=["rollout", "ro"], help="List rollouts with their step and weight")
    rollouts.add_argument("-A", "--all-namespaces", action="store_true", help="list rollouts in every namespace")
    connect.add_flags(rollouts)
    rollouts.set_defaults(func=run_list, reads_only=True)  # the light reader (connect)
