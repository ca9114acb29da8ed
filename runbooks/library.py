"""A folder of runbooks: load and check them all at once, and pick the one for a breach."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from runbooks.loader import ConfigError, load_model
from runbooks.schema import Runbook, lint_runbook, normalise_metric

SHIPPED_RUNBOOKS = Path(__file__).parent / "library"


def load_runbooks(folder: Path) -> list[Runbook]:
    """Load every `*.yaml` in `folder`, or raise one ConfigError listing every file's problems."""
    return [runbook for _, runbook in _load(folder)]


def validate_folder(folder: Path) -> tuple[list[Runbook], list[str]]:
    """Load a folder's runbooks and return them with their warnings (raises ConfigError)."""
    loaded = _load(folder)
    warnings = [
        f"{path}: ignored: runbook files must end in .yaml" for path in sorted(folder.glob("*.yml"))
    ]
    if not loaded:
        warnings.append(f"{folder}: no runbooks, so no breach matches a runbook")
    for path, runbook in loaded:
        warnings.extend(f"{path}: {warning}" for warning in lint_runbook(runbook))
    return [runbook for _, runbook in loaded], warnings


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
                f"{path}:{_line_of_key(path, 'name')}: name: runbook {runbook.name!r} "
                f"is also defined in {first_file[runbook.name]}"
            )
            continue
        first_file[runbook.name] = path
        loaded.append((path, runbook))
    if problems:
        raise ConfigError(folder, problems)
    return loaded


def _line_of_key(path: Path, key: str) -> int:
    """Return the 1-based line of a top-level key of a YAML mapping file (1 when absent)."""
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        for key_node, _ in root.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node.start_mark.line + 1
    return 1
