"""The dashboard's web application (Starlette): pages, server-sent events, actions.

Rules:
- Every page and stream reads the Store (one watch per kind for the process), never the
  API; an action is the one request path that writes, as the user (rollouts.dashboard.auth).
- Routes: `/` the overview (`?q=` filters; refreshes itself without JavaScript), `/stream`
  its events, `/rollouts/NS/NAME` one Rollout, `.../stream` its events,
  `.../confirm/ACTION` the confirmation page (no JavaScript), `POST .../ACTION` the action,
  `/login` (a token into an HttpOnly, SameSite=Strict cookie), `/logout`, `/healthz`, `/static`.
- Streams wake on a store change, wait `COALESCE` seconds so a burst is one message, and
  send only what changed: the overview's changed rows (`rows`: upserts and removals), the
  detail page's sections and chart data (`detail`). A stream that fell behind the
  store's change log sends everything once.
- An action answers 200 with what was done; 400 for a form mistake; 401 without valid
  credentials; 403 with the reason (read-only, RBAC, CSRF, no confirmation); 404 for a
  missing Rollout; 409 on a conflict; 503 when the cluster cannot be reached. An htmx
  request gets the message alone, a plain form the message page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rollouts.dashboard import pages
from rollouts.dashboard.actions import ACTIONS, FormError
from rollouts.dashboard.auth import COOKIE, Authenticator, Denied, Refusal, User
from rollouts.dashboard.store import Key, Store
from rollouts.platform.cluster import Cluster, ClusterError, Conflict, Forbidden, Invalid, NotFound, Unavailable
from rollouts.platform.commands import ImageError

__all__ = ["Dashboard", "make_app"]

HERE = Path(__file__).parent
COALESCE = 0.25
FORM_LIMIT = 64 * 1024
PING_SECONDS = 15


class Broadcast:
    """Wakes every open stream (on the event loop) when the store changes (on a watch thread)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.closed = False  # set on shutdown: every stream ends, so the server stops gracefully

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        return self._event

    def close(self) -> None:
        self.closed = True
        self.wake()


class Dashboard:
    """What the app needs: the store, who may do what, and the Cluster the own user acts with."""

    def __init__(self, store: Store, auth: Authenticator, cluster: Cluster, *, scope: str) -> None:
        self.store = store
        self.auth = auth
        self.cluster = cluster
        self.scope = scope
        self.broadcast = Broadcast()
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=True, trim_blocks=False, lstrip_blocks=False)
        self.env.filters["phase_icon"] = pages.web_icon
        self.env.filters["clock"] = lambda seconds: datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")
        self._row = self.env.get_template("_row.html").module.row  # type: ignore[attr-defined]
        self._parts = self.env.get_template("_detail.html").module

    def now(self) -> datetime:
        return self.store.clock.now()

    def errors(self) -> list[str]:
        return sorted(self.store.errors.values())

    def render(self, template: str, request_user: User | None, http_status: int = 200, **context: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(
            scope=self.scope, user=request_user, read_only=self.auth.read_only, errors=self.errors(),
            csrf=self.auth.csrf, **context)
        return HTMLResponse(page, status_code=http_status)

    def row_html(self, row: pages.OverviewRow) -> str:
        return str(self._row(row))

    def sections(self, detail: pages.Detail) -> dict[str, str]:
        return {part: str(getattr(self._parts, part)(detail))
                for part in ("summary", "steps", "analysis", "replicasets", "events")}


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the pages send), at most FORM_LIMIT bytes; first value wins."""
    body = await request.body()
    if len(body) > FORM_LIMIT or "multipart" in request.headers.get("content-type", ""):
        return {}
    form: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(key, value)
    return form


def _refused(dash: Dashboard, request: Request, refusal: Refusal) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse(_message(dash, refusal.reason, ok=False, status=refusal.status), refusal.status)
    if request.url.path.endswith("/stream"):
        return PlainTextResponse(refusal.reason, refusal.status)
    response = dash.render("message.html", None, refusal.status, title="Log in" if refusal.status == 401 else
                           "Forbidden", message=refusal.reason, ok=False, status=refusal.status,
                           login=refusal.status == 401)
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="rollouts dashboard"'
    return response


def _message(dash: Dashboard, message: str, *, ok: bool, status: int) -> str:
    return dash.env.get_template("_message.html").render(message=message, ok=ok, status=status)


def _since(dash: Dashboard, request: Request) -> int:
    """The store version a stream starts after: `?since=` (what the page was rendered from), else now."""
    now = dash.store.version
    text = request.query_params.get("since", "")
    return min(int(text), now) if text.isdigit() else now


async def _changes(dash: Dashboard, since: int) -> AsyncIterator[set[Key] | None]:
    """The Rollouts changed after store version `since`, a batch at a time (None: more than the
    store's change log names): each batch waits for a change, then COALESCE more, so a burst of
    watch events is one update; the stream ends when the dashboard closes."""
    version = since
    while True:
        waiter = dash.broadcast.waiter()
        if dash.store.version == version and not dash.broadcast.closed:
            await waiter.wait()
        if dash.broadcast.closed:
            return
        await asyncio.sleep(COALESCE)
        version, keys = dash.store.changed_since(version)
        if keys is None or keys:
            yield keys


def _user(dash: Dashboard, request: Request) -> User | Refusal:
    return dash.auth.authenticate(request.headers, request.cookies)


def make_app(dash: Dashboard) -> Starlette:
    def page(handler: Callable[[Request, User], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(_user, dash, request)
            if isinstance(user, Refusal):
                return _refused(dash, request, user)
            result: Response = await handler(request, user)
            return result

        return endpoint

    async def overview(request: Request, user: User) -> Response:
        q = request.query_params.get("q", "")
        version = dash.store.version  # before the rows: a change while rendering is sent by the stream
        rows = pages.overview(dash.store, dash.now(), q)
        return dash.render("overview.html", user, rows=rows, q=q, version=version)

    async def overview_stream(request: Request, user: User) -> Response:
        q, since = request.query_params.get("q", ""), _since(dash, request)

        async def events() -> AsyncIterator[ServerSentEvent]:
            shown = {row.id: dash.row_html(row) for row in pages.overview(dash.store, dash.now(), q)}
            _, missed = dash.store.changed_since(since)  # changed between the page and this stream: send again
            for row_id in list(shown) if missed is None else [pages.dom_id(*key) for key in missed]:
                shown[row_id] = ""
            async for keys in _changes(dash, since):
                update = overview_update(dash, shown, pages.overview(dash.store, dash.now(), q, keys), keys)
                if update["upsert"] or update["remove"]:
                    yield ServerSentEvent(json.dumps(update), event="rows")

        return EventSourceResponse(events(), ping=PING_SECONDS)

    def _detail_or_404(request: Request, user: User) -> pages.Detail | Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        detail = pages.detail(dash.store, namespace, name, dash.now())
        if detail is None:
            return dash.render("message.html", user, 404, title="Not found", ok=False, status=404,
                               message=f'rollout "{name}" not found in namespace "{namespace}"', back="/")
        return detail

    async def detail_page(request: Request, user: User) -> Response:
        version = dash.store.version
        detail = _detail_or_404(request, user)
        if isinstance(detail, Response):
            return detail
        return dash.render("detail.html", user, d=detail, actions=list(ACTIONS.values()), version=version)

    async def detail_stream(request: Request, user: User) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        key, since = (namespace, name), _since(dash, request)

        async def events() -> AsyncIterator[ServerSentEvent]:
            async for keys in _changes(dash, since):
                if keys is not None and key not in keys:
                    continue
                detail = pages.detail(dash.store, namespace, name, dash.now())
                if detail is None:
                    yield ServerSentEvent(json.dumps({"gone": True}), event="detail")
                    continue
                yield ServerSentEvent(json.dumps({"sections": dash.sections(detail), "charts": detail.chart_data(),
                                                  "errors": dash.errors()}), event="detail")

        return EventSourceResponse(events(), ping=PING_SECONDS)

    async def confirm_page(request: Request, user: User) -> Response:
        action = ACTIONS.get(request.path_params["action"])
        if action is None:
            return dash.render("message.html", user, 404, title="Not found", ok=False, status=404,
                               message=f"no action {request.path_params['action']!r}", back="/")
        if dash.auth.read_only:
            return dash.render("message.html", user, 403, title="Forbidden", ok=False, status=403,
                               message="this dashboard is read-only (--read-only): actions are off", back="/")
        return dash.render("confirm.html", user, action=action, namespace=request.path_params["namespace"],
                           name=request.path_params["name"], value=request.query_params.get(action.field or "-", ""))

    async def act(request: Request, user: User) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        form = await form_of(request)
        status, message = await run_in_threadpool(_act, dash, user, request.path_params["action"], namespace, name,
                                                  form)
        if request.headers.get("hx-request"):
            return HTMLResponse(_message(dash, message, ok=status == 200, status=status), status)
        return dash.render("message.html", user, status, title="Done" if status == 200 else "Refused",
                           message=message, ok=status == 200, status=status, back=f"/rollouts/{namespace}/{name}")

    async def login(request: Request) -> Response:
        token = (await form_of(request)).get("token", "").strip()
        user = await run_in_threadpool(dash.auth.authenticate, {"authorization": f"Bearer {token}"}, {})
        if isinstance(user, Refusal):
            return _refused(dash, request, user)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dash.broadcast.attach(asyncio.get_running_loop())
        dash.store.subscribe(dash.broadcast.wake)
        try:
            yield
        finally:
            dash.store.unsubscribe(dash.broadcast.wake)

    routes = [
        Route("/", page(overview)),
        Route("/stream", page(overview_stream)),
        Route("/rollouts/{namespace}/{name}", page(detail_page)),
        Route("/rollouts/{namespace}/{name}/stream", page(detail_stream)),
        Route("/rollouts/{namespace}/{name}/confirm/{action}", page(confirm_page)),
        Route("/rollouts/{namespace}/{name}/{action}", page(act), methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def overview_update(dash: Dashboard, shown: dict[str, str], rows: list[pages.OverviewRow],
                    keys: set[tuple[str, str]] | None) -> dict[str, Any]:
    """What a stream sends after a change: the rows whose HTML changed, the ids gone (`shown` is updated).
    `rows` are those of `keys` (None: every row) that match the stream's filter."""
    fresh = {row.id: dash.row_html(row) for row in rows}
    candidates = set(shown) if keys is None else {pages.dom_id(*key) for key in keys}
    removed = sorted((candidates & set(shown)) - set(fresh))
    upsert = [[row_id, html] for row_id, html in fresh.items() if shown.get(row_id) != html]
    for row_id in removed:
        del shown[row_id]
    shown.update(fresh)
    return {"upsert": upsert, "remove": removed, "count": len(shown), "errors": dash.errors()}


def _act(dash: Dashboard, user: User, slug: str, namespace: str, name: str, form: dict[str, str]) -> tuple[int, str]:
    """(HTTP status, message) of one action for `user`; never raises."""
    action = ACTIONS.get(slug)
    if action is None:
        return 404, f"no action {slug!r} (actions: {', '.join(ACTIONS)})"
    if not dash.auth.check_csrf(form.get("csrf", "")):
        return 403, "the form's CSRF token is missing or stale: reload the page and try again"
    if form.get("confirm") != "yes":
        return 403, f"{action.label} needs confirmation (confirm=yes)"
    try:
        dash.auth.authorize(user, action.needs, namespace, name)
        message = action.run(dash.cluster, name, namespace, form, dash.now())
    except Denied as err:
        return 403, err.reason
    except (FormError, ImageError, Invalid) as err:
        return 400, str(err)
    except NotFound:
        return 404, f'rollout "{name}" not found in namespace "{namespace}"'
    except Forbidden as err:
        return 403, f"forbidden by the cluster: {err}"
    except Conflict as err:
        return 409, f'rollout "{name}" changed while being updated: {err}; try again'
    except Unavailable as err:
        return 503, f"the cluster cannot be reached: {err}"
    except ClusterError as err:
        return 500, f'rollout "{name}": {err}'
    who = "" if user.own else f" as {user.name}"
    return 200, f"{message}{who}"
