"""Load YAML keeping line numbers, so every error can point at FILE:LINE.

Mappings become `YMap` (a dict that knows the line of each key) and
sequences `YList` (a list that knows the line of each item). Duplicate keys,
which PyYAML would silently collapse, are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from portmatrix.errors import MatrixError


class YMap(dict):
    """A YAML mapping with the line of the mapping and of each of its keys."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YList(list):
    """A YAML sequence with the line of the sequence and of each item."""

    line: int
    item_lines: list[int]


_scalars = SafeConstructor()


def _convert(node: yaml.Node, path: str, parents: frozenset[int] = frozenset()) -> Any:
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        # An alias may point back at a collection that contains it; following it
        # would never end.
        if id(node) in parents:
            raise MatrixError(
                "malformed YAML: an alias refers to the collection that contains it",
                file=path,
                where=str(node.start_mark.line + 1),
                hint="YAML aliases must not be recursive",
            )
        parents = parents | {id(node)}
    if isinstance(node, yaml.MappingNode):
        out = YMap()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, path, parents)
            if not isinstance(key, str | int):
                raise MatrixError(
                    "a mapping key must be a plain word",
                    file=path,
                    where=str(key_node.start_mark.line + 1),
                )
            key = str(key)
            if key in out:
                raise MatrixError(
                    f"{key}: key given twice (first on line {out.key_lines[key]})",
                    file=path,
                    where=str(key_node.start_mark.line + 1),
                    hint="keep one of them",
                )
            out[key] = _convert(value_node, path, parents)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = YList(_convert(item, path, parents) for item in node.value)
        seq.line = node.start_mark.line + 1
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return _scalars.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:
        # A bad tag or a value that only looks like its type (2027-13-45).
        raise MatrixError(
            f"{node.value!r} cannot be read: {getattr(exc, 'problem', None) or exc}",
            file=path,
            where=str(node.start_mark.line + 1),
            hint="fix the value, or quote it to make it text",
        ) from None


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse one YAML document from `path` (or from `text`, named `path`)."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MatrixError("no such file", file=name, hint="check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MatrixError(f"cannot read: {exc}", file=name) from None
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}" if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise MatrixError(
            f"malformed YAML: {problem}",
            file=name,
            where=where,
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as exc:
        raise MatrixError(f"malformed YAML: {exc}", file=name) from None
    if node is None:
        raise MatrixError("the file is empty", file=name, hint="see docs/rules-format.md")
    return _convert(node, name)
