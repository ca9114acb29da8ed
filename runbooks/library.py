"""A folder of runbooks: load and check them all at once, and pick the one for a breach."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from runbooks.catalog import Catalog
from runbooks.loader import ConfigError, line_of, load_model
from runbooks.schema import DIAGNOSES, Runbook, lint_runbook, normalise_metric

SHIPPED_RUNBOOKS = Path(__file__).parent / "library"


def load_runbooks(folder: Path, catalog: Catalog | None = None) -> list[Runbook]:
    """Load every `*.yaml` in `folder`, or raise one ConfigError listing every file's problems.

    With a catalog, a name a runbook gives that the catalog does not know is one of them
    (`check_against_catalog`), so the service refuses to start on it.
    """
    runbooks, _ = validate_folder(folder, catalog)
    return runbooks


def validate_folder(
    folder: Path, catalog: Catalog | None = None
) -> tuple[list[Runbook], list[str]]:
    """Load a folder's runbooks and return them with their warnings (raises ConfigError).

    With a catalog, every name a runbook gives is checked against it (`check_against_catalog`):
    a name the catalog does not know is an error, a service no runbook covers a warning.
    """
    loaded = _load(folder)
    warnings: list[str] = []
    if catalog is not None:
        errors, warnings = check_against_catalog(loaded, catalog)
        if errors:
            raise ConfigError(folder, errors)
    warnings += [
        f"{path}: ignored: runbook files must end in .yaml" for path in sorted(folder.glob("*.yml"))
    ]
    if not loaded:
        warnings.append(f"{folder}: no runbooks, so no breach matches a runbook")
    for path, runbook in loaded:
        warnings.extend(f"{path}: {warning}" for warning in lint_runbook(runbook))
    return [runbook for _, runbook in loaded], warnings


RefKind = Literal["service", "model", "failover target", "approver"]


@dataclass(frozen=True)
class Reference:
    """A name a runbook gives that something in the catalog must answer to."""

    loc: tuple[str | int, ...]
    kind: RefKind
    name: str


def references(runbook: Runbook) -> Iterator[Reference]:
    """Yield every name the runbook gives that the catalog must know, with where it is given.

    A new schema field that names a catalog entry belongs here, so that `runbooks validate`
    and the service's start-up check it.
    """
    for i, service in enumerate(runbook.match.services):
        yield Reference(("match", "services", i), "service", service)
    for i, model in enumerate(runbook.match.models):
        yield Reference(("match", "models", i), "model", model)
    for diagnosis in DIAGNOSES:
        for spec in runbook.allowed(diagnosis):
            target = getattr(spec, "target", None)
            if spec.kind == "failover" and isinstance(target, str):
                yield Reference(
                    ("actions", diagnosis, "failover", "target"), "failover target", target
                )
    for i, approver in enumerate(runbook.approval.approvers):
        yield Reference(("approval", "approvers", i), "approver", approver)


def check_against_catalog(
    loaded: Iterable[tuple[Path, Runbook]], catalog: Catalog
) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) of runbooks against the catalog, each naming file and line.

    Errors: a service, model, failover target or approver that the catalog does not
    have (a failover target must exist for every service the runbook names, or, when it names
    none, be one of the catalog's failover targets if it has any; an approver must be on a
    team's `approvers`).
    Warnings: a catalogued service that no runbook covers, and a service a runbook covers
    whose failover lacks the runbook's target (that failover is impossible there).
    """
    errors: list[str] = []
    warnings: list[str] = []
    covered: set[str] = set()
    approvers = {who for team in catalog.teams.values() for who in team.approvers}
    for path, runbook in loaded:
        root = _compose(path)
        scope = _services_of(runbook, catalog)
        covered.update(scope)
        for ref in references(runbook):
            where = f"{path}:{line_of(root, ref.loc)}: {'.'.join(map(str, ref.loc))}"
            problem, notes = _check_reference(ref, runbook, catalog, scope, approvers)
            if problem:
                errors.append(f"{where}: {problem}")
            warnings += [f"{where}: {note}" for note in notes]
    for name in sorted(set(catalog.services) - covered):
        warnings.append(
            f"catalog service {name!r}: no runbook covers it, so its breaches get the built-in "
            "policy (page only)"
        )
    return errors, warnings


def _services_of(runbook: Runbook, catalog: Catalog) -> list[str]:
    """Return the catalogued services a runbook can match (by service name and model)."""
    match = runbook.match
    return [
        name
        for name, spec in catalog.services.items()
        if (not match.services or name in match.services)
        and (not match.models or set(match.models) & set(spec.models))
    ]


def _check_reference(
    ref: Reference, runbook: Runbook, catalog: Catalog, scope: list[str], approvers: set[str]
) -> tuple[str | None, list[str]]:
    """Return the error (or None) and the warnings of one name a runbook gives."""
    if ref.kind == "service" and ref.name not in catalog.services:
        return f"no service {ref.name!r} in the catalog (known: {_known(catalog.services)})", []
    if ref.kind == "model":
        named = [s for s in catalog.services.values() if ref.name in s.models]
        if not named:
            served = {m for s in catalog.services.values() for m in s.models}
            return f"no catalog service serves model {ref.name!r} (known: {_known(served)})", []
    if ref.kind == "approver" and ref.name not in approvers:
        return (
            f"approver {ref.name!r} is on no team's `approvers` in the catalog "
            f"(known: {_known(approvers)})",
            [],
        )
    if ref.kind == "failover target":
        return _check_target(ref.name, runbook, catalog, scope)
    return None, []


def _check_target(
    wanted: str, runbook: Runbook, catalog: Catalog, scope: list[str]
) -> tuple[str | None, list[str]]:
    # The decide node takes `backup_region` to mean the catalog's `backup-region`.
    names = {wanted, wanted.replace("_", "-")}

    def targets(service: str) -> list[str]:
        failover = catalog.services[service].failover
        return [t.name for t in failover.targets] if failover is not None else []

    lacking = [s for s in scope if not names & set(targets(s))]
    everywhere = sorted({t for s in catalog.services for t in targets(s)})
    if runbook.match.services and lacking:
        missing = [s for s in lacking if s in catalog.services]
        if missing:
            return (
                f"failover target {wanted!r} is not a failover target of "
                f"{', '.join(missing)} in the catalog (known: {_known(everywhere)})",
                [],
            )
    # A generic runbook's target that no service has, while services do have targets, is a
    # misspelling; with no failover targets in the catalog at all, failover is simply not set up
    # (the warnings below say where it is impossible).
    if not runbook.match.services and everywhere and not names & set(everywhere):
        return (
            f"failover target {wanted!r} is no service's failover target in the catalog "
            f"(known: {_known(everywhere)})",
            [],
        )
    return None, [
        f"failover target {wanted!r}: service {service!r} has no such target, so this "
        "failover is impossible for it"
        for service in lacking
    ]


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def match_runbook(
    runbooks: Iterable[Runbook],
    *,
    metric: str | None,
    service: str | None,
    model: str | None,
    environment: str | None,
    segment: dict[str, str] | None = None,
) -> Runbook | None:
    """Return the most specific runbook covering the breach (ties: first name), or None."""
    canonical = normalise_metric(metric) if metric else None
    candidates = [
        runbook
        for runbook in runbooks
        if runbook.match.matches(
            metric=canonical,
            service=service,
            model=model,
            environment=environment,
            segment=segment or {},
        )
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda runbook: (-runbook.match.specificity, runbook.name))


def _load(folder: Path) -> list[tuple[Path, Runbook]]:
    """Load each runbook file with its path; collect the problems of all files into one error."""
    if not folder.is_dir():
        raise ConfigError(folder, [f"{folder}: not a folder of runbooks"])
    loaded: list[tuple[Path, Runbook]] = []
    problems: list[str] = []
    first_file: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            runbook = load_model(path, Runbook)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if runbook.name in first_file:
            problems.append(
                f"{path}:{_line_of_name(path)}: name: runbook {runbook.name!r} "
                f"is also defined in {first_file[runbook.name]}"
            )
            continue
        first_file[runbook.name] = path
        loaded.append((path, runbook))
    if problems:
        raise ConfigError(folder, problems)
    return loaded


def _line_of_name(path: Path) -> int:
    """Return the 1-based line of a runbook file's `name` key (1 when absent)."""
    return line_of(_compose(path), ("name",))


def _compose(path: Path) -> yaml.Node | None:
    return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
