"""`watch --config FILE`: every watch option in a TOML file, the command line
overriding it; `--print-config` shows the merged options as TOML.

Keys are the long option names, without the dashes (`report-every`, or
`report_every`); values as on the command line (durations as "10m" or seconds),
a list where the option repeats (`interface = ["eth1", "eth2"]`, `rules = [...]`;
one value alone is taken as a list of one). The file becomes click's
`default_map`, so an option given on the command line wins, and a value from the
file is checked by the option's own type before anything starts: a mistake is
one line naming the file, the line and the key. Light on purpose (tomllib and
click only): the CLI reads it while parsing.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib

import click

from portmatrix.errors import PortmatrixError
from portmatrix.times import duration_text

NOT_IN_FILE = ("config", "print_config")  # options about the file itself


def keys(command: click.Command) -> dict[str, click.Option]:
    """TOML key -> option: every long option of `command` but --config itself."""
    out = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_IN_FILE:
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        if longs:
            out[longs[0][2:]] = param
    return out


def _line_of(text: str, key: str) -> str:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
            return f"line {number}"
    return ""


def load(path: str, ctx: click.Context) -> dict:
    """The options of the file at `path` as click's default_map (param name ->
    value), each checked by its option's type."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise PortmatrixError(
            f"cannot read: {exc.strerror}", file=path, where="--config", hint="check the path"
        ) from None
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PortmatrixError(
            f"not valid TOML: {exc}",
            file=path,
            hint='write one option per line: report-every = "1m"',
        ) from None
    known = keys(ctx.command)
    out = {}
    for key, value in doc.items():
        name = key.replace("_", "-")
        where = ":".join(p for p in (_line_of(text, key), key) if p)
        param = known.get(name)
        if param is None:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            raise PortmatrixError(
                "not a watch option",
                file=path,
                where=where,
                hint=f"did you mean {close[0]}?" if close else f"keys: {', '.join(sorted(known))}",
            )
        if param.multiple and not isinstance(value, list):
            value = [value]
        if isinstance(value, dict | list) and not param.multiple:
            raise PortmatrixError("needs one value, not a table or a list", file=path, where=where)
        try:
            param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise PortmatrixError(
                " ".join(exc.message.split()).rstrip("."), file=path, where=where
            ) from None
        out[param.name] = value
    return out


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def render(ctx: click.Context, values: dict) -> str:
    """The merged options (`values`: param name -> value) as a TOML file that
    --config reads back; options without a value are shown commented out."""
    lines = ["# portmatrix watch, options merged from --config and the command line"]
    for key, param in keys(ctx.command).items():
        value = values.get(param.name)
        if isinstance(param.type, click.ParamType) and param.type.name == "duration":
            value = None if value is None else duration_text(value)
        if value is None or value == ():
            lines.append(f"# {key} =")
        else:
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"
