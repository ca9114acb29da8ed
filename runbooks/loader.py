"""Load YAML into pydantic models, naming the file, line and key of every mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A YAML file that does not fit its schema; the message names file, line and key."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.path = path
        self.problems = problems


def load_model(path: Path, model: type[M]) -> M:
    """Parse a YAML file and validate it as `model`, or raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return parse_model(text, model, path)


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives the same key twice (at any depth).

    Plain YAML keeps the last of two equal keys, so a second `actions:` block would silently
    replace the first; here it is an error naming the line of both.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: keys given beside it override the merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {first}; YAML would silently "
                    "keep only the last)",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """Return the YAML text's node tree and data, or raise ConfigError naming file and line.

    A key given twice in one mapping, at any depth, is an error (see UniqueKeyLoader).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(
            path, [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    return root, data


def parse_model(text: str, model: type[M], path: Path) -> M:
    """Validate YAML text as `model`; errors name `path`, the line and the dotted key."""
    root, data = parse_yaml(text, path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            keys = [str(part) for part in error["loc"]]
            line = line_of(root, error["loc"])
            key = ".".join(keys) or "(top level)"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key (not in the schema)"
            problems.append(f"{path}:{line}: {key}: {message}")
        raise ConfigError(path, problems) from None


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """Return the 1-based line of the deepest node of `loc` that exists in the document."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == part
                ),
                None,
            )
            if match is None:
                return line
            key_node, node = match
            line = key_node.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
