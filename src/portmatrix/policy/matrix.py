"""The allowed port matrix: roles, rules and exceptions, loaded from layered YAML files.

Loading never stops at the first problem: every problem is collected with its
file, line and key, so `rules lint` can show them all. Other commands call
`load_matrix`, which raises the first error.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from portmatrix.addresses import Entry, parse_entry
from portmatrix.errors import MatrixError
from portmatrix.policy.schema import EXCEPTION, MATRIX, PROTOS, ROLE, RULE, Section
from portmatrix.policy.yamlfile import YList, YMap, load_yaml

PORTLESS = ("icmp", "icmpv6")
ANY = "any"  # the implicit role of every address

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ROLE = re.compile(r"^[a-z0-9]+([-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Problem:
    """Something wrong in a matrix or inventory file, with where it is and the fix."""

    severity: str  # "error": the file cannot be used; "warning": it can, but look
    file: str
    line: int
    key: str
    what: str
    hint: str = ""

    def error(self) -> MatrixError:
        return MatrixError(
            f"{self.key}: {self.what}" if self.key else self.what,
            file=self.file,
            where=str(self.line),
            hint=self.hint or None,
        )

    def __str__(self) -> str:
        return str(self.error())


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    entries: tuple[Entry, ...] = ()  # addresses and hostnames the vendor itself fixed
    source: str = ""  # FILE:LINE


@dataclass(frozen=True)
class Rule:
    """Traffic the matrix allows: `from_role` opens `proto`/`ports` on `to_role`."""

    id: str
    service: str
    proto: str
    ports: tuple[tuple[int, int], ...]  # inclusive ranges; () for ICMP
    from_role: str
    to_role: str
    direction: str = "bidirectional"
    initiator: str = "from"
    required: bool = False
    description: str = ""
    ref: str = ""
    icmp_types: tuple[int, ...] = ()  # () = every type
    source: str = ""

    def has_port(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ports)

    @property
    def ports_text(self) -> str:
        return format_ports(self.ports)


@dataclass(frozen=True)
class MatrixException:
    """A site's allowance for specific hosts or roles, with a reason and maybe an expiry."""

    id: str
    proto: str
    ports: tuple[tuple[int, int], ...]
    from_side: tuple[str, ...]  # role names and address entries, as written
    to_side: tuple[str, ...]
    reason: str
    owner: str = ""
    expires: dt.date | None = None
    source: str = ""

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


@dataclass
class Matrix:
    name: str
    description: str = ""
    vendor: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    exceptions: list[MatrixException] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def is_role_name(name: object) -> bool:
    """Whether `name` can be declared as a role (lowercase words joined by - or _)."""
    return isinstance(name, str) and bool(_ROLE.match(name)) and name != ANY


def check_role_names(names, matrix: Matrix, option: str) -> None:
    """Raise a one-line error for a role name the matrix does not define (with the
    closest names): a typo must never select nothing and pass as clean."""
    import difflib

    for name in names:
        if name != ANY and name not in matrix.roles:
            close = difflib.get_close_matches(name, list(matrix.roles), n=3, cutoff=0.5)
            guess = f"did you mean {' or '.join(close)}? " if close else ""
            raise MatrixError(
                f"unknown role {name!r}",
                where=option,
                hint=f"{guess}roles: {', '.join(sorted(matrix.roles))}",
            )


def port_value(lo: int, hi: int) -> int | str:
    """A run of ports as a matrix file writes it (parse_ports reads it back): 443,
    or "8000-8099"."""
    return lo if lo == hi else f"{lo}-{hi}"


def format_ports(ports) -> str:
    """Runs of ports (lo, hi) as people write them: "22, 8000-8099"."""
    return ", ".join(str(port_value(lo, hi)) for lo, hi in ports)


def bundled_names() -> list[str]:
    """Names of the matrices shipped inside the package."""
    folder = resources.files("portmatrix") / "rules"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(name_or_path: str) -> tuple[str, str | None]:
    """(display name, text) of a bundled matrix, or (path, None) for a file."""
    looks_like_path = "/" in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if not looks_like_path:
        resource = resources.files("portmatrix") / "rules" / f"{name_or_path}.yaml"
        if resource.is_file():
            return f"{name_or_path} (bundled)", resource.read_text(encoding="utf-8")
        if not Path(name_or_path).exists():
            known = ", ".join(bundled_names()) or "none"
            raise MatrixError(
                f"no bundled matrix named {name_or_path!r}",
                file=name_or_path,
                hint=f"bundled matrices: {known}; or give a path to a YAML file",
            )
    return name_or_path, None


def load_matrix(names_or_paths: list[str] | tuple[str, ...]) -> Matrix:
    """Load and layer matrix files; raise the first error as a MatrixError."""
    matrix = collect_matrix(names_or_paths)
    for problem in matrix.problems:
        if problem.severity == "error":
            raise problem.error()
    return matrix


def collect_matrix(names_or_paths: list[str] | tuple[str, ...]) -> Matrix:
    """Load and layer matrix files, collecting every problem instead of raising."""
    if not names_or_paths:
        raise MatrixError("no matrix given", hint="pass --rules NAME|PATH (e.g. thoughtspot)")
    matrix = Matrix(name="")
    for item in names_or_paths:
        name, text = resolve(item)
        data = load_yaml(name, text)
        if _looks_like_inventory(data):
            raise MatrixError(
                "this looks like an inventory (roles with addresses, no rules), not a matrix",
                file=name,
                hint="give it as --inventory, and the matrix (by name or path) as the matrix",
            )
        _Layer(matrix, name, data).load()
        matrix.files.append(name)
    _check_role_references(matrix)
    return matrix


def _looks_like_inventory(data: Any) -> bool:
    if not isinstance(data, YMap) or not isinstance(data.get("roles"), YMap):
        return False
    if set(data) - {"roles", "hosts"}:
        return False
    return any(isinstance(v, YList) for v in data["roles"].values())


class _Layer:
    """Reads one matrix file into the matrix being built, noting problems."""

    def __init__(self, matrix: Matrix, file: str, data: Any) -> None:
        self.m = matrix
        self.file = file
        self.data = data

    def problem(
        self, line: int, key: str, what: str, hint: str = "", severity: str = "error"
    ) -> None:
        self.m.problems.append(Problem(severity, self.file, line, key, what, hint))

    def unknown_keys(self, section: Section, mapping: YMap, prefix: str) -> None:
        """One problem per key `section` does not declare."""
        for k in section.unknown(mapping):
            self.problem(
                mapping.line_of(k),
                f"{prefix}.{k}" if prefix else k,
                "unknown key",
                section.expected,
            )

    def load(self) -> None:
        data = self.data
        if not isinstance(data, YMap):
            self.problem(
                getattr(data, "line", 1),
                "",
                "a matrix file is a mapping",
                "start with `name:`, `roles:` and `rules:` (docs/rules-format.md)",
            )
            return
        self.unknown_keys(MATRIX, data, "")
        name = data.get("name")
        if not self.m.name:
            if not isinstance(name, str) or not name:
                self.problem(
                    data.line_of("name"), "name", "missing or not a word", MATRIX.key("name").hint
                )
            self.m.name = str(name or "")
            self.m.description = str(data.get("description") or "")
            vendor = data.get("vendor") or {}
            if isinstance(vendor, dict):
                self.m.vendor = {str(k): str(v) for k, v in vendor.items()}
        self._roles(data.get("roles"), data)
        self._rules(data.get("rules"), data)
        self._exceptions(data.get("exceptions"), data)

    def _roles(self, roles: Any, data: YMap) -> None:
        if roles is None:
            return
        if not isinstance(roles, YMap):
            self.problem(
                data.line_of("roles"),
                "roles",
                "must be a mapping of role name to its description",
                "e.g. `roles: {nodes: {description: All nodes}}`",
            )
            return
        for name, spec in roles.items():
            line = roles.line_of(name)
            key = f"roles.{name}"
            if not _ROLE.match(name) or name == ANY:
                self.problem(
                    line,
                    key,
                    "a role name is lowercase words joined by '-'"
                    + (" and `any` is reserved" if name == ANY else ""),
                )
                continue
            description, entries = "", []
            if isinstance(spec, str) or spec is None:
                description = spec or ""
            elif isinstance(spec, YMap):
                self.unknown_keys(ROLE, spec, key)
                description = str(spec.get("description") or "")
                for list_key in ("addresses", "hostnames"):
                    entries += self._entries(spec.get(list_key), spec, f"{key}.{list_key}")
            else:
                self.problem(line, key, "must be a description or a mapping")
                continue
            role = Role(name, description, tuple(entries), f"{self.file}:{line}")
            if name in self.m.roles:
                self._repeated_role(self.m.roles[name], role, line, key)
                continue
            self.m.roles[name] = role

    def _repeated_role(self, first: Role, again: Role, line: int, key: str) -> None:
        """A layered file may repeat a role exactly (a drafted additions file copies
        the roles of its base, so it also loads alone); redefining it is an error."""
        if (again.description, again.entries) != (first.description, first.entries):
            self.problem(
                line,
                key,
                f"role already defined at {first.source}",
                "a layered file may add roles, or repeat one exactly, not redefine it",
            )

    def _entries(self, items: Any, parent: YMap, key: str) -> list[Entry]:
        if items is None:
            return []
        if not isinstance(items, YList):
            items = YList([items])
            items.line = parent.line_of(key.rsplit(".", 1)[-1])
            items.item_lines = [items.line]
        out = []
        for item, line in zip(items, items.item_lines, strict=True):
            try:
                out.append(parse_entry(str(item)))
            except ValueError as exc:
                self.problem(
                    line, key, str(exc), "write an address, a CIDR block, a range a-b or a hostname"
                )
        return out

    def _rules(self, rules: Any, data: YMap) -> None:
        if rules is None:
            return
        if not isinstance(rules, YList):
            self.problem(
                data.line_of("rules"),
                "rules",
                "must be a list of rules",
                "each item starts with `- id: ...`",
            )
            return
        seen = {r.id: r.source for r in self.m.rules}
        for item, line in zip(rules, rules.item_lines, strict=True):
            rule = self._rule(item, line)
            if rule is None:
                continue
            if rule.id in seen:
                self.problem(
                    line,
                    f"rules.{rule.id}",
                    f"duplicate rule id (also at {seen[rule.id]})",
                    "rule ids must be unique across all layered files",
                )
                continue
            seen[rule.id] = rule.source
            self.m.rules.append(rule)

    def _rule(self, item: Any, line: int) -> Rule | None:
        if not isinstance(item, YMap):
            self.problem(line, "rules", "each rule is a mapping", "start it with `- id: ...`")
            return None
        rid = item.get("id")
        key = f"rules.{rid}" if rid else f"rules[line {line}]"
        self.unknown_keys(RULE, item, key)
        before = len(self.m.problems)
        if not isinstance(rid, str) or not _ID.match(rid):
            self.problem(
                item.line_of("id"),
                f"{key}.id",
                f"{rid!r} is not a kebab-case id",
                RULE.key("id").hint,
            )
        proto = self._proto(item, key)
        ports = self._ports(item, key, proto)
        icmp_types = self._icmp_types(item, key, proto)
        from_role = self._word(item, "from", key, required=True)
        to_role = self._word(item, "to", key, required=True)
        direction = self._choice(item, RULE.key("direction"), key)
        initiator = self._choice(item, RULE.key("initiator"), key)
        required = item.get("required", False)
        if not isinstance(required, bool):
            self.problem(
                item.line_of("required"), f"{key}.required", f"{required!r} is not true or false"
            )
            required = False
        for text_key in (k.name for k in RULE.keys if k.kind == "text"):
            value = item.get(text_key)
            if value is not None and not isinstance(value, str | int):
                self.problem(item.line_of(text_key), f"{key}.{text_key}", "must be text")
        if not item.get("service"):
            self.problem(
                item.line_of("service"), f"{key}.service", "missing", RULE.key("service").hint
            )
        if len(self.m.problems) > before:
            return None
        return Rule(
            id=rid,
            service=str(item["service"]),
            proto=proto,
            ports=ports,
            from_role=from_role,
            to_role=to_role,
            direction=direction,
            initiator=initiator,
            required=required,
            description=str(item.get("description") or ""),
            ref=str(item.get("ref") or ""),
            icmp_types=icmp_types,
            source=f"{self.file}:{line}",
        )

    def _proto(self, item: YMap, key: str) -> str:
        proto = item.get("proto")
        if not isinstance(proto, str) or proto.lower() not in PROTOS:
            self.problem(
                item.line_of("proto"),
                f"{key}.proto",
                f"{proto!r} is not a protocol" if proto else "missing",
                f"use one of {', '.join(PROTOS)}",
            )
            return ""
        return proto.lower()

    def _ports(self, item: YMap, key: str, proto: str) -> tuple[tuple[int, int], ...]:
        raw = item.get("ports")
        line = item.line_of("ports")
        if proto in PORTLESS:
            if raw is not None:
                self.problem(
                    line,
                    f"{key}.ports",
                    f"{proto} has no ports",
                    "remove `ports` (use `icmp_types` to narrow ICMP)",
                )
            return ()
        if raw is None:
            if proto:
                self.problem(line, f"{key}.ports", "missing", RULE.key("ports").hint)
            return ()
        try:
            return parse_ports(raw)
        except ValueError as exc:
            self.problem(
                line,
                f"{key}.ports",
                str(exc),
                "ports are numbers 0-65535, lists of them, or ranges low-high",
            )
            return ()

    def _icmp_types(self, item: YMap, key: str, proto: str) -> tuple[int, ...]:
        raw = item.get("icmp_types")
        if raw is None:
            return ()
        line = item.line_of("icmp_types")
        if proto not in PORTLESS:
            self.problem(
                line,
                f"{key}.icmp_types",
                "only ICMP rules take icmp_types",
                "remove it, or set proto: icmp",
            )
            return ()
        values = raw if isinstance(raw, list) else [raw]
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values
        ):
            self.problem(
                line,
                f"{key}.icmp_types",
                f"{raw!r} is not a list of ICMP types 0-255",
                "e.g. icmp_types: [0, 8]",
            )
            return ()
        return tuple(sorted(set(values)))

    def _word(self, item: YMap, name: str, key: str, required: bool = False) -> str:
        value = item.get(name)
        if value is None:
            if required:
                self.problem(item.line_of(name), f"{key}.{name}", "missing", RULE.key(name).hint)
            return ""
        if not isinstance(value, str):
            self.problem(
                item.line_of(name),
                f"{key}.{name}",
                f"{value!r} is not a role name",
                "name one role (or `any`)",
            )
            return ""
        return value

    def _choice(self, item: YMap, spec, key: str) -> str:
        """A value among `spec.choices`, or its default (noting the problem)."""
        value = item.get(spec.name, spec.default)
        if value not in spec.choices:
            self.problem(
                item.line_of(spec.name),
                f"{key}.{spec.name}",
                f"{value!r} is not allowed",
                f"use one of {', '.join(spec.choices)}",
            )
            return spec.default
        return value

    def _exceptions(self, items: Any, data: YMap) -> None:
        if items is None:
            return
        if not isinstance(items, YList):
            self.problem(data.line_of("exceptions"), "exceptions", "must be a list")
            return
        seen = {e.id for e in self.m.exceptions}
        for item, line in zip(items, items.item_lines, strict=True):
            if not isinstance(item, YMap):
                self.problem(line, "exceptions", "each exception is a mapping")
                continue
            exc = self._exception(item, line, seen)
            if exc is not None:
                seen.add(exc.id)
                self.m.exceptions.append(exc)

    def _exception(self, item: YMap, line: int, seen: set[str]) -> MatrixException | None:
        eid = item.get("id")
        key = f"exceptions.{eid}" if eid else f"exceptions[line {line}]"
        before = len(self.m.problems)
        self.unknown_keys(EXCEPTION, item, key)
        if not isinstance(eid, str) or not _ID.match(eid):
            self.problem(item.line_of("id"), f"{key}.id", f"{eid!r} is not a kebab-case id")
        elif eid in seen:
            self.problem(line, key, "duplicate exception id")
        proto = self._proto(item, key)
        ports = self._ports(item, key, proto)
        sides = [self._sides(item, side, key) for side in ("from", "to")]
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            self.problem(
                item.line_of("reason"), f"{key}.reason", "missing", EXCEPTION.key("reason").hint
            )
        expires = self._date(item, "expires", key)
        if len(self.m.problems) > before:
            return None
        return MatrixException(
            id=eid,
            proto=proto,
            ports=ports,
            from_side=sides[0],
            to_side=sides[1],
            reason=reason,
            owner=str(item.get("owner") or ""),
            expires=expires,
            source=f"{self.file}:{line}",
        )

    def _sides(self, item: YMap, side: str, key: str) -> tuple[str, ...]:
        """An exception's `from` or `to`: role names and address entries, as written."""
        raw = item.get(side)
        values = raw if isinstance(raw, list) else [raw] if raw is not None else []
        if not values or not all(isinstance(v, str) for v in values):
            self.problem(
                item.line_of(side), f"{key}.{side}", "missing or not text", EXCEPTION.key(side).hint
            )
        for value in values:
            if isinstance(value, str) and not _is_role_word(value):
                try:
                    parse_entry(value)
                except ValueError as exc:
                    self.problem(item.line_of(side), f"{key}.{side}", str(exc))
        return tuple(str(v) for v in values)

    def _date(self, item: YMap, name: str, key: str) -> dt.date | None:
        value = item.get(name)
        if value is not None and not isinstance(value, dt.date):
            try:
                value = dt.date.fromisoformat(str(value))
            except ValueError:
                self.problem(
                    item.line_of(name),
                    f"{key}.{name}",
                    f"{value!r} is not a date",
                    "write it as YYYY-MM-DD",
                )
                return None
        if isinstance(value, dt.datetime):
            value = value.date()
        return value


def _is_role_word(value: str) -> bool:
    return bool(_ROLE.match(value)) and not value.replace(".", "").isdigit() and "." not in value


def parse_ports(raw: Any) -> tuple[tuple[int, int], ...]:
    """Ports as sorted inclusive ranges from 22, "22", "20123-32768" or a list of them."""
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise ValueError("the port list is empty")
    out = []
    for value in values:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a port")
        if isinstance(value, int):
            lo = hi = value
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
            lo = hi = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", value):
            lo, hi = (int(p) for p in value.split("-"))
            if hi < lo:
                raise ValueError(f"range {value!r} ends before it starts")
        else:
            raise ValueError(f"{value!r} is not a port or a range")
        for port in (lo, hi):
            if not 0 <= port <= 65535:
                raise ValueError(f"port {port} is outside 0-65535")
        out.append((lo, hi))
    return tuple(sorted(set(out)))


def _check_role_references(matrix: Matrix) -> None:
    """Every role a rule names must be defined in some layer (or be `any`)."""
    for rule in matrix.rules:
        file, _, line = rule.source.rpartition(":")
        for side, role in (("from", rule.from_role), ("to", rule.to_role)):
            if role != ANY and role not in matrix.roles:
                matrix.problems.append(
                    Problem(
                        "error",
                        file,
                        int(line),
                        f"rules.{rule.id}.{side}",
                        f"unknown role {role!r}",
                        f"define it under `roles:` or use one of: "
                        f"{', '.join(sorted(matrix.roles)) or 'none defined'}, any",
                    )
                )
    for exc in matrix.exceptions:
        file, _, line = exc.source.rpartition(":")
        for side, values in (("from", exc.from_side), ("to", exc.to_side)):
            for value in values:
                if _is_role_word(value) and value != ANY and value not in matrix.roles:
                    try:
                        entry = parse_entry(value)
                    except ValueError:
                        entry = None
                    if entry is None or entry.hostname:
                        matrix.problems.append(
                            Problem(
                                "error",
                                file,
                                int(line),
                                f"exceptions.{exc.id}.{side}",
                                f"unknown role {value!r}",
                                "name a defined role, or write an address or CIDR block",
                            )
                        )
