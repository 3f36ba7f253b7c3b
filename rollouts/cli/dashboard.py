"""`rollouts dashboard`: the live web dashboard (rollouts.dashboard) on a cluster.

Rules:
- `--kubeconfig/--context` as every command; `-n NS` one namespace, `-A` (or no `-n`:
  the dashboard is for every Rollout at a glance) every namespace the kubeconfig may list.
- `--addr HOST:PORT` (default 127.0.0.1:3100). Off loopback every request needs a bearer
  token (TokenReview) or, with `--auth-proxy-header`, a trusted proxy's user header.
- `--read-only` removes the actions (a POST is 403).
- Prints the URL, then serves until Ctrl-C. Starlette, uvicorn and sse-starlette are
  imported here only, when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from rollouts.cli import CommandError, connect

DEFAULT_ADDR = "127.0.0.1:3100"


def run(args: argparse.Namespace) -> int:
    from rollouts.dashboard.auth import is_loopback
    from rollouts.dashboard.server import Options, Served, build, parse_addr

    try:
        host, port = parse_addr(args.addr)
    except ValueError as err:
        raise CommandError(f"--addr: {err}", 2) from None
    if args.all_namespaces and args.namespace:
        raise CommandError("-A and -n name different scopes: pass one of them", 2)
    namespace = None if args.all_namespaces or not args.namespace else args.namespace
    with connect.session(args) as (cluster, target):
        options = Options(host=host, port=port, namespace=namespace, read_only=args.read_only,
                          proxy_header=args.auth_proxy_header, proxy_groups_header=args.auth_proxy_groups_header)
        dash = build(cluster, options)
        try:
            served = Served(dash, host, port)
        except OSError as err:
            dash.store.close()
            raise CommandError(f"--addr {args.addr}: cannot listen there ({err.strerror}); pick another port") from None
        where = "every namespace" if namespace is None else f'namespace "{namespace}"'
        proxy = f" or {args.auth_proxy_header}" if args.auth_proxy_header else ""
        auth = "no login on loopback" if is_loopback(host) else f"a Kubernetes bearer token (TokenReview){proxy}"
        print(f"rollouts dashboard: {served.url}/  ({where} of {target.describe()}; {auth}"
              f"{'; read-only' if args.read_only else ''}); Ctrl-C stops it", flush=True)
        try:
            served.wait()
        finally:
            served.close()
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="Serve the live web dashboard: every rollout, analysis charts, actions",
        description="Serve the live web dashboard: every Rollout at a glance, one Rollout's steps, ReplicaSets, "
                    "events and analysis charts, and confirmed actions done with your own identity.")
    connect.add_flags(parser)
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (the default without -n)")
    parser.add_argument("--addr", default=DEFAULT_ADDR, metavar="HOST:PORT",
                        help=f"where to listen (default {DEFAULT_ADDR}; off loopback a token is required)")
    parser.add_argument("--read-only", action="store_true", help="no actions: the pages only show")
    parser.add_argument("--auth-proxy-header", metavar="HEADER",
                        help="trust this header (set by an authenticating proxy) as the user, e.g. X-Forwarded-User")
    parser.add_argument("--auth-proxy-groups-header", metavar="HEADER",
                        help="with --auth-proxy-header: the header with the user's groups, comma-separated")
    parser.set_defaults(func=run)
