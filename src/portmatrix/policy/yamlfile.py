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


def _convert(
    node: yaml.Node, path: str, scalars: SafeConstructor, parents: frozenset[int] = frozenset()
) -> Any:
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
            key = _convert(key_node, path, scalars, parents)
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
            out[key] = _convert(value_node, path, scalars, parents)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = YList(_convert(item, path, scalars, parents) for item in node.value)
        seq.line = node.start_mark.line + 1
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return scalars.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:
        # A bad tag or a value that only looks like its type (2027-13-45).
        raise MatrixError(
            f"{node.value!r} cannot be read: {getattr(exc, 'problem', None) or exc}",
            file=path,
            where=str(node.start_mark.line + 1),
            hint="fix the value, or quote it to make it text",
        ) from None


MAX_BYTES = 16 << 20
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
    # A constructor per file: it caches what it built, which must not outlive the load.
    return _convert(node, name, SafeConstructor())
