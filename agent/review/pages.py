"""Server-rendered review pages: sign in, the incident list, and one incident's timeline."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from agent.api.deps import (
    VIEWER_COOKIE,
    AppStateDep,
    SessionDep,
    is_viewer,
    viewer_session_value,
    viewer_token_matches,
)
from agent.review.export import Review
from agent.review.service import IncidentFilter, list_incidents, load_incident
from audit.timeline import event_summary

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["when"] = lambda moment: f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "—"
templates.env.filters["summary"] = event_summary
STATUSES = ("open", "resolved")


def _signed_in(request: Request, app_state: AppStateDep) -> bool:
    return is_viewer(request, app_state.settings)


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
    session_value = viewer_session_value(app_state.settings)
    if session_value is None or not viewer_token_matches(app_state.settings, token):
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
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
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
