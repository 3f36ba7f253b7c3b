"""Prometheus authentication as Argo 1.8+ has it: `authentication.oauth2` (client credentials) and
`authentication.sigv4` (AWS Signature Version 4, Amazon Managed Prometheus).

Rules:
- OAuth2 is RFC 6749 §4.4 as Go's golang.org/x/oauth2/clientcredentials does it: a POST of
  `grant_type=client_credentials` (and `scope`, space-separated, when scopes are set) to
  `tokenUrl`, the client authenticated with HTTP Basic (id and secret form-escaped); when the
  endpoint refuses that (HTTP 400/401) the id and secret go in the form body instead, and the
  style that worked is remembered (Go's AuthStyleAutoDetect). The answer is read by oauthlib's
  BackendApplicationClient (JSON or form-encoded; an `error` answer or one without an
  access_token is refused). The request goes through analysis.providers.fetch: the metric's
  timeout, a 64 KiB body cap, and no redirect to another origin (an Error: a token minted
  elsewhere, or the secret repeated there by a 307, is never what the author configured).
- Tokens are cached per (tokenUrl, clientId, clientSecret, scopes) until 10 s before
  `expires_in` runs out (Go's expiryDelta); a token without `expires_in` is kept. Each
  request carries `Authorization: <token_type> <access_token>` (`Bearer`); an explicit
  `Authorization` header of the metric wins, as Argo's header round tripper runs after oauth2's.
- SigV4 signs every request for service `aps` with requests-aws4auth: the region is `region`,
  else $AWS_REGION / $AWS_DEFAULT_REGION, else the profile's `region` in the AWS config file;
  credentials are the named `profile`'s in the shared credentials file
  ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), else $AWS_ACCESS_KEY_ID /
  $AWS_SECRET_ACCESS_KEY / $AWS_SESSION_TOKEN, else the file's `default` profile. With
  `roleArn` those credentials sign an STS AssumeRole (at $AWS_ENDPOINT_URL_STS, else
  https://sts.REGION.amazonaws.com) and the role's credentials, cached until 10 s before their
  Expiration, sign the queries. Missing credentials or region are an Error, never an unsigned
  request. As Argo, only a sigv4 block with some field set signs, and unlike Argo (which signs
  only addresses holding "aps-workspaces") any address is signed: the author asked for it.
- Secrets (client secret, tokens, AWS keys) never appear in a message: messages name the
  token URL without its query, the HTTP status and at most the OAuth `error` code.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode
from xml.etree import ElementTree

import requests
import tenacity
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests_aws4auth import AWS4Auth

from analysis import jsonpath
from analysis.model import OAuth2Config, Sigv4Config
from analysis.providers import ProviderError
from analysis.providers.fetch import Request, fetch, shown_url

TOKEN_BODY_BYTES = 64 << 10
EXPIRY_DELTA = 10.0  # seconds before expiry a token is renewed, as Go's oauth2
SIGV4_SERVICE = "aps"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class _Token:
    header: str  # "Bearer abc"
    expires_at: float | None  # monotonic seconds


class OAuth2Tokens:
    """Client-credentials tokens, fetched once and cached until they expire; thread-safe."""

    def __init__(self, session: requests.Session, *, attempts: int, wait: tenacity.wait.wait_base,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._attempts = attempts
        self._wait = wait
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._in_body: set[tuple[str, ...]] = set()

    def authorization(self, config: OAuth2Config, *, timeout: float, verify: bool, shown: str) -> str:
        """The Authorization header value for `config`: a cached token, else a new one."""
        token_url, client_id, secret = config.token_url or "", config.client_id or "", config.client_secret or ""
        scopes = tuple(config.scopes or ())
        key = (token_url, client_id, hashlib.sha256(secret.encode()).hexdigest(), *scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and (cached.expires_at is None or self._clock() < cached.expires_at):
                return cached.header
        token = self._fetch(key, token_url, client_id, secret, scopes, timeout=timeout, verify=verify, shown=shown)
        with self._lock:
            self._tokens[key] = token
        return token.header

    def _fetch(self, key: tuple[str, ...], token_url: str, client_id: str, secret: str, scopes: tuple[str, ...],
               *, timeout: float, verify: bool, shown: str) -> _Token:
        where = f"{shown}: oauth2 token request to {shown_url(token_url)}"
        client = BackendApplicationClient(client_id=client_id)
        form = client.prepare_request_body(scope=" ".join(scopes) if scopes else None)
        styles = ("body",) if key in self._in_body else ("header", "body")
        for style in styles:
            if style == "header":
                request = Request("POST", token_url, where, timeout, TOKEN_BODY_BYTES, data=form.encode(),
                                  content_type="application/x-www-form-urlencoded", verify=verify, secret_body=True,
                                  auth=(quote_plus(client_id), quote_plus(secret)))
            else:
                body = form + "&" + urlencode({"client_id": client_id, "client_secret": secret})
                request = Request("POST", token_url, where, timeout, TOKEN_BODY_BYTES, data=body.encode(),
                                  content_type="application/x-www-form-urlencoded", verify=verify, secret_body=True)
            answer = fetch(self._session, request, attempts=self._attempts, wait=self._wait,
                           describe=lambda a: f"HTTP {a.status}{_error_code(a.text())}")
            if answer.status in (400, 401) and style == "header" and len(styles) == 2:
                continue  # Go's auto-detect: try the credentials in the body
            if not 200 <= answer.status < 300:
                raise ProviderError(f"{where} failed: HTTP {answer.status}{_error_code(answer.text())}")
            if style == "body":
                with self._lock:
                    self._in_body.add(key)
            return self._token(client, answer.text(), where)
        raise ProviderError(f"{where} failed")  # unreachable: the last style always returns or raises

    def _token(self, client: BackendApplicationClient, text: str, where: str) -> _Token:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                token: Mapping[str, Any] = client.parse_request_body_response(text)
        except OAuth2Error as err:
            code = err.error if isinstance(err.error, str) and _ERROR_CODE.match(err.error) else "invalid answer"
            raise ProviderError(f"{where} failed: {code}") from None
        except Warning as changed:  # the server granted other scopes: the token is still the token
            token = getattr(changed, "token", {})
        except ValueError:
            raise ProviderError(f"{where}: the answer is not a token") from None
        access, kind = token.get("access_token"), str(token.get("token_type") or "Bearer")
        if not isinstance(access, str) or not access:
            raise ProviderError(f"{where}: the answer has no access_token")
        kind = "Bearer" if kind.lower() == "bearer" else kind
        expires_at = None
        lifetime = token.get("expires_in")
        try:
            seconds = float(lifetime) if isinstance(lifetime, int | float | str) and lifetime != "" else None
        except ValueError:
            seconds = None
        if seconds is not None and seconds > 0:
            expires_at = self._clock() + seconds - EXPIRY_DELTA
        return _Token(f"{kind} {access}", expires_at)


def _error_code(text: str) -> str:
    """` (invalid_client)` from an OAuth error answer; nothing else of the body (it may echo credentials)."""
    try:
        payload = jsonpath.load_json(text)
    except ValueError:
        return ""
    code = payload.get("error") if isinstance(payload, dict) else None
    return f" ({code})" if isinstance(code, str) and _ERROR_CODE.match(code) else ""


# ---------------------------------------------------------------- SigV4


@dataclass(frozen=True)
class _Keys:
    access_key: str
    secret_key: str
    session_token: str | None = None


class SigV4:
    """Request signers for `authentication.sigv4`; assumed-role credentials are cached until they expire."""

    def __init__(self, session: requests.Session, *, attempts: int, wait: tenacity.wait.wait_base,
                 environ: Mapping[str, str] | None = None, home: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._attempts = attempts
        self._wait = wait
        self._environ = environ
        self._home = home
        self._clock = clock
        self._lock = threading.Lock()
        self._assumed: dict[tuple[str, ...], tuple[_Keys, float]] = {}

    def auth(self, config: Sigv4Config, *, timeout: float, verify: bool, shown: str) -> AWS4Auth:
        """A requests auth that signs for service `aps`, or ProviderError saying what is missing."""
        env = os.environ if self._environ is None else self._environ
        home = self._home if self._home is not None else Path.home()
        profile = config.profile or env.get("AWS_PROFILE") or None
        keys = _base_keys(env, home, profile)
        config_file = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
        region = (config.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
                  or (_section(config_file, f"profile {profile}" if profile else "default") or {}).get("region"))
        if not region:
            raise ProviderError("authentication.sigv4.region: no AWS region; set region (e.g. us-east-1) or AWS_REGION")
        if config.role_arn:
            keys = self._assume(keys, config.role_arn, region, env, timeout=timeout, verify=verify, shown=shown)
        return AWS4Auth(keys.access_key, keys.secret_key, region, SIGV4_SERVICE, session_token=keys.session_token)

    def _assume(self, keys: _Keys, role_arn: str, region: str, env: Mapping[str, str], *, timeout: float,
                verify: bool, shown: str) -> _Keys:
        """STS AssumeRole with `keys` (at $AWS_ENDPOINT_URL_STS, else the region's STS endpoint)."""
        endpoint = (env.get("AWS_ENDPOINT_URL_STS") or f"https://sts.{region}.amazonaws.com").rstrip("/") + "/"
        key = (endpoint, role_arn, keys.access_key, hashlib.sha256(keys.secret_key.encode()).hexdigest())
        with self._lock:
            cached = self._assumed.get(key)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
        where = f"{shown}: authentication.sigv4.roleArn: AssumeRole at {shown_url(endpoint)}"
        params = {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role_arn,
                  "RoleSessionName": "argo-rollouts"}
        signer = AWS4Auth(keys.access_key, keys.secret_key, region, "sts", session_token=keys.session_token)
        request = Request("GET", endpoint, where, timeout, TOKEN_BODY_BYTES, params=params, auth=signer, verify=verify)
        answer = fetch(self._session, request, attempts=self._attempts, wait=self._wait,
                       describe=lambda a: f"HTTP {a.status}{_sts_error(a.text())}")
        if not 200 <= answer.status < 300:
            raise ProviderError(f"{where} failed: HTTP {answer.status}{_sts_error(answer.text())}")
        found = _xml_fields(answer.text(), ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"))
        if not found.get("AccessKeyId") or not found.get("SecretAccessKey"):
            raise ProviderError(f"{where}: the answer holds no credentials")
        assumed = _Keys(found["AccessKeyId"], found["SecretAccessKey"], found.get("SessionToken") or None)
        with self._lock:
            self._assumed[key] = (assumed, self._clock() + _seconds_left(found.get("Expiration")) - EXPIRY_DELTA)
        return assumed


def _base_keys(env: Mapping[str, str], home: Path, profile: str | None) -> _Keys:
    credentials_file = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    section: Mapping[str, str] | None
    if profile:
        section = _section(credentials_file, profile)
        if section is None:
            raise ProviderError(f"authentication.sigv4.profile: profile {profile!r} is not in the shared "
                                "credentials file; add it, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    elif env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        section = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                   "aws_session_token": env.get("AWS_SESSION_TOKEN", "")}
    else:
        section = _section(credentials_file, "default")
    if not section or not section.get("aws_access_key_id") or not section.get("aws_secret_access_key"):
        raise ProviderError("authentication.sigv4: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY, or name a profile of the shared credentials file")
    return _Keys(section["aws_access_key_id"], section["aws_secret_access_key"],
                 section.get("aws_session_token") or None)


def _section(path: Path, name: str) -> Mapping[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return dict(parser[name]) if parser.has_section(name) else None


def _xml_fields(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """The text of the first element named each of `names` (any namespace); {} for text that is not XML."""
    try:
        root = ElementTree.fromstring(text)  # a 64 KiB body from STS; expat refuses entity bombs
    except ElementTree.ParseError:
        return {}
    found: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in names and local not in found:
            found[local] = (element.text or "").strip()
    return found


def _sts_error(text: str) -> str:
    code = _xml_fields(text, ("Code",)).get("Code", "")
    return f" ({code})" if _ERROR_CODE.match(code) else ""


def _seconds_left(expiration: str | None) -> float:
    """Seconds until an STS Expiration (ISO 8601); 900 (STS' shortest session) when it cannot be read."""
    try:
        moment = datetime.fromisoformat((expiration or "").replace("Z", "+00:00"))
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
    except ValueError:
        return 900.0
