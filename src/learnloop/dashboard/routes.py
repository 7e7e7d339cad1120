"""The dashboard's pages and buttons, at ``/dashboard``: server-rendered HTML (Jinja2, escaped
by default) with charts drawn as inline SVG; a few lines of script refresh the live rollout
panel and ask before an action. Pages call ``views`` (which call the services); buttons are
POST forms that call the same service functions as the API and come back with a message.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from learnloop import __version__
from learnloop.access import OPEN, Principal
from learnloop.api.deps import SESSION_COOKIE, Need, PathInt, QueryInt, audit_failure, client_address
from learnloop.api.errors import ForbiddenError, UnauthorizedError, status_of
from learnloop.dashboard import auth, explaining, labelling, views
from learnloop.domain import Scope
from learnloop.errors import LearnloopError, NotFoundError, ValidationError
from learnloop.ids import short_id
from learnloop.services import Services

PREFIX = "/dashboard"
ACTOR = "dashboard"
MAX_FORM_BYTES = 16_384
ROLLOUT_ACTIONS = {
    "pause": "paused",
    "resume": "resumed",
    "promote": "promoted",
    "rollback": "rolled back",
    "stop": "stopped",
}
# A job's buttons on its model's page: what each does to it, and the word for the done message.
JOB_ACTIONS = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}
# What each page and button needs: a key's scope, or this dashboard's session.
ReadPage = Annotated[Principal, Depends(Need(Scope.READ, session=True))]
LabelPage = Annotated[Principal, Depends(Need(Scope.LABEL, session=True))]
AdminAction = Annotated[Principal, Depends(Need(Scope.ADMIN, session=True))]
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("learnloop.dashboard", "templates"),
        autoescape=select_autoescape(["html", "css"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=1: "-" if v is None else f"{100 * v:.{digits}f}%"
    env.filters["num"] = lambda v, digits=3: "-" if v is None else f"{v:.{digits}f}"
    env.filters["pts"] = lambda v: "-" if v is None else f"{100 * v:+.1f} pts"
    env.filters["signed"] = lambda v, digits=3: "-" if v is None else f"{v:+.{digits}f}"
    env.filters["when"] = when
    env.filters["short"] = lambda v, n=12: "-" if v is None else str(v)[:n]
    env.filters["headline"] = views.verdict_words
    env.filters["chain"] = lambda versions: " ← ".join(f"v{v}" for v in versions)
    return env


def when(value: datetime | str | None) -> str:
    """A time as the dashboard shows it (``2026-12-06 05:30:00``); ISO text, as stored in JSON
    attributes (a study's cutoff), is read first; text that is not a time is shown as it is."""
    if value is None:
        return "-"
    at = value
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
    return f"{at:%Y-%m-%d %H:%M:%S}"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _actor(principal: Principal) -> str:
    """Events name the dashboard, and the key behind it once the server has keys."""
    return ACTOR if principal is OPEN else f"{ACTOR}:{principal.name}"


def _model_url(model: str) -> str:
    return f"{PREFIX}/models/{quote(model, safe='')}"


def _redirect(url: str, message: str, level: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?{urlencode({'flash': message, 'level': level})}", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the dashboard's own forms), first value of each field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ValidationError("the dashboard's forms are posted url-encoded", field="body")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationError("form too large", field="body")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _back(request: Request) -> str:
    """Where a login should lead back to: this page, or for a button the page it was on."""
    if request.method == "GET":
        query = request.url.query
        return _safe_next(request.url.path + (f"?{query}" if query else ""))
    return _safe_next(urlsplit(request.headers.get("referer", "")).path)


def _safe_next(value: str | None) -> str:
    """Only a path of this dashboard: never an open redirect."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


class Dashboard:
    """The templates and the rendering shared by every page."""

    def __init__(self) -> None:
        self.env = environment()

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        services = _services(request)
        nonce = secrets.token_urlsafe(16)
        principal = auth.principal_of(request)
        html = self.env.get_template(template).render(
            request=request,
            nonce=nonce,
            learnloop_version=__version__,
            prefix=PREFIX,
            key_required=services.access.required(),
            who=None if principal is None else principal.name,
            flash=request.query_params.get("flash"),
            level=request.query_params.get("level", "ok"),
            model_url=_model_url,
            **context,
        )
        headers = dict(SECURITY_HEADERS)
        headers["Content-Security-Policy"] = (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        return HTMLResponse(html, status_code=status_code, headers=headers)

    def not_allowed(self, request: Request, exc: LearnloopError) -> Response:
        """A page or button the visitor's key (or none) does not open: the login page, or a
        JSON answer to the labelling page's script."""
        status = status_of(exc)
        if "application/json" in request.headers.get("accept", ""):
            return _json({"error": exc.message, "login": status == 401}, status)
        message = "Log in with a key." if status == 401 else f"Your key may not do this: {exc.message}."
        return self.render(request, "login.html", status, title="Log in", message=message, next=_back(request))

    def refused(self, request: Request) -> Response | None:
        """The answer to an action that may not go ahead, or None when it may."""
        refusal = _refusal(request)
        if refusal is None:
            return None
        status, title, message = refusal
        return self.render(request, "error.html", status, title=title, message=message)


def _refusal(request: Request) -> tuple[int, str, str] | None:
    """Why an action may not go ahead (status, title, message): every dashboard action, a
    page's form or its script's request, is checked here (its scope by its ``Need``)."""
    if not auth.same_origin(request):
        return (
            403,
            "Cross-site request refused",
            "Dashboard actions must be posted from this server's own pages (Origin or Referer).",
        )
    return None


def _json(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def build_router() -> APIRouter:
    """The dashboard's routes (``create_app`` includes them); ``/`` redirects here."""
    dash = Dashboard()

    class HtmlErrorRoute(APIRoute):
        """Domain errors (unknown model, ...) as a readable page rather than problem+json."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def run(request: Request) -> Response:
                try:
                    return await handler(request)
                except (UnauthorizedError, ForbiddenError) as exc:
                    return dash.not_allowed(request, exc)
                except LearnloopError as exc:
                    return dash.render(request, "error.html", status_of(exc), title="Not possible", message=exc.message)

            return run

    router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

    @router.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)

    @router.get(PREFIX)
    async def models(request: Request, principal: ReadPage) -> HTMLResponse:
        services = _services(request)
        rows = await run_in_threadpool(views.models_overview, services)
        # An admin of every model also sees the server's audit trail (on an open server no one
        # is named, and it stays empty).
        admin = principal is not OPEN and principal.may(Scope.ADMIN) and principal.every_model
        audit = await run_in_threadpool(views.audit_events, services) if admin else None
        return dash.render(request, "models.html", title="Models", rows=rows, audit=audit)

    @router.get(PREFIX + "/models/{model}")
    async def model_page(request: Request, model: str, _: ReadPage, disagreements: bool = False) -> HTMLResponse:
        page = await run_in_threadpool(views.model_page, _services(request), model, disagreements_only=disagreements)
        return dash.render(request, "model.html", title=model, **page)

    @router.get(PREFIX + "/models/{model}/patterns")
    async def patterns_page(request: Request, model: str, _: ReadPage) -> HTMLResponse:
        found = await run_in_threadpool(_services(request).patterns.analyse, model)
        return dash.render(request, "patterns.html", title=f"{model}: error patterns", found=found)

    @router.get(PREFIX + "/models/{model}/rollout")
    async def rollout_panel(request: Request, model: str, _: ReadPage) -> HTMLResponse:
        page = await run_in_threadpool(views.rollout_panel, _services(request), model)
        return dash.render(request, "_rollout.html", **page)

    @router.get(PREFIX + "/models/{model}/versions/{number}")
    async def version_page(request: Request, model: str, number: PathInt, _: ReadPage) -> HTMLResponse:
        page = await run_in_threadpool(views.version_page, _services(request), model, number)
        return dash.render(request, "version.html", title=f"{model} v{number}", **page)

    @router.get(PREFIX + "/models/{model}/predictions/{prediction_id}")
    async def answer_page(request: Request, model: str, prediction_id: str, _: ReadPage) -> HTMLResponse:
        page = await run_in_threadpool(explaining.answer_page, _services(request), model, prediction_id)
        return dash.render(request, "answer.html", title=f"{model}: why this answer", **page)

    @router.get(PREFIX + "/models/{model}/studies/{study}")
    async def study_page(request: Request, model: str, study: str, _: ReadPage) -> HTMLResponse:
        view = await run_in_threadpool(_services(request).studies.study, model, study)
        return dash.render(request, "study.html", title=f"{model}: study {study}", model_name=model, study=view)

    @router.get(PREFIX + "/models/{model}/studies/{study}/{picture}.png")
    async def study_picture(request: Request, model: str, study: str, picture: str, _: ReadPage) -> Response:
        from learnloop.reports.study_plots import importance_png, trials_png

        draw = {"trials": trials_png, "importance": importance_png}.get(picture)
        if draw is None:
            raise ValidationError(f"no picture {picture!r}; pictures: trials, importance", field="picture")
        view = await run_in_threadpool(_services(request).studies.study, model, study)
        return Response(await run_in_threadpool(draw, view), media_type="image/png")

    @router.get(PREFIX + "/models/{model}/compare")
    async def compare_page(request: Request, model: str, a: QueryInt, b: QueryInt, _: ReadPage) -> HTMLResponse:
        page = await run_in_threadpool(views.compare_page, _services(request), model, a, b)
        return dash.render(request, "compare.html", title=f"{model}: v{a} against v{b}", **page)

    @router.get(PREFIX + "/login")
    async def login_form(request: Request, next: str = PREFIX) -> HTMLResponse:
        return dash.render(request, "login.html", title="Log in", message="", next=_safe_next(next))

    @router.post(PREFIX + "/login", response_model=None)
    async def login(request: Request) -> Response:
        if not auth.same_origin(request):
            return dash.render(request, "error.html", 403, title="Cross-site request refused", message="")
        form = await _form(request)
        target = _safe_next(form.get("next"))
        access = _services(request).access
        if not access.required():
            return _redirect(target, "this server has no keys: everything is open (loopback only)", "ok")
        address = client_address(request)
        wait = access.throttle.retry_after(address)
        if wait is not None:
            await audit_failure(request, access, "throttled")
            message = f"Too many wrong keys from this address; try again in {wait:.0f} s."
            return dash.render(request, "login.html", 429, title="Log in", message=message, next=target)
        principal = access.authenticate(form.get("key", "")) if form.get("key") else None
        if principal is None:
            access.throttle.failed(address)
            await audit_failure(request, access, "login_failed")
            return dash.render(request, "login.html", 401, title="Log in", message="Wrong key.", next=target)
        token = await run_in_threadpool(access.open_session, principal)
        response = _redirect(target, "logged in", "ok")
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=round(access.settings.session_seconds),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
        return response

    @router.post(PREFIX + "/logout", response_model=None)
    async def logout(request: Request) -> Response:
        if not auth.same_origin(request):
            return dash.render(request, "error.html", 403, title="Cross-site request refused", message="")
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await run_in_threadpool(_services(request).access.close_session, token)
        response = _redirect(PREFIX, "logged out", "ok")
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def act(request: Request, model: str, do: Callable[[str | None], Any], done: str) -> Response:
        refused = dash.refused(request)
        if refused is not None:
            return refused
        reason = (await _form(request)).get("reason", "").strip()[:1000] or None
        try:
            await run_in_threadpool(do, reason)
        except LearnloopError as exc:
            return _redirect(_model_url(model), exc.message, "error")
        return _redirect(_model_url(model), done, "ok")

    @router.post(PREFIX + "/models/{model}/versions/{number}/promote", response_model=None)
    async def promote(request: Request, model: str, number: PathInt, actor: AdminAction) -> Response:
        registry = _services(request).registry
        return await act(
            request,
            model,
            lambda reason: registry.promote(
                model, number, actor=_actor(actor), reason=reason or "promoted from the dashboard"
            ),
            f"version {number} promoted",
        )

    @router.post(PREFIX + "/models/{model}/rollback", response_model=None)
    async def rollback(request: Request, model: str, actor: AdminAction) -> Response:
        registry = _services(request).registry
        return await act(
            request,
            model,
            lambda reason: registry.rollback(
                model, actor=_actor(actor), reason=reason or "rolled back from the dashboard"
            ),
            "rolled back",
        )

    @router.post(PREFIX + "/models/{model}/rollouts/{rollout_id}/{action}", response_model=None)
    async def rollout_action(
        request: Request, model: str, rollout_id: PathInt, action: str, actor: AdminAction
    ) -> Response:
        if action not in ROLLOUT_ACTIONS:
            raise ValidationError(f"unknown rollout action {action!r}", field="action")
        method = getattr(_services(request).rollouts, action)
        return await act(
            request,
            model,
            lambda reason: method(
                model, rollout_id, actor=_actor(actor), reason=reason or f"{action} from the dashboard"
            ),
            f"rollout {rollout_id} {ROLLOUT_ACTIONS[action]}",
        )

    @router.post(PREFIX + "/models/{model}/jobs/{job_id}/{action}", response_model=None)
    async def job_action(request: Request, model: str, job_id: str, action: str, actor: AdminAction) -> Response:
        """Pause, resume or cancel one of the model's jobs (``JobService``), an audit event each."""
        if action not in JOB_ACTIONS:
            raise ValidationError(f"unknown job action {action!r}; actions: pause, resume, cancel", field="action")
        jobs = _services(request).jobs

        def do(reason: str | None) -> object:
            job = jobs.find(job_id)
            if job.model != model:  # the key's scope was checked on the model in the path
                raise NotFoundError(f"model {model!r} has no job {job_id!r}", field="job_id")
            method = getattr(jobs, action)
            return method(job.id, actor=_actor(actor), reason=reason or f"{JOB_ACTIONS[action]} from the dashboard")

        return await act(request, model, do, f"job {short_id(job_id)} {JOB_ACTIONS[action]}")

    @router.get(PREFIX + "/models/{model}/label")
    async def label_page(request: Request, model: str, _: LabelPage) -> HTMLResponse:
        page = await run_in_threadpool(labelling.label_page, _services(request), model)
        return dash.render(request, "label.html", title=f"Label {model}", **page)

    async def judge(
        request: Request, model: str, labeller: Principal, do: Callable[[dict[str, str], str], Any]
    ) -> Response:
        """A labelling action: answered in JSON to the page's script (``Accept``), else a
        redirect back to the page with a message (the page's plain forms, without script)."""
        scripted = "application/json" in request.headers.get("accept", "")
        if not scripted:
            refused = dash.refused(request)
            if refused is not None:
                return refused
        elif (refusal := _refusal(request)) is not None:
            return _json({"error": refusal[2], "login": refusal[0] == 401}, refusal[0])
        back = _model_url(model) + "/label"
        try:
            form = await _form(request)
            subject = labelling.labeller(form.get("name", ""), labeller)
            done: dict[str, Any] = await do(form, subject)
        except LearnloopError as exc:
            return _json({"error": exc.message}, status_of(exc)) if scripted else _redirect(back, exc.message, "error")
        return _json(done) if scripted else _redirect(back, done["message"], "ok")

    @router.post(PREFIX + "/models/{model}/label", response_model=None)
    async def give_label(request: Request, model: str, labeller: LabelPage) -> Response:
        async def record(form: dict[str, str], subject: str) -> dict[str, Any]:
            stored = await _services(request).feedback.record(model, labelling.feedback_item(form, subject))
            return {"feedback_id": stored.id, "kind": stored.kind.value, "message": f"{stored.kind.value} stored"}

        return await judge(request, model, labeller, record)

    @router.post(PREFIX + "/models/{model}/label/undo", response_model=None)
    async def undo_label(request: Request, model: str, labeller: LabelPage) -> Response:
        async def retract(form: dict[str, str], subject: str) -> dict[str, Any]:
            done = await run_in_threadpool(
                lambda: _services(request).feedback.retract(
                    model,
                    form.get("feedback_id", ""),
                    subject=subject,
                    actor=_actor(labeller),
                    reason="undone while labelling",
                )
            )
            return {"retracted": done.feedback.id, "message": f"{done.feedback.kind.value} taken back"}

        return await judge(request, model, labeller, retract)

    return router
