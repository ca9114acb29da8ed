"""Server-rendered review pages: sign in and out, the incident list, one incident's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from agent.api.deps import (
    VIEWER_COOKIE,
    AppStateDep,
    SessionDep,
    is_viewer,
    new_viewer_session,
    viewer_token_matches,
)
from agent.review.export import Review
from agent.review.service import (
    ACTION_FILTERS,
    DIAGNOSIS_FILTERS,
    SCAN_LIMIT,
    SEVERITY_FILTERS,
    SORT_KEYS,
    IncidentFilter,
    ListQuery,
    list_incident_rows,
    load_incident,
)
from agent.store.values import text_problem
from audit.timeline import event_summary

TEMPLATES = Path(__file__).parent / "templates"
# The pages load nothing but their own stylesheet, run no script, post only to themselves, and
# may not be framed (clickjacking): what an injected tag could do is refused by the browser too.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageRoute(APIRoute):
    """A route of the review pages: every answer, redirects and errors too, gets PAGE_HEADERS."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler, wrapped to add the headers."""
        handler = super().get_route_handler()

        async def with_headers(request: Request) -> Response:
            response = await handler(request)
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return with_headers


router = APIRouter(prefix="/ui", include_in_schema=False, route_class=PageRoute)
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["when"] = lambda moment: f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "—"
templates.env.filters["summary"] = event_summary
STATUSES = ("open", "resolved")


def _signed_in(request: Request, app_state: AppStateDep) -> bool:
    return is_viewer(request, app_state.settings, app_state.services.clock())


@router.get("/review.css")
def stylesheet() -> Response:
    """Serve the pages' stylesheet (a file of its own: the CSP allows no inline style)."""
    return Response(
        _STYLESHEET,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


_STYLESHEET = (TEMPLATES / "review.css").read_text(encoding="utf-8")


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    """Send visitors to the incident list."""
    return RedirectResponse("/ui/incidents", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, app_state: AppStateDep) -> Response:
    """Show the sign-in form (the viewer token)."""
    enabled = app_state.settings.viewer_token is not None
    return templates.TemplateResponse(
        request,
        "login.html",
        {"error": None if enabled else "disabled"},
        status_code=200 if enabled else 403,
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, app_state: AppStateDep) -> Response:
    """Check the viewer token and set the session cookie."""
    form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    settings = app_state.settings
    session_value = new_viewer_session(settings, app_state.services.clock())
    if session_value is None or not viewer_token_matches(settings, token):
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "disabled" if session_value is None else "wrong"},
            status_code=401,
        )
    response = RedirectResponse("/ui/incidents", status_code=303)
    response.set_cookie(
        VIEWER_COOKIE,
        session_value,
        max_age=int(settings.viewer_session_seconds),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_class=RedirectResponse)
def logout(request: Request) -> RedirectResponse:
    """Sign out: the browser drops the session cookie (it also expires on its own)."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(
        VIEWER_COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


TEXT_FILTERS = {"service": 200, "model": 512, "metric": 512}
"""Free-text filters of the incident list, and how long each may be."""
CHOICE_FILTERS: dict[str, tuple[str, ...]] = {
    "status": STATUSES,
    "diagnosis": DIAGNOSIS_FILTERS,
    "action": ACTION_FILTERS,
    "severity": SEVERITY_FILTERS,
}
"""Filters of the incident list that take one of a few values."""
ORDERS = ("asc", "desc")
PAGE_SIZE = 200


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, session: SessionDep, app_state: AppStateDep) -> Response:
    """List incidents with their service, metric, diagnosis, actions and severity.

    Filtered and sorted on the server by query parameters (`status`, `service`, `model`,
    `metric`, `diagnosis`, `action`, `severity`, `sort`, `order`); a value the list does not
    know is answered 400, naming what is allowed.
    """
    if not _signed_in(request, app_state):
        return RedirectResponse("/ui/login", status_code=303)
    params = request.query_params
    problems = _list_problems(params)
    filters = {name: params.get(name, "") for name in (*TEXT_FILTERS, *CHOICE_FILTERS)}
    sort, order = params.get("sort") or "opened", params.get("order") or "desc"
    if problems:
        return templates.TemplateResponse(
            request,
            "invalid.html",
            {"problems": problems, "signed_in": True},
            status_code=400,
        )
    query = ListQuery(
        where=IncidentFilter(
            status=filters["status"] or None,
            service=filters["service"] or None,
            model=filters["model"] or None,
            limit=PAGE_SIZE,
        ),
        metric=filters["metric"] or None,
        diagnosis=filters["diagnosis"] or None,
        action=filters["action"] or None,
        severity=filters["severity"] or None,
        sort=sort,
        descending=order == "desc",
    )
    rows, total, cut = list_incident_rows(session=session, query=query)
    return templates.TemplateResponse(
        request,
        "incidents.html",
        {
            "rows": rows,
            "total": total,
            "cut": cut,
            "scan_limit": SCAN_LIMIT,
            "chain": app_state.chain.current(),
            "filters": filters,
            "choices": CHOICE_FILTERS,
            "sort": sort,
            "order": order,
            "columns": _columns(filters, sort, order),
            "signed_in": True,
        },
    )


def _list_problems(params: Any) -> list[str]:
    """Return what is wrong with the incident list's query parameters (nothing: empty)."""
    problems = []
    for name, longest in TEXT_FILTERS.items():
        for value in params.getlist(name):
            problem = text_problem(value)
            if problem is not None:
                problems.append(f"{name}: the text {problem}")
            elif len(value) > longest:
                problems.append(f"{name}: at most {longest} characters (got {len(value)})")
    allowed = {**CHOICE_FILTERS, "sort": SORT_KEYS, "order": ORDERS}
    for name, values in allowed.items():
        for value in params.getlist(name):
            if value and value not in values:
                problems.append(
                    f"{name}: {value[:80]!r} is not one of {', '.join(values)}"
                    + (" (or empty: any)" if name in CHOICE_FILTERS else "")
                )
    repeated = sorted({name for name in params if len(params.getlist(name)) > 1})
    problems += [f"{name}: give it once (it was given more than once)" for name in repeated]
    return problems


def _columns(filters: dict[str, str], sort: str, order: str) -> list[dict[str, str]]:
    """Return the sortable columns, each with the link that sorts by it (keeping the filters)."""
    labels = {
        "opened": "Opened (UTC)",
        "service": "Service",
        "metric": "Metric",
        "diagnosis": "Diagnosis",
        "actions": "Actions taken",
        "severity": "Severity",
        "status": "Status",
    }
    kept = {name: value for name, value in filters.items() if value}
    columns = []
    for key, label in labels.items():
        flipped = "asc" if sort == key and order == "desc" else "desc"
        mark = (" ▼" if order == "desc" else " ▲") if sort == key else ""
        href = "/ui/incidents?" + urlencode({**kept, "sort": key, "order": flipped})
        columns.append({"key": key, "label": label + mark, "href": href})
    return columns


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(
    request: Request, incident_id: str, session: SessionDep, app_state: AppStateDep
) -> Response:
    """Show one incident's impact, timeline, evidence and links."""
    if not _signed_in(request, app_state):
        return RedirectResponse("/ui/login", status_code=303)
    record = None
    try:
        record = load_incident(session=session, incident_id=uuid.UUID(incident_id))
    except ValueError:
        pass
    if record is None:
        return templates.TemplateResponse(
            request, "missing.html", {"incident_id": incident_id}, status_code=404
        )
    review = Review.build(
        record, app_state.chain.current(), app_state.audit.now(), app_state.settings.public_url
    )
    return templates.TemplateResponse(
        request,
        "incident.html",
        {
            "review": review,
            "incident": record.incident,
            "rows": _rows(review),
            "story": review.story,
            "diagnosis": review.diagnosis(),
            "signed_in": True,
        },
    )


COLLAPSED = ("alert.received", "alert.grouped")
"""Timeline rows that repeat in a storm: a run of them is shown as one line with a count."""


def _rows(review: Review) -> list[dict[str, Any]]:
    """Return the timeline: one row per event, a run of repeated alert rows as one group."""
    escalations = {step.seq: step.escalation for step in review.story.escalations}
    rows: list[dict[str, Any]] = []
    for event in review.record.events:
        data = review.record.event_data(event)
        tone = (
            "bad"
            if event.kind.endswith(("failed", "refused"))
            else ("good" if event.kind.endswith(("succeeded", "sent", "completed")) else "")
        )
        evidence = data.get("evidence")
        row = {
            "event": event,
            "tone": tone,
            "data": data,
            "escalation": escalations.get(event.seq),
            "top_errors": evidence.get("top_errors", []) if isinstance(evidence, dict) else [],
        }
        last = rows[-1] if rows else None
        if event.kind in COLLAPSED and last is not None and last.get("kind") == "group":
            last["rows"].append(row)
        elif event.kind in COLLAPSED:
            rows.append({"kind": "group", "rows": [row]})
        else:
            rows.append({"kind": "event", **row})
    return [_single(item) for item in rows]


def _single(item: dict[str, Any]) -> dict[str, Any]:
    """Return a group of one as the plain row it is; a longer group with its counts."""
    if item["kind"] != "group":
        return item
    grouped = item["rows"]
    if len(grouped) == 1:
        return {"kind": "event", **grouped[0]}
    counts: dict[str, int] = {}
    for row in grouped:
        counts[row["event"].kind] = counts.get(row["event"].kind, 0) + 1
    return {
        **item,
        "count": len(grouped),
        "counts": ", ".join(f"{n} × {kind}" for kind, n in counts.items()),
        "first": grouped[0]["event"],
        "last": grouped[-1]["event"],
    }
