"""Escaping for each kind of output, in one place.

Strings that came from a file or a packet — interface names, rule texts, role
names, file names, exception reasons, NFLOG prefixes — reach every output. A
capture may come from an attacker and a matrix from a shared repository, so
each output kind neutralises what would act instead of being shown:

- terminal (`visible`, `for_terminal`): control characters (C0, DEL, C1),
  line and paragraph separators and bidirectional overrides are shown as
  escapes (`\\x1b`, `\\u202e`): an ESC could set the window title or clear the
  screen, a carriage return or bidi override could hide what follows.
- CSV (`csv_cell`, `csv_row`): a cell a spreadsheet would run as a formula
  (first character `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
  single quote, as OWASP recommends; control characters are made visible.
- Markdown (`markdown`, `markdown_code`): characters that start markup are
  backslash-escaped and line breaks become spaces, so a value cannot add a
  heading, a link, raw HTML or a table cell; a code span is fenced by more
  backticks than the value holds.
- JSON and JSON lines (`json_text`, `json_line`): U+2028, U+2029 and U+0085,
  line breaks to some readers, are written as \\u escapes (so one object stays
  one line), and so are DEL and the C1 controls (json escapes C0 itself).
- HTML (`html`): `html.escape`, quotes included, after `visible` (line breaks
  and tabs kept: HTML shows them as white space or in <pre>).

Renderers call these; none carries its own escaping.
"""

from __future__ import annotations

import html as _html
import json

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_INVISIBLE = [
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x200E,  # left-to-right and right-to-left marks
    0x200F,
    0x2028,  # line and paragraph separators
    0x2029,
    *range(0x202A, 0x202F),  # bidirectional embeddings and overrides
    *range(0x2066, 0x206A),  # bidirectional isolates
]
_VISIBLE = {
    c: _NAMED.get(chr(c)) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _INVISIBLE
}


def visible(text: str) -> str:
    """`text` with every control character shown as an escape."""
    return text.translate(_VISIBLE)


def for_terminal(doc):
    """A report document (dicts, lists, scalars) whose strings, keys too, are all
    safe to print (see `visible`)."""
    if isinstance(doc, str):
        return visible(doc)
    if isinstance(doc, dict):
        return {for_terminal(k): for_terminal(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [for_terminal(v) for v in doc]
    return doc


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell that no spreadsheet runs as a formula, its control characters made
    visible (the file is read in terminals too); non-text values as given."""
    if not isinstance(value, str):
        return value
    return "'" + visible(value) if value.startswith(FORMULA_STARTS) else visible(value)


def csv_row(values) -> list:
    return [csv_cell(v) for v in values]


_LINE_BREAKS = {ord(c): " " for c in "\n\r\u2028\u2029\u0085"}
_MARKDOWN = {ord(c): "\\" + c for c in "\\`*_[]<>|~&"} | _LINE_BREAKS


def markdown(text: str) -> str:
    """`text` as literal Markdown inline text: on one line, starting no markup."""
    return visible(text.translate(_MARKDOWN))


def markdown_code(text: str, table: bool = False) -> str:
    """`text` as a Markdown code span (shown as written): fenced by more backticks
    than it holds in a row, on one line; in a table cell (`table`), `|` is escaped
    as GFM tables need even inside code."""
    text = visible(text.translate(_LINE_BREAKS))
    if table:
        text = text.replace("|", "\\|")
    run, longest = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# What json.dumps(ensure_ascii=False) leaves raw but some readers split lines on
# (U+2028, U+2029, U+0085) or a terminal acts on (DEL, the other C1 controls).
_JSON_RAW = {c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x7F, *range(0x80, 0xA0))}


def json_text(text: str) -> str:
    """JSON text (already encoded) with those characters escaped: valid JSON, and
    the same values."""
    return text.translate(_JSON_RAW)


def json_line(obj) -> str:
    """One JSON object on one line (no newline added), keys sorted."""
    return json_text(json.dumps(obj, sort_keys=True, ensure_ascii=False))


_HTML_VISIBLE = {c: v for c, v in _VISIBLE.items() if c not in (ord("\n"), ord("\t"))}


def html(value) -> str:
    """Text for HTML, attributes included; None as nothing. Line breaks and tabs
    stay (a <pre> of suggested YAML keeps its lines); other controls are shown."""
    return _html.escape(("" if value is None else str(value)).translate(_HTML_VISIBLE))
