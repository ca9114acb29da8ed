"""What a responder reads: the incident report in Slack (Block Kit), its PagerDuty note and page.

One set of facts, three renderings. The report says what breached (monitor, metric, value
against threshold, segment, the Arize link), the diagnosis in one sentence with the strongest
evidence for and against it, what was done and how it ended, and the runbook's suggested next
steps. It is tiered by severity: a paging severity (critical, error) gets the complete message,
evidence and all; a warning or info gets the short one. Every text from outside is escaped for
mrkdwn here (or made `plain` for PagerDuty by the caller), links are built only from http(s)
URLs, and redaction happens where the message is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agent.alerts.models import Breach, one_line, version_label
from agent.approvals.models import action_in_words
from agent.graph.state import IncidentState
from agent.outside_text import http_url, mrkdwn, mrkdwn_link
from tools.text import fit as clip

SEVERITIES = ("info", "warning", "error", "critical")
COMPLETE = frozenset({"critical", "error"})
"""Severities that page someone: their report is complete; the others get the short one."""
MARKS = {
    "critical": ":red_circle:",
    "error": ":large_orange_circle:",
    "warning": ":large_yellow_circle:",
    "info": ":large_blue_circle:",
}
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FALLBACK_LIMIT = 3000
SHORT_STEPS = 3
STATUS_WORDS = {
    "done": "done",
    "failed": "FAILED",
    "dry_run": "dry run",
    "not_taken": "not taken",
    "proposed": "proposed",
    "passed": "passed",
    "skipped": "skipped",
}
MODEL_WRITTEN = "Model-written (LLM analyst; a hypothesis, not a finding)"


def short_id(incident_id: object) -> str:
    """Return the first eight characters of an incident id: enough to tell incidents apart."""
    return str(incident_id)[:8]


def incident_severity(state: IncidentState) -> str:
    """Return the incident's severity: the highest of its planned and taken actions' severities.

    A failed verification's critical page raises it; with nothing planned it is `warning`.
    """
    items = [*state.get("plan", []), *state.get("actions", [])]
    found = [str(item.get("severity")) for item in items if item.get("severity") in SEVERITIES]
    return max(found, key=SEVERITIES.index) if found else "warning"


def source_of(finding: Mapping[str, Any]) -> str | None:
    """Return where a finding was read, for people (`CloudWatch /llm/gateway`), if known.

    Findings from before sources were recorded say it in what they asked.
    """
    source = finding.get("source")
    if isinstance(source, str) and source:
        return source
    asked = finding.get("asked")
    if not isinstance(asked, Mapping):
        return None
    if asked.get("log_groups"):
        return "CloudWatch " + ", ".join(map(str, asked["log_groups"]))
    if asked.get("project"):
        kind = f" ({asked['resource_type']})" if asked.get("resource_type") else ""
        return f"GCP {asked['project']}{kind}"
    return None


def evidence_label(finding: Mapping[str, Any]) -> str:
    """Return the probe and, when known, its source: `logs (CloudWatch /llm/gateway)`."""
    source = source_of(finding)
    return f"{finding.get('probe')} ({source})" if source else str(finding.get("probe"))


def evidence_line(finding: Mapping[str, Any]) -> str:
    """Return one finding as `label: status — summary` (raw text: escape it where it goes)."""
    return f"{evidence_label(finding)}: {finding.get('status')} — {finding.get('summary', '')}"


def evidence_lines(state: IncidentState) -> list[str]:
    """Return every finding of the run as a line naming its source."""
    return [evidence_line(f) for f in state.get("findings", [])]


def strongest(diagnosis: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return the first evidence for and the first against the chosen diagnosis."""
    for candidate in diagnosis.get("candidates") or []:
        if candidate.get("kind") == diagnosis.get("kind"):
            pro = candidate.get("evidence_for") or [None]
            con = candidate.get("evidence_against") or [None]
            return pro[0], con[0]
    return None, None


def action_words(action: Mapping[str, Any], service: str | None) -> str:
    """Return what an action (planned or taken) does, in words."""
    return action_in_words(
        str(action.get("kind")),
        service=service,
        target=action.get("target"),
        severity=action.get("severity"),
        team=action.get("team"),
        version=action.get("version"),
        previous_version=action.get("previous_version"),
        change_kind=action.get("change_kind"),
    )


def outcome_line(action: Mapping[str, Any], service: str | None) -> str:
    """Return `what was done: result — what the system said` for one action."""
    status = str(action.get("status"))
    # An action not taken says why (`rejected by U0ALICE: …`), not its own description again.
    why = action.get("reason") if status == "not_taken" else None
    said = why or action.get("summary") or action.get("reason") or ""
    line = f"{action_words(action, service)}: {STATUS_WORDS.get(status, status)}"
    return f"{line} — {said}" if said else line


def done_lines(state: IncidentState) -> list[str]:
    """Return what was done and its result, the verification last (raw text)."""
    service = state.get("service")
    lines = [outcome_line(a, service) for a in state.get("actions", [])]
    verification = state.get("verification")
    if verification:
        status = str(verification.get("status"))
        lines.append(
            f"verification of the new route: {STATUS_WORDS.get(status, status)}"
            + (f" — {verification['summary']}" if verification.get("summary") else "")
        )
    return lines


def breach_facts(breach: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (label, value) for what breached: monitor, metric, value vs threshold, segment…."""
    facts: list[tuple[str, str]] = []
    monitor = breach.get("monitor_name") or breach.get("monitor_id")
    if monitor:
        facts.append(("Monitor", str(monitor)))
    if breach.get("metric"):
        facts.append(("Metric", str(breach["metric"])))
    value, threshold = breach.get("value"), breach.get("threshold")
    if value is not None:
        against = ""
        if threshold is not None:
            against = f" {breach.get('operator') or 'vs'} threshold {threshold:g}"
        facts.append(("Value", f"{value:g}{against}"))
    segment = breach.get("segment") or {}
    if segment:
        facts.append(("Segment", ", ".join(f"{k}={v}" for k, v in sorted(segment.items()))))
    if breach.get("model_id"):
        version = breach.get("model_version")
        model = str(breach["model_id"]) + (f" {version_label(str(version))}" if version else "")
        facts.append(("Model", model))
    if breach.get("environment"):
        facts.append(("Environment", str(breach["environment"])))
    return facts


def title_of(state: IncidentState) -> str:
    """Return the incident's one-line title."""
    return Breach.model_validate(state["breach"]).title(state.get("service"))


def summary_message(
    state: IncidentState,
    public_url: str | None,
    *,
    next_steps: list[str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Return the Slack text and Block Kit blocks of the incident report.

    `next_steps` are the runbook's for the diagnosis. The LLM analyst's hypothesis, if any, is
    shown marked as model-written after the facts, never instead of them. Every value from
    outside is escaped, so nothing in the message can mention anyone or make a link but the
    service's own.
    """
    breach = state["breach"]
    diagnosis = state.get("diagnosis", {})
    severity = incident_severity(state)
    complete = severity in COMPLETE
    title = title_of(state)
    kind = str(diagnosis.get("kind", "none"))
    steps = list(next_steps or [])
    shown_steps = steps if complete else steps[:SHORT_STEPS]
    done = done_lines(state)
    pro, con = strongest(diagnosis)

    blocks: list[dict[str, Any]] = [header(f"{MARKS[severity]} {severity.upper()} · {title}")]
    if complete and (facts := breach_facts(breach)):
        blocks.append(
            {
                "type": "section",
                "text": _text("*What breached*"),
                "fields": [
                    _text(f"*{label}*\n{mrkdwn(value)}", FIELD_LIMIT) for label, value in facts
                ][:10],
            }
        )
    said = [f"*Diagnosis:* `{mrkdwn(kind)}` — {mrkdwn(diagnosis.get('summary', ''))}"]
    if complete:
        said += [f"*Strongest evidence for:* {mrkdwn(pro)}"] if pro else []
        said += [f"*Strongest evidence against:* {mrkdwn(con)}"] if con else []
    blocks.append(section(said))
    blocks.append(section(["*What was done*", *bullets(done, "none")]))
    if shown_steps:
        numbered = [f"{i}. {mrkdwn(step)}" for i, step in enumerate(shown_steps, 1)]
        more = len(steps) - len(shown_steps)
        numbered += [f"_…and {more} more in the runbook_"] if more > 0 else []
        blocks.append(section(["*Suggested next steps*", *numbered]))
    if complete:
        blocks.append(section(["*Evidence*", *bullets(evidence_lines(state), "none gathered")]))
    hypothesis = _hypothesis(state)
    if hypothesis:
        blocks.append(section([f":robot_face: *{MODEL_WRITTEN}*", hypothesis]))
    blocks.append(context(_context_items(state, public_url)))

    first = f" Next: {steps[0]}" if steps else ""
    fallback = (
        f"{severity.upper()}: {title}. Diagnosis: {kind} — {diagnosis.get('summary', '')}. "
        f"Done: {'; '.join(done) or 'nothing'}.{first}"
    )
    return mrkdwn(clip(one_line(fallback), FALLBACK_LIMIT)), blocks


def page_note(
    state: IncidentState, public_url: str | None, *, next_steps: list[str] | None = None
) -> str:
    """Return the report as plain text lines for a PagerDuty note (the caller makes it inert)."""
    breach = state["breach"]
    diagnosis = state.get("diagnosis", {})
    pro, con = strongest(diagnosis)
    lines = [
        f"{incident_severity(state).upper()}: {title_of(state)}",
        f"Diagnosis: {diagnosis.get('kind', 'none')} — {diagnosis.get('summary', '')}",
    ]
    lines += [f"Strongest evidence for: {pro}"] if pro else []
    lines += [f"Strongest evidence against: {con}"] if con else []
    facts = breach_facts(breach)
    if facts:
        lines.append("What breached: " + "; ".join(f"{k.lower()} {v}" for k, v in facts))
    lines += ["What was done:", *(f"- {line}" for line in done_lines(state) or ["nothing"])]
    if next_steps:
        lines += ["Suggested next steps:", *(f"{i}. {s}" for i, s in enumerate(next_steps, 1))]
    lines += ["Evidence:", *(f"- {line}" for line in evidence_lines(state) or ["none gathered"])]
    lines.append(f"Incident {state['incident_id']} · runbook {state.get('runbook', '-')}")
    links = _links(state, public_url)
    lines += [f"{label}: {url}" for label, url in links]
    return "\n".join(lines)


def page_details(
    state: IncidentState,
    public_url: str | None,
    *,
    next_steps: list[str] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Return a page's custom details: what breached, the diagnosis, evidence, next steps."""
    diagnosis = state.get("diagnosis", {})
    pro, con = strongest(diagnosis)
    details: dict[str, Any] = {
        "incident": f"{title_of(state)} ({short_id(state['incident_id'])})",
        "incident_id": state["incident_id"],
        "what breached": {label.lower(): value for label, value in breach_facts(state["breach"])},
        "diagnosis": diagnosis.get("summary", ""),
        "diagnosis kind": diagnosis.get("kind"),
        "strongest evidence for": pro,
        "strongest evidence against": con,
        "next steps": list(next_steps or []),
        "evidence": evidence_lines(state),
        "runbook": state.get("runbook"),
    }
    if reason:
        details["paged because"] = reason
    details.update({label.lower(): url for label, url in _links(state, public_url)})
    return {key: value for key, value in details.items() if value not in (None, "", [], {})}


def page_links(state: IncidentState, public_url: str | None) -> list[dict[str, str]]:
    """Return a page's links: the Arize monitor and the incident's audit trail (http(s) only)."""
    return [{"href": url, "text": label} for label, url in _links(state, public_url)]


def header(text: str) -> dict[str, Any]:
    """Return a header block: plain text with no `<` (which opens every mention and link in
    Slack, so the header stays inert), cut to Slack's 150 characters."""
    line = clip(one_line(text.replace("<", "\u2039")), HEADER_LIMIT)
    return {"type": "header", "text": {"type": "plain_text", "text": line, "emoji": True}}


def section(lines: Iterable[str]) -> dict[str, Any]:
    """Return a mrkdwn section of these lines, whole lines dropped to stay within the limit."""
    return {"type": "section", "text": _text(fit(list(lines), SECTION_LIMIT))}


def context(items: list[str]) -> dict[str, Any]:
    """Return a context block of up to ten mrkdwn items."""
    return {"type": "context", "elements": [_text(item) for item in items[:10]]}


def bullets(lines: list[str], empty: str) -> list[str]:
    """Return raw lines as escaped mrkdwn bullets (one bullet saying `empty` when none)."""
    return [f"• {mrkdwn(line)}" for line in lines] or [f"• {empty}"]


def fit(lines: list[str], limit: int) -> str:
    """Join lines, leaving out the last ones (and saying how many) rather than cutting one."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"\n_…and {rest} more (see the audit trail)_"
        if len("\n".join([*kept, line])) + (len(tail) if rest > 1 else 0) > limit:
            return "\n".join([*kept, tail.strip()]) if kept else clip(line, limit)
        kept.append(line)
    return "\n".join(kept)


def _text(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _hypothesis(state: IncidentState) -> str | None:
    analysis = state.get("analysis") or {}
    summary = (analysis.get("hypothesis") or {}).get("summary")
    if not summary:
        return None
    fate = "adopted" if analysis.get("proposal_allowed") else "discarded"
    return f"Hypothesis: {mrkdwn(summary)} (its proposal was {fate} by the runbook)"


def _links(state: IncidentState, public_url: str | None) -> list[tuple[str, str]]:
    links = []
    monitor = http_url(state["breach"].get("url"))
    if monitor is not None:
        links.append(("Arize monitor", monitor))
    if public_url and http_url(public_url):
        links.append(
            ("Audit trail", f"{public_url.rstrip('/')}/ui/incidents/{state['incident_id']}")
        )
    return links


def _context_items(state: IncidentState, public_url: str | None) -> list[str]:
    items = [
        f"Incident `{short_id(state['incident_id'])}`",
        f"runbook `{mrkdwn(state.get('runbook', '-'))}`",
    ]
    items += [mrkdwn_link(url, label) for label, url in _links(state, public_url)]
    return items
