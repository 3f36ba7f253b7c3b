"""LightCluster: a read-only Cluster over the standard library's http.client, for commands that only read.

`rollouts get rollout` reads three things and prints them; importing the official client for
that costs several times the rest of the command. This reader speaks the same REST paths
(rollouts.platform.kinds) with http.client and ssl, and returns the same plain dicts.

Rules:
- `light_cluster(path, context)` reads the kubeconfig with yaml and returns None when the
  chosen context needs what this reader does not do, so the caller falls back to
  KubeCluster and no user loses access: a user with `exec` or `auth-provider` (credential
  plugins), impersonation (`as`, `as-groups`, `as-user-extra`), or a cluster with
  `proxy-url` or `tls-server-name`; any key of `user`/`cluster` not in SUPPORTED_* counts too.
- Supported: `server` (http or https, with a path prefix); `certificate-authority` (a file)
  or `certificate-authority-data` (base64 PEM), else the system's trust store;
  `insecure-skip-tls-verify`; `client-certificate`/`client-key` (files) or their `-data`
  forms (written to a private temporary file only for `load_cert_chain`, then removed);
  `tokenFile` (wins over `token`, as client-go and the Python client do) or `token`;
  `username`/`password` (basic auth). Relative file paths are relative to the kubeconfig.
- Answers and faults are the port's errors as KubeCluster words them
  (`rollouts.kube.errors.api_error`; "cannot reach the Kubernetes API at SERVER: ..." when
  nothing answered, "... dropped the answer" when the answer broke), so the CLI's messages
  do not depend on which reader ran.
- Only get and list: every other verb raises ClusterError naming the reader, never a
  silent no-op. `watch` is KubeCluster's alone.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import yaml

from rollouts.kube.errors import api_error
from rollouts.platform.cluster import ClusterError, Obj, Patch, Unavailable, WatchStream, namespace_of
from rollouts.platform.kinds import KindInfo, kind_info

if TYPE_CHECKING:
    import http.client
    import ssl

__all__ = ["LightCluster", "light_cluster"]

SUPPORTED_USER = frozenset({"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
                            "client-key-data", "username", "password", "extensions"})
SUPPORTED_CLUSTER = frozenset({"server", "certificate-authority", "certificate-authority-data",
                               "insecure-skip-tls-verify", "extensions"})


def _named(items: Any, name: Any, key: str) -> dict[str, Any] | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(key) or {}
            return body if isinstance(body, dict) else None
    return None


def light_cluster(path: Path, context: str | None, *, request_timeout: float = 30.0) -> LightCluster | None:
    """A LightCluster for `context` (default: the current one) of the kubeconfig at `path`; None when
    the kubeconfig asks for what this reader does not do (the caller uses KubeCluster instead)."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    chosen = _named(config.get("contexts"), context or config.get("current-context"), "context")
    if chosen is None:
        return None
    cluster = _named(config.get("clusters"), chosen.get("cluster"), "cluster")
    user = _named(config.get("users"), chosen.get("user"), "user") if chosen.get("user") else {}
    if cluster is None or user is None or not set(cluster) <= SUPPORTED_CLUSTER or not set(user) <= SUPPORTED_USER:
        return None
    server = str(cluster.get("server") or "")
    if urlsplit(server).scheme not in ("http", "https") or not urlsplit(server).hostname:
        return None
    return LightCluster(server, cluster=cluster, user=user, base=path.parent, request_timeout=request_timeout)


def _file(base: Path, name: Any) -> str:
    return str((base / str(name)).expanduser())


def _headers(user: Mapping[str, Any], base: Path) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "rollouts"}
    token = None
    if user.get("tokenFile"):
        try:
            token = Path(_file(base, user["tokenFile"])).read_text().strip()
        except OSError as err:
            raise ClusterError(f"kubeconfig tokenFile {user['tokenFile']}: {err}") from None
    elif user.get("token"):
        token = str(user["token"]).strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username") is not None and user.get("password") is not None:
        pair = f"{user['username']}:{user['password']}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    return headers


def _data(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise ClusterError(f"kubeconfig {what}: not base64") from None


def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    import ssl

    try:
        if cluster.get("certificate-authority-data"):
            context = ssl.create_default_context(
                cadata=_data(cluster["certificate-authority-data"], "certificate-authority-data").decode())
        elif cluster.get("certificate-authority"):
            context = ssl.create_default_context(cafile=_file(base, cluster["certificate-authority"]))
        else:
            context = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _client_certificate(context, user, base)
    except (OSError, ssl.SSLError, UnicodeDecodeError) as err:
        raise ClusterError(f"kubeconfig TLS settings cannot be loaded: {err}") from None
    return context


def _client_certificate(context: ssl.SSLContext, user: Mapping[str, Any], base: Path) -> None:
    """load_cert_chain reads files only: the -data forms go through a private temporary file, removed at once."""
    written: list[str] = []
    try:
        paths = []
        for key in ("client-certificate", "client-key"):
            if user.get(f"{key}-data"):
                handle, name = tempfile.mkstemp(prefix="rollouts-", suffix=".pem")  # mode 0600
                written.append(name)
                with os.fdopen(handle, "wb") as out:
                    out.write(_data(user[f"{key}-data"], f"{key}-data"))
                paths.append(name)
            elif user.get(key):
                paths.append(_file(base, user[key]))
            else:
                paths.append("")
        if paths[0]:
            context.load_cert_chain(paths[0], paths[1] or None)
    finally:
        for name in written:
            os.unlink(name)


class LightCluster:
    """get and list of the Cluster port over one kept-alive HTTP(S) connection."""

    def __init__(self, server: str, *, cluster: Mapping[str, Any] | None = None, user: Mapping[str, Any] | None = None,
                 base: Path = Path("."), request_timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        parts = urlsplit(self.server)
        self._https = parts.scheme == "https"
        self._host, self._port, self._prefix = parts.hostname or "", parts.port, parts.path.rstrip("/")
        self._headers = _headers(user or {}, base)
        self._tls = _tls(cluster or {}, user or {}, base) if self._https else None
        self.request_timeout = request_timeout
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> LightCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the port (reads) ------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        info = kind_info(kind)
        return _object(info, self._request(info.object_path(namespace_of(info, namespace), name)))

    def list(self, kind: str, namespace: str | None = None, *,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        info = kind_info(kind)
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in label_selector.items())} if label_selector else {}
        listing = self._request(info.collection_path(namespace), query)
        items = listing.get("items") if isinstance(listing, dict) else None
        return [_object(info, item) for item in items or []]

    # --- what it does not do ---------------------------------------------------------------
    def create(self, obj: Obj) -> Obj:
        raise self._read_only("create")

    def patch(self, kind: str, name: str, namespace: str | None, patch: Patch, *, patch_type: str = "merge") -> Obj:
        raise self._read_only("patch")

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        raise self._read_only("patch_status")

    def replace(self, obj: Obj) -> Obj:
        raise self._read_only("replace")

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        raise self._read_only("delete")

    def watch(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
              resource_version: str | None = None, timeout: float | None = None) -> WatchStream:
        raise self._read_only("watch")

    @staticmethod
    def _read_only(verb: str) -> ClusterError:
        return ClusterError(f"the light reader only reads (get, list); {verb} needs rollouts.kube.cluster.KubeCluster")

    # --- plumbing --------------------------------------------------------------------------
    def _open(self) -> http.client.HTTPConnection:
        import http.client

        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.request_timeout,
                                                               context=self._tls)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self.request_timeout)
        return self._connection

    def _request(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        import http.client

        url = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        connection = self._open()
        try:
            connection.request("GET", url, headers=self._headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            raise Unavailable(f"cannot reach the Kubernetes API at {self.server}: {err}") from None
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            raise Unavailable(f"the Kubernetes API at {self.server} dropped the answer: {err}") from None
        if not 200 <= response.status <= 299:
            raise api_error(response.status, data, response.reason)
        try:
            return json.loads(data) if data else None
        except ValueError:
            raise Unavailable(f"the Kubernetes API at {self.server} answered {url} with what is not JSON") from None


def _object(info: KindInfo, obj: Any) -> Obj:
    """Lists of built-in kinds omit each item's kind/apiVersion; put them back (as KubeCluster does)."""
    if isinstance(obj, dict):
        obj.setdefault("kind", info.kind)
        obj.setdefault("apiVersion", info.api_version)
    return obj
