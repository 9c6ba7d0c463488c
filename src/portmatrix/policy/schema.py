"""The matrix and inventory formats, declared once: every key each part of a file
may hold, what kind of value it takes, whether it must be there, and what it
means. Loading validates against these tables (unknown keys, missing keys,
choices, true/false, text); `docs/rules-format.md` carries the reference
generated from them (`python -m portmatrix.policy.schema`), and a test keeps
the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOS = ("tcp", "udp", "sctp", "icmp", "icmpv6")
DIRECTIONS = ("inbound", "outbound", "bidirectional")
INITIATORS = ("from", "either")


@dataclass(frozen=True)
class Key:
    """One key of a mapping in a matrix or inventory file."""

    name: str
    kind: str  # how the value is read: an entry of KINDS
    doc: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: object = None
    hint: str = ""  # the fix, when the value is missing or wrong


@dataclass(frozen=True)
class Section:
    """A mapping of a file: the top level, or one role, rule, exception."""

    title: str
    keys: tuple[Key, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    def unknown(self, mapping) -> list[str]:
        """The keys of `mapping` this section does not declare, in file order."""
        return [k for k in mapping if k not in self.names]

    @property
    def expected(self) -> str:
        """The hint for an unknown key."""
        return f"expected one of {', '.join(sorted(self.names))}"


KINDS = {
    "text": "text",
    "word": "a name (lowercase words joined by '-')",
    "bool": "true or false",
    "choice": "one of the values listed",
    "role": "a role name, or `any`",
    "ports": "a port, a list of ports, or ranges like 20123-32768",
    "icmp-types": "a list of ICMP types 0-255",
    "entries": "a list of addresses, CIDR blocks, ranges a-b or hostnames",
    "sides": "role names, or addresses / CIDR blocks / ranges",
    "date": "a date, YYYY-MM-DD",
    "mapping": "a mapping",
    "list": "a list",
}

MATRIX = Section(
    "Matrix file",
    (
        Key(
            "name",
            "word",
            "the matrix's name; `--rules NAME` finds a bundled matrix by it",
            required=True,
            hint="give the matrix a name, e.g. `name: thoughtspot`",
        ),
        Key("description", "text", "what the matrix is for"),
        Key("vendor", "mapping", "where the table comes from: title, url, date"),
        Key("roles", "mapping", "role name -> its description, or a mapping (see Role)"),
        Key("rules", "list", "the traffic allowed (see Rule)"),
        Key("exceptions", "list", "a site's allowances for specific hosts (see Exception)"),
    ),
)

ROLE = Section(
    "Role",
    (
        Key("description", "text", "what holds this role"),
        Key("addresses", "entries", "addresses the vendor itself fixed (most roles have none)"),
        Key("hostnames", "entries", "hostnames the vendor itself fixed"),
    ),
)

RULE = Section(
    "Rule",
    (
        Key(
            "id",
            "word",
            "unique across every layered file, stable, kebab-case",
            required=True,
            hint="use lowercase words joined by '-', e.g. ssh-from-admins",
        ),
        Key(
            "service",
            "text",
            "the service's name, as the vendor writes it",
            required=True,
            hint="name the service, e.g. `service: SSH`",
        ),
        Key(
            "proto",
            "choice",
            "the transport protocol",
            required=True,
            choices=PROTOS,
        ),
        Key(
            "ports",
            "ports",
            "the responder's ports: 22, [25, 587], '20123-32768'; none for ICMP",
            hint="give a port, a list, or a range like 20123-32768",
        ),
        Key("icmp_types", "icmp-types", "ICMP only: the types allowed (default: every type)"),
        Key(
            "from",
            "role",
            "the role that opens the connection",
            required=True,
            hint="name a role (or `any`)",
        ),
        Key("to", "role", "the role that answers", required=True, hint="name a role (or `any`)"),
        Key(
            "direction",
            "choice",
            "where the initiator stands relative to the cluster, as the vendor wrote it",
            choices=DIRECTIONS,
            default="bidirectional",
        ),
        Key(
            "initiator",
            "choice",
            "from: only `from` opens; either: both sides may (node-to-node rules)",
            choices=INITIATORS,
            default="from",
        ),
        Key(
            "required",
            "bool",
            "a running deployment uses this service continuously: a capture of a "
            "working cluster must show it established",
            default=False,
        ),
        Key("description", "text", "what the service does"),
        Key("ref", "text", "where in the vendor's document the rule comes from"),
    ),
)

EXCEPTION = Section(
    "Exception",
    (
        Key("id", "word", "unique, kebab-case", required=True),
        Key(
            "from",
            "sides",
            "who may open it",
            required=True,
            hint="name roles or addresses, e.g. [10.9.9.9] or nodes",
        ),
        Key(
            "to",
            "sides",
            "who answers",
            required=True,
            hint="name roles or addresses, e.g. [10.9.9.9] or nodes",
        ),
        Key("proto", "choice", "the transport protocol", required=True, choices=PROTOS),
        Key("ports", "ports", "the responder's ports; none for ICMP"),
        Key(
            "reason",
            "text",
            "who asked, and why",
            required=True,
            hint="every exception needs a reason (who asked, and why)",
        ),
        Key("owner", "text", "who answers for it"),
        Key("expires", "date", "after this day it allows nothing, and is reported"),
    ),
)

INVENTORY = Section(
    "Inventory file",
    (
        Key(
            "roles",
            "mapping",
            "role name -> its addresses, CIDR blocks, ranges a-b and hostnames",
            required=True,
        ),
        Key("hosts", "mapping", "a static table: hostname -> its addresses"),
    ),
)

SECTIONS = (MATRIX, ROLE, RULE, EXCEPTION, INVENTORY)
BEGIN, END = "<!-- schema reference: begin -->", "<!-- schema reference: end -->"


def reference_markdown() -> str:
    """The reference tables of docs/rules-format.md, between their markers."""
    out = [BEGIN, "", "## Reference", ""]
    for section in SECTIONS:
        out += [
            f"### {section.title}",
            "",
            "| key | value | required | meaning |",
            "|---|---|---|---|",
        ]
        for k in section.keys:
            value = " \\| ".join(f"`{c}`" for c in k.choices) if k.choices else KINDS[k.kind]
            if k.default is not None:
                value += f" (default `{str(k.default).lower()}`)"
            out.append(f"| `{k.name}` | {value} | {'yes' if k.required else ''} | {k.doc} |")
        out.append("")
    return "\n".join([*out, END])


if __name__ == "__main__":
    print(reference_markdown())
