"""Who is asking, and whether they may: the dashboard's authentication and authorization.

Rules:
- Bound to loopback (the default, 127.0.0.1:3100), a request without credentials is the
  dashboard's own user (whoever started it, with its kubeconfig's rights, as kubectl).
  Bound anywhere else, every request needs credentials, whatever address it comes from
  (a reverse proxy on the same host is not its users), else 401.
- Credentials, in this order: `Authorization: Bearer TOKEN` or the `rollouts-token` cookie
  (set by the login form), checked with a TokenReview, answers cached for `TOKEN_TTL`
  seconds by the token's SHA-256; else, only when `--auth-proxy-header` is configured, that
  header names the user (and `--auth-proxy-groups-header`, comma-separated, the groups) as
  set by an authenticating proxy. Unconfigured, such headers are ignored. A token the
  cluster cannot review (the in-memory API has no TokenReview) is 401 saying so.
- Acting: the dashboard's own user acts with its own client (the API server enforces its
  RBAC). Any other user is checked first with a SubjectAccessReview for every request the
  action makes (verb, resource, subresource, namespace, name; the user's groups too), and
  refused with 403 and the reason when one is denied; never sent on the dashboard's
  broader rights alone. Where no SubjectAccessReview exists (the in-memory API), such a
  user is refused. `--read-only` refuses every action (403) and the pages show none.
- Forms carry a per-process CSRF token; a POST without it is 403 (a page elsewhere cannot
  make a browser act through a loopback dashboard).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["COOKIE", "Authenticator", "Denied", "KubeReviews", "Need", "NoReviews", "Refusal", "Reviews", "User",
           "is_loopback"]

COOKIE = "rollouts-token"
TOKEN_TTL = 60.0


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    own: bool = False  # the dashboard's own identity (loopback without credentials)
    how: str = ""  # "loopback" | "token" | "proxy"

    @property
    def label(self) -> str:
        return "you (the dashboard's kubeconfig user)" if self.own else self.name


@dataclass(frozen=True)
class Refusal:
    status: int  # 401 or 403
    reason: str


@dataclass(frozen=True)
class Need:
    """One API request an action makes, as a SubjectAccessReview asks about it."""

    verb: str
    resource: str = "rollouts"
    subresource: str = ""
    group: str = "argoproj.io"


class Denied(Exception):
    """An action refused for this user; `reason` says why (403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reviews(Protocol):
    def token(self, token: str) -> User | None: ...

    def allowed(self, user: User, need: Need, namespace: str, name: str) -> tuple[bool, str]: ...


class NoReviews:
    """A cluster without TokenReview and SubjectAccessReview (the in-memory API)."""

    def token(self, token: str) -> User | None:
        raise Denied("this cluster (the in-memory API) has no TokenReview: use the dashboard on loopback")

    def allowed(self, user: User, need: Need, namespace: str, name: str) -> tuple[bool, str]:
        return False, (f'user "{user.name}" cannot be authorized: this cluster (the in-memory API) has no RBAC '
                       "to ask; only the dashboard's own user on loopback may act")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class Authenticator:
    def __init__(self, reviews: Reviews, *, open_loopback: bool, proxy_header: str | None = None,
                 proxy_groups_header: str | None = None, read_only: bool = False) -> None:
        self.reviews = reviews
        self.open_loopback = open_loopback
        self.proxy_header = proxy_header.lower() if proxy_header else None
        self.proxy_groups_header = proxy_groups_header.lower() if proxy_groups_header else None
        self.read_only = read_only
        self.csrf = secrets.token_urlsafe(24)
        self._cache: dict[str, tuple[float, User | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> User | Refusal:
        token = _bearer(headers.get("authorization", "")) or cookies.get(COOKIE, "")
        if token:
            try:
                user = self._reviewed(token)
            except Denied as err:
                return Refusal(401, err.reason)
            return user or Refusal(401, "the token was not accepted by the cluster's TokenReview: log in with a "
                                        "valid Kubernetes token")
        if self.proxy_header and headers.get(self.proxy_header):
            groups = headers.get(self.proxy_groups_header or "", "") if self.proxy_groups_header else ""
            return User(headers[self.proxy_header], tuple(g.strip() for g in groups.split(",") if g.strip()),
                        how="proxy")
        if self.open_loopback:
            return User("", own=True, how="loopback")
        return Refusal(401, "this dashboard is not on loopback: send a Kubernetes bearer token "
                            "(Authorization: Bearer TOKEN, or log in)")

    def _reviewed(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < TOKEN_TTL:
                return cached[1]
        user = self.reviews.token(token)
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = (now, user)
        return user

    def check_csrf(self, value: str) -> bool:
        return hmac.compare_digest(value.encode(), self.csrf.encode())

    def authorize(self, user: User, needs: tuple[Need, ...], namespace: str, name: str) -> None:
        """Raise Denied unless `user` may make every request of `needs` (the own user: the API server decides)."""
        if self.read_only:
            raise Denied("this dashboard is read-only (--read-only): actions are off")
        if user.own:
            return
        for need in needs:
            ok, reason = self.reviews.allowed(user, need, namespace, name)
            if not ok:
                raise Denied(reason)


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class KubeReviews:
    """Reviews by the real API server (rollouts.kube.reviews), asked with the dashboard's own client."""

    def __init__(self, cluster: object) -> None:
        self.cluster = cluster

    def token(self, token: str) -> User | None:
        from rollouts.kube.reviews import token_review
        from rollouts.platform.cluster import ClusterError

        try:
            found = token_review(self.cluster, token)  # type: ignore[arg-type]
        except ClusterError as err:
            raise Denied(f"the token could not be reviewed (TokenReview: {err})") from None
        return None if found is None else User(found.username, found.groups, how="token")

    def allowed(self, user: User, need: Need, namespace: str, name: str) -> tuple[bool, str]:
        from rollouts.kube.reviews import allowed
        from rollouts.platform.cluster import ClusterError

        try:
            return allowed(self.cluster, user.name, user.groups, verb=need.verb,  # type: ignore[arg-type]
                           group=need.group, resource=need.resource, namespace=namespace, name=name,
                           subresource=need.subresource)
        except ClusterError as err:
            return False, f'user "{user.name}" could not be authorized (SubjectAccessReview: {err})'
