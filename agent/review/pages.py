"""Server-rendered review pages: sign in and out, the incident list, one incident's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

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
from agent.review.service import IncidentFilter, list_incidents, load_incident
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


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    session: SessionDep,
    app_state: AppStateDep,
    status: str = "",
    service: str = "",
    model: str = "",
) -> Response:
    """List incidents with their status and the chain's verification."""
    if not _signed_in(request, app_state):
        return RedirectResponse("/ui/login", status_code=303)
    where = IncidentFilter(
        status=status if status in STATUSES else None,
        service=service or None,
        model=model or None,
        limit=200,
    )
    incidents, total = list_incidents(session=session, where=where)
    return templates.TemplateResponse(
        request,
        "incidents.html",
        {
            "incidents": incidents,
            "total": total,
            "chain": app_state.chain.current(),
            "filters": {"status": status, "service": service, "model": model},
            "statuses": STATUSES,
            "signed_in": True,
        },
    )


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
            "decision": review.decision(),
            "diagnosis": review.diagnosis(),
            "signed_in": True,
        },
    )


def _rows(review: Review) -> list[dict[str, Any]]:
    rows = []
    for event in review.record.events:
        data = review.record.event_data(event)
        tone = (
            "bad"
            if event.kind.endswith(("failed", "refused"))
            else ("good" if event.kind.endswith(("succeeded", "sent", "completed")) else "")
        )
        rows.append(
            {
                "event": event,
                "tone": tone,
                "data": data,
                "top_errors": data.get("evidence", {}).get("top_errors", [])
                if isinstance(data.get("evidence"), dict)
                else [],
            }
        )
    return rows
