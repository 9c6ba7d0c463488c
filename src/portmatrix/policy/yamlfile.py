"""Load YAML keeping line numbers, so every error can point at FILE:LINE.

Mappings become `YMap` (a dict that knows the line of each key) and
sequences `YList` (a list that knows the line of each item). Duplicate keys,
which PyYAML would silently collapse, are errors.

A file may come from a shared repository, so reading it is bounded: at most
MAX_BYTES, aliases that add at most MAX_ALIAS_VALUES values (no billion
laughs), nesting at most MAX_NESTING deep, and only the core schema's tags
(a `!!python/...` tag is an error, never silently dropped).
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


# Tags of YAML's core schema (and dates, which expiring exceptions use): any other
# tag (!!python/object/apply:..., !!binary, !custom) is an error, never ignored.
CORE_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}
MAX_NESTING = 64  # a matrix is a few levels deep; Python's recursion is not unbounded
MAX_ALIAS_VALUES = 10_000  # values aliases may add beyond those written (billion laughs)


class _Converter:
    """Composed YAML nodes into YMap/YList/scalars, with the work bounded: aliases
    may add at most MAX_ALIAS_VALUES values beyond those written in the file,
    nesting is at most MAX_NESTING deep, and only core-schema tags are read."""

    def __init__(self, root: yaml.Node, path: str) -> None:
        self.path = path
        # A constructor per file: it caches what it built, which must not outlive the load.
        self.scalars = SafeConstructor()
        self.budget = _written(root) + MAX_ALIAS_VALUES

    def error(self, node: yaml.Node, what: str, hint: str | None = None) -> MatrixError:
        return MatrixError(what, file=self.path, where=str(node.start_mark.line + 1), hint=hint)

    def convert(self, node: yaml.Node, parents: tuple[int, ...] = ()) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(
                node,
                f"aliases expand to more than {MAX_ALIAS_VALUES} values beyond those written "
                "(an alias bomb?)",
                "write the values out, or alias fewer of them",
            )
        if node.tag not in CORE_TAGS:
            shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            raise self.error(
                node,
                f"{shown} cannot be read: the tag {node.tag} is not allowed (only YAML's plain "
                "text, numbers, dates, lists and mappings are)",
                "remove the tag",
            )
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        # An alias may point back at a collection that contains it; following it
        # would never end.
        if id(node) in parents:
            raise self.error(
                node,
                "malformed YAML: an alias refers to the collection that contains it",
                "YAML aliases must not be recursive",
            )
        if len(parents) >= MAX_NESTING:
            raise self.error(node, f"nested more than {MAX_NESTING} levels deep")
        parents = (*parents, id(node))
        if isinstance(node, yaml.SequenceNode):
            seq = YList(self.convert(item, parents) for item in node.value)
            seq.line = node.start_mark.line + 1
            seq.item_lines = [item.start_mark.line + 1 for item in node.value]
            return seq
        return self.mapping(node, parents)

    def mapping(self, node: yaml.MappingNode, parents: tuple[int, ...]) -> YMap:
        out = YMap()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node, parents)
            if not isinstance(key, str | int):
                raise self.error(key_node, "a mapping key must be a plain word")
            key = str(key)
            if key in out:
                raise self.error(
                    key_node,
                    f"{key}: key given twice (first on line {out.key_lines[key]})",
                    "keep one of them",
                )
            out[key] = self.convert(value_node, parents)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out

    def scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            # A value that only looks like its type (2027-13-45, !!int abc).
            raise self.error(
                node,
                f"{node.value!r} cannot be read: {getattr(exc, 'problem', None) or exc}",
                "fix the value, or quote it to make it text",
            ) from None


def _written(root: yaml.Node) -> int:
    """How many values the file writes out (each node once, aliases not followed)."""
    seen, todo = set(), [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo += node.value
        elif isinstance(node, yaml.MappingNode):
            todo += [part for pair in node.value for part in pair]
    return len(seen)


# A matrix or inventory is kilobytes; composing YAML costs ~100 MB and 1.5 s per MB.
MAX_BYTES = 2 << 20
CAPTURE_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "pcap",
    b"\xa1\xb2\xc3\xd4": "pcap",
    b"\x4d\x3c\xb2\xa1": "pcap",
    b"\xa1\xb2\x3c\x4d": "pcap",
    b"\x0a\x0d\x0d\x0a": "pcapng",
}


def _text(data: bytes, name: str) -> str:
    """The file as text; a capture or other binary file given here says so."""
    kind = CAPTURE_MAGICS.get(data[:4]) or ("gzip" if data[:2] == b"\x1f\x8b" else None)
    if kind:
        raise MatrixError(
            f"this is a {kind} file, not YAML",
            file=name,
            hint="give captures as arguments, the matrix with --rules and the "
            "inventory with --inventory (both YAML)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixError(
            f"not text (UTF-8): byte {exc.start} is {data[exc.start]:#04x}",
            file=name,
            hint="give a YAML file (UTF-8 text)",
        ) from None


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse one YAML document from `path` (or from `text`, named `path`)."""
    name = str(path)
    if text is None:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise MatrixError("no such file", file=name, hint="check the path") from None
        except IsADirectoryError:
            raise MatrixError("is a folder", file=name, hint="give a YAML file") from None
        except OSError as exc:
            raise MatrixError(f"cannot read: {exc.strerror}", file=name) from None
        if len(data) > MAX_BYTES:
            raise MatrixError(
                f"{len(data)} bytes: larger than a matrix or inventory can be",
                file=name,
                hint=f"YAML files up to {MAX_BYTES >> 20} MB are read",
            )
        text = _text(data, name)
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
    return _Converter(node, name).convert(node)
