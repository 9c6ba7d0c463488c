import datetime as dt

import pytest

from portmatrix.errors import MatrixError
from portmatrix.policy.matrix import (
    Problem,
    Rule,
    collect_matrix,
    format_ports,
    load_matrix,
    parse_ports,
    port_value,
    resolve,
)

FULL = """
name: demo
description: Demo cluster
vendor:
  title: Demo ports
  date: "2024-01"
roles:
  nodes: All nodes
  admins:
    description: Administrators
  egnyte:
    description: Fixed by the vendor
    addresses: [208.83.110.20, "10.5.0.0/24"]
    hostnames: thoughtspot.egnyte.com
rules:
  - id: ssh-from-admins
    service: SSH
    proto: TCP
    ports: 22
    from: admins
    to: nodes
    direction: inbound
    description: Secure shell.
    ref: row 1
  - id: mail
    service: SMTP
    proto: tcp
    ports: [587, 25, 25]
    from: nodes
    to: any
    direction: outbound
  - id: node-rpc
    service: RPC
    proto: tcp
    ports: [80, "8000-8100", "20123-32768"]
    from: nodes
    to: nodes
    initiator: either
    required: true
  - id: icmp-health
    service: ICMP
    proto: icmp
    icmp_types: [8, 0, 8]
    from: nodes
    to: nodes
exceptions:
  - id: backup-ssh
    from: [10.9.9.9, "fd00::/64"]
    to: nodes
    proto: tcp
    ports: 22
    reason: Nightly backup
    owner: infra
    expires: 2027-03-31
  - id: monitoring
    from: admins
    to: [nodes]
    proto: udp
    ports: "161"
    reason: SNMP polling
"""


def test_full_matrix_loads(write_yaml):
    path = write_yaml("demo.yaml", FULL)
    m = load_matrix([str(path)])
    assert m.problems == []
    assert m.name == "demo"
    assert m.description == "Demo cluster"
    assert m.vendor == {"title": "Demo ports", "date": "2024-01"}
    assert m.files == [str(path)]
    assert list(m.roles) == ["nodes", "admins", "egnyte"]
    assert m.roles["nodes"].description == "All nodes"
    assert m.roles["nodes"].source == f"{path}:7"
    assert [e.text for e in m.roles["egnyte"].entries] == [
        "208.83.110.20",
        "10.5.0.0/24",
        "thoughtspot.egnyte.com",
    ]
    assert m.roles["egnyte"].entries[2].hostname == "thoughtspot.egnyte.com"

    ssh = m.rule("ssh-from-admins")
    assert ssh == Rule(
        id="ssh-from-admins",
        service="SSH",
        proto="tcp",
        ports=((22, 22),),
        from_role="admins",
        to_role="nodes",
        direction="inbound",
        initiator="from",
        required=False,
        description="Secure shell.",
        ref="row 1",
        source=f"{path}:15",
    )
    assert m.rule("mail").ports == ((25, 25), (587, 587))
    assert m.rule("mail").to_role == "any"
    rpc = m.rule("node-rpc")
    assert rpc.ports == ((80, 80), (8000, 8100), (20123, 32768))
    assert (rpc.initiator, rpc.required, rpc.direction) == ("either", True, "bidirectional")
    icmp = m.rule("icmp-health")
    assert (icmp.ports, icmp.icmp_types) == ((), (0, 8))

    backup, monitoring = m.exceptions
    assert backup.id == "backup-ssh"
    assert backup.from_side == ("10.9.9.9", "fd00::/64")
    assert backup.to_side == ("nodes",)
    assert backup.ports == ((22, 22),)
    assert backup.owner == "infra"
    assert backup.expires == dt.date(2027, 3, 31)
    assert backup.source == f"{path}:46"
    assert monitoring.expires is None
    assert monitoring.ports == ((161, 161),)


def test_rule_ports_helpers():
    rule = Rule("r", "S", "tcp", ((22, 22), (20123, 32768)), "a", "b")
    assert rule.ports_text == "22, 20123-32768"
    for port, inside in [(21, False), (22, True), (23, False), (20122, False)]:
        assert rule.has_port(port) is inside
    for port, inside in [(20123, True), (30000, True), (32768, True), (32769, False)]:
        assert rule.has_port(port) is inside
    assert format_ports(()) == ""
    # one run as a matrix file writes it, and parse_ports reads it back
    assert (port_value(443, 443), port_value(8000, 8099)) == (443, "8000-8099")
    assert parse_ports([port_value(443, 443), port_value(8000, 8099)]) == ((443, 443), (8000, 8099))


def test_exception_expiry(write_yaml):
    m = load_matrix([str(write_yaml("demo.yaml", FULL))])
    backup, monitoring = m.exceptions
    assert not backup.expired(dt.date(2027, 3, 31))  # the last day still counts
    assert backup.expired(dt.date(2027, 4, 1))
    assert not monitoring.expired(dt.date(2999, 1, 1))


# --- parse_ports ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ports"),
    [
        (22, ((22, 22),)),
        ("22", ((22, 22),)),
        (0, ((0, 0),)),
        (65535, ((65535, 65535),)),
        ("20123-32768", ((20123, 32768),)),
        (" 1 - 3 ", ((1, 3),)),
        ([443, 80, 80], ((80, 80), (443, 443))),
        ([80, "8000-8100"], ((80, 80), (8000, 8100))),
    ],
)
def test_parse_ports(raw, ports):
    assert parse_ports(raw) == ports


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("32768-20123", "ends before it starts"),
        (65536, "port 65536 is outside 0-65535"),
        ("1-70000", "port 70000 is outside 0-65535"),
        (-1, "outside 0-65535"),
        ([], "the port list is empty"),
        (True, "is not a port"),
        (22.5, "is not a port or a range"),
        ("ssh", "is not a port or a range"),
        ("1-2-3", "is not a port or a range"),
        ([22, None], "is not a port or a range"),
    ],
)
def test_parse_ports_rejects(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_ports(raw)


# --- problems in one rule ---------------------------------------------------------------

HEAD = """\
name: demo
roles:
  nodes: All nodes
  admins: Administrators
rules:
  - id: r1
"""  # the rule's own keys start on line 7


def rule_problems(write_yaml, body: str) -> list[tuple[str, int, str, str]]:
    path = write_yaml("m.yaml", HEAD + body)
    m = collect_matrix([str(path)])
    for p in m.problems:
        assert p.file == str(path)
    return [(p.severity, p.line, p.key, p.what) for p in m.problems]


GOOD = """\
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
"""


def test_good_rule_has_no_problems(write_yaml):
    assert rule_problems(write_yaml, GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "what"),
    [
        ("proto: tcp", "proto: http", 8, "rules.r1.proto", "'http' is not a protocol"),
        ("proto: tcp", "proto: 6", 8, "rules.r1.proto", "6 is not a protocol"),
        ("ports: 22", 'ports: "32768-20123"', 9, "rules.r1.ports", "ends before it starts"),
        ("ports: 22", "ports: 70000", 9, "rules.r1.ports", "port 70000 is outside 0-65535"),
        ("ports: 22", "ports: [22, 65536]", 9, "rules.r1.ports", "outside 0-65535"),
        ("ports: 22", "ports: true", 9, "rules.r1.ports", "True is not a port"),
        ("ports: 22", "ports: {a: 1}", 9, "rules.r1.ports", "is not a port or a range"),
        ("ports: 22", "ports: []", 9, "rules.r1.ports", "the port list is empty"),
        ("from: admins", "from: [admins, nodes]", 10, "rules.r1.from", "is not a role name"),
        ("to: nodes", "to: 7", 11, "rules.r1.to", "7 is not a role name"),
        ("service: SSH", "service: [SSH]", 7, "rules.r1.service", "must be text"),
    ],
)
def test_one_wrong_value(write_yaml, old, new, line, key, what):
    problems = rule_problems(write_yaml, GOOD.replace(old, new))
    assert len(problems) == 1, problems
    severity, got_line, got_key, got_what = problems[0]
    assert (severity, got_line, got_key) == ("error", line, key)
    assert what in got_what


@pytest.mark.parametrize(
    ("extra", "line", "key", "what"),
    [
        ("    required: yes please\n", 12, "rules.r1.required", "is not true or false"),
        ("    direction: sideways\n", 12, "rules.r1.direction", "'sideways' is not allowed"),
        ("    initiator: to\n", 12, "rules.r1.initiator", "'to' is not allowed"),
        ("    icmp_types: [8]\n", 12, "rules.r1.icmp_types", "only ICMP rules take icmp_types"),
        ("    colour: red\n", 12, "rules.r1.colour", "unknown key"),
    ],
)
def test_one_wrong_extra_key(write_yaml, extra, line, key, what):
    problems = rule_problems(write_yaml, GOOD + extra)
    assert problems == [("error", line, key, problems[0][3])]
    assert what in problems[0][3]


def without(body: str, key: str) -> str:
    return "".join(line for line in body.splitlines(True) if not line.strip().startswith(key + ":"))


@pytest.mark.parametrize("key", ["service", "ports", "from", "to"])
def test_missing_key(write_yaml, key):
    problems = rule_problems(write_yaml, without(GOOD, key))
    assert [(p[2], p[3]) for p in problems] == [(f"rules.r1.{key}", "missing")]


def test_unknown_role_in_a_rule(write_yaml):
    problems = rule_problems(write_yaml, GOOD.replace("to: nodes", "to: workers"))
    assert problems == [("error", 6, "rules.r1.to", "unknown role 'workers'")]


def test_any_is_a_role_every_rule_may_name(write_yaml):
    assert rule_problems(write_yaml, GOOD.replace("from: admins", "from: any")) == []


def test_icmp_has_no_ports(write_yaml):
    body = GOOD.replace("proto: tcp", "proto: icmp")
    assert rule_problems(write_yaml, body) == [("error", 9, "rules.r1.ports", "icmp has no ports")]


@pytest.mark.parametrize("types", ["[300]", "[-1]", "[echo]", "[true]", "8.5"])
def test_bad_icmp_types(write_yaml, types):
    body = GOOD.replace("proto: tcp", "proto: icmpv6").replace("ports: 22", f"icmp_types: {types}")
    problems = rule_problems(write_yaml, body)
    assert [(p[1], p[2]) for p in problems] == [(9, "rules.r1.icmp_types")]
    assert "is not a list of ICMP types 0-255" in problems[0][3]


def test_icmp_type_as_a_single_number(write_yaml):
    body = GOOD.replace("proto: tcp", "proto: icmp").replace("ports: 22", "icmp_types: 8")
    path = write_yaml("m.yaml", HEAD + body)
    assert load_matrix([str(path)]).rules[0].icmp_types == (8,)


@pytest.mark.parametrize("bad_id", ["Ssh", "ssh_admins", "-ssh", "ssh--x", "42x!"])
def test_rule_id_must_be_kebab_case(write_yaml, bad_id):
    path = write_yaml("m.yaml", HEAD.replace("id: r1", f"id: '{bad_id}'") + GOOD)
    m = collect_matrix([str(path)])
    assert [(p.line, p.key) for p in m.problems] == [(6, f"rules.{bad_id}.id")]
    assert m.rules == []


def test_many_problems_in_one_rule_are_all_collected(write_yaml):
    body = without(GOOD, "service").replace("proto: tcp", "proto: http")
    problems = rule_problems(write_yaml, body + "    required: 1\n")
    assert sorted(p[2] for p in problems) == [
        "rules.r1.proto",
        "rules.r1.required",
        "rules.r1.service",
    ]


def test_a_bad_rule_is_left_out_and_the_rest_load(write_yaml):
    text = HEAD + GOOD.replace("ports: 22", "ports: 99999") + "  - id: r2\n" + GOOD
    m = collect_matrix([str(write_yaml("m.yaml", text))])
    assert [r.id for r in m.rules] == ["r2"]
    assert len(m.problems) == 1


def test_load_matrix_raises_the_first_error(write_yaml):
    body = GOOD.replace("proto: tcp", "proto: http").replace("to: nodes", "to: workers")
    path = write_yaml("m.yaml", HEAD + body)
    with pytest.raises(MatrixError) as info:
        load_matrix([str(path)])
    err = info.value
    assert (err.file, err.where) == (str(path), "8")
    assert str(err).startswith(f"{path}:8: rules.r1.proto: 'http' is not a protocol — use one of")


# --- problems elsewhere in the file -----------------------------------------------------


def problems_of(write_yaml, text: str) -> list[tuple[int, str, str]]:
    m = collect_matrix([str(write_yaml("m.yaml", text))])
    assert all(p.severity == "error" for p in m.problems)
    return [(p.line, p.key, p.what) for p in m.problems]


def test_duplicate_rule_id_in_one_file(write_yaml):
    path = write_yaml("m.yaml", HEAD + GOOD + "  - id: r1\n" + GOOD)
    m = collect_matrix([str(path)])
    assert [(p.line, p.key, p.what) for p in m.problems] == [
        (12, "rules.r1", f"duplicate rule id (also at {path}:6)")
    ]
    assert len(m.rules) == 1


def test_duplicate_yaml_key_is_raised_with_its_line(write_yaml):
    path = write_yaml("m.yaml", HEAD + GOOD + "    ports: 23\n")
    with pytest.raises(MatrixError) as info:
        collect_matrix([str(path)])
    assert (info.value.file, info.value.where) == (str(path), "12")
    assert "ports: key given twice (first on line 9)" in info.value.what


def test_malformed_yaml_is_raised(write_yaml):
    path = write_yaml("m.yaml", HEAD + GOOD + "  - id: [r2\n")
    with pytest.raises(MatrixError, match="malformed YAML") as info:
        collect_matrix([str(path)])
    assert info.value.file == str(path)
    assert info.value.where is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", [(1, "", "a matrix file is a mapping")]),
        ("roles: {nodes: x}\n", [(1, "name", "missing or not a word")]),
        ("name: [a]\n", [(1, "name", "missing or not a word")]),
        ("name: a\nextra: 1\n", [(2, "extra", "unknown key")]),
        (
            "name: a\nroles: [nodes]\n",
            [(2, "roles", "must be a mapping of role name to its description")],
        ),
        ("name: a\nrules: {r: 1}\n", [(2, "rules", "must be a list of rules")]),
        ("name: a\nrules:\n  - just text\n", [(3, "rules", "each rule is a mapping")]),
        ("name: a\nexceptions: {e: 1}\n", [(2, "exceptions", "must be a list")]),
        ("name: a\nexceptions:\n  - text\n", [(3, "exceptions", "each exception is a mapping")]),
    ],
)
def test_file_level_problems(write_yaml, text, expected):
    assert problems_of(write_yaml, text) == expected


@pytest.mark.parametrize(
    ("roles", "key", "what"),
    [
        ("  Nodes: x\n", "roles.Nodes", "a role name is lowercase words joined by '-'"),
        ("  any: x\n", "roles.any", "and `any` is reserved"),
        ("  nodes: [10.0.0.1]\n", "roles.nodes", "must be a description or a mapping"),
        ("  nodes: {colour: red}\n", "roles.nodes.colour", "unknown key"),
        ("  nodes: {addresses: [10.0.0.300]}\n", "roles.nodes.addresses", "'10.0.0.300' is not"),
    ],
)
def test_role_problems(write_yaml, roles, key, what):
    problems = problems_of(write_yaml, "name: a\nroles:\n" + roles)
    assert [(line, k) for line, k, _ in problems] == [(3, key)]
    assert what in problems[0][2]


def test_role_without_description(write_yaml):
    m = load_matrix([str(write_yaml("m.yaml", "name: a\nroles:\n  nodes:\n"))])
    assert m.roles["nodes"].description == ""
    assert m.roles["nodes"].entries == ()


# --- exceptions -------------------------------------------------------------------------

EXC_HEAD = HEAD + GOOD + "exceptions:\n  - id: e1\n"  # the exception's keys start on line 14
EXC_GOOD = """\
    from: [10.9.9.9]
    to: nodes
    proto: tcp
    ports: 22
    reason: Nightly backup
"""


def exc_problems(write_yaml, body: str) -> list[tuple[int, str, str]]:
    return problems_of(write_yaml, EXC_HEAD + body)


def test_good_exception(write_yaml):
    assert exc_problems(write_yaml, EXC_GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "what"),
    [
        ("    reason: Nightly backup\n", "", 13, "exceptions.e1.reason", "missing"),
        ("reason: Nightly backup", "reason: '  '", 18, "exceptions.e1.reason", "missing"),
        ("from: [10.9.9.9]", "from: [10.9.9.300]", 14, "exceptions.e1.from", "'10.9.9.300'"),
        ("from: [10.9.9.9]", "from: [7]", 14, "exceptions.e1.from", "missing or not text"),
        ("    to: nodes\n", "", 13, "exceptions.e1.to", "missing or not text"),
        ("to: nodes", "to: workers", 13, "exceptions.e1.to", "unknown role 'workers'"),
        ("proto: tcp", "proto: http", 16, "exceptions.e1.proto", "'http' is not a protocol"),
        ("ports: 22", "ports: 22-21", 17, "exceptions.e1.ports", "ends before it starts"),
    ],
)
def test_exception_problems(write_yaml, old, new, line, key, what):
    problems = exc_problems(write_yaml, EXC_GOOD.replace(old, new))
    assert len(problems) == 1, problems
    assert problems[0][:2] == (line, key)
    assert what in problems[0][2]


@pytest.mark.parametrize(
    "expires", ["next year", "'2027-02-30'", "2027-3-1", "2027", "'31.03.2027'", "[2027]"]
)
def test_bad_expiry_date(write_yaml, expires):
    problems = exc_problems(write_yaml, EXC_GOOD + f"    expires: {expires}\n")
    assert len(problems) == 1, problems
    assert problems[0][:2] == (19, "exceptions.e1.expires")
    assert "is not a date" in problems[0][2]


def test_impossible_unquoted_date_is_an_error_not_a_crash(write_yaml):
    path = write_yaml("m.yaml", EXC_HEAD + EXC_GOOD + "    expires: 2027-02-30\n")
    with pytest.raises(MatrixError) as info:
        collect_matrix([str(path)])
    assert (info.value.file, info.value.where) == (str(path), "19")


@pytest.mark.parametrize(
    "expires", ["2027-03-31", "'2027-03-31'", "2027-03-31 23:59:00", "'20270331'"]
)
def test_expiry_date_forms(write_yaml, expires):
    path = write_yaml("m.yaml", EXC_HEAD + EXC_GOOD + f"    expires: {expires}\n")
    (exc,) = load_matrix([str(path)]).exceptions
    assert exc.expires == dt.date(2027, 3, 31)
    assert type(exc.expires) is dt.date


def test_exception_sides_take_roles_any_addresses_and_hostnames(write_yaml):
    body = EXC_GOOD.replace(
        "from: [10.9.9.9]",
        'from: [admins, any, 10.0.0.0/8, "10.1.1.1-10.1.1.9", backup.example.com]',
    )
    path = write_yaml("m.yaml", EXC_HEAD + body)
    (exc,) = load_matrix([str(path)]).exceptions
    assert exc.from_side == (
        "admins",
        "any",
        "10.0.0.0/8",
        "10.1.1.1-10.1.1.9",
        "backup.example.com",
    )


def test_duplicate_exception_id(write_yaml):
    text = EXC_HEAD + EXC_GOOD + "  - id: e1\n" + EXC_GOOD
    m = collect_matrix([str(write_yaml("m.yaml", text))])
    assert [(p.line, p.key, p.what) for p in m.problems] == [
        (19, "exceptions.e1", "duplicate exception id")
    ]
    assert len(m.exceptions) == 1


def test_exception_id_must_be_kebab_case(write_yaml):
    text = EXC_HEAD.replace("id: e1", "id: E_1") + EXC_GOOD
    assert [p[1] for p in problems_of(write_yaml, text)] == ["exceptions.E_1.id"]


# --- layering ---------------------------------------------------------------------------

SITE = """\
roles:
  backup: Backup servers
rules:
  - id: backup-pull
    service: SSH
    proto: tcp
    ports: 22
    from: backup
    to: nodes
exceptions:
  - id: legacy-monitor
    from: admins
    to: backup
    proto: udp
    ports: 161
    reason: Old SNMP poller
"""


def test_a_second_file_adds_roles_rules_and_exceptions(write_yaml):
    base = write_yaml("base.yaml", HEAD + GOOD)
    site = write_yaml("site.yaml", SITE)
    m = load_matrix([str(base), str(site)])
    assert m.name == "demo"
    assert m.files == [str(base), str(site)]
    assert list(m.roles) == ["nodes", "admins", "backup"]
    assert m.roles["backup"].source == f"{site}:2"
    assert [r.id for r in m.rules] == ["r1", "backup-pull"]
    assert m.rule("backup-pull").source == f"{site}:4"
    assert [e.id for e in m.exceptions] == ["legacy-monitor"]


def test_rules_of_the_first_file_may_name_roles_of_the_second(write_yaml):
    base = write_yaml("base.yaml", HEAD + GOOD.replace("to: nodes", "to: backup"))
    site = write_yaml("site.yaml", "roles:\n  backup: Backup servers\n")
    assert load_matrix([str(base), str(site)]).rule("r1").to_role == "backup"
    with pytest.raises(MatrixError, match="unknown role 'backup'"):
        load_matrix([str(base)])


def test_a_second_file_may_not_redefine_a_role(write_yaml):
    base = write_yaml("base.yaml", HEAD + GOOD)
    site = write_yaml("site.yaml", "roles:\n  backup: B\n  nodes: Redefined\n")
    m = collect_matrix([str(base), str(site)])
    assert [(p.file, p.line, p.key, p.what) for p in m.problems] == [
        (str(site), 3, "roles.nodes", f"role already defined at {base}:3")
    ]
    assert m.roles["nodes"].description == "All nodes"
    assert "backup" in m.roles


def test_a_second_file_may_not_reuse_a_rule_id(write_yaml):
    base = write_yaml("base.yaml", HEAD + GOOD)
    site = write_yaml("site.yaml", "rules:\n  - id: r1\n" + GOOD.replace("22", "23"))
    m = collect_matrix([str(base), str(site)])
    assert [(p.file, p.line, p.key, p.what) for p in m.problems] == [
        (str(site), 2, "rules.r1", f"duplicate rule id (also at {base}:6)")
    ]
    assert m.rule("r1").ports == ((22, 22),)


def test_a_second_file_may_not_reuse_an_exception_id(write_yaml):
    base = write_yaml("base.yaml", EXC_HEAD + EXC_GOOD)
    site = write_yaml("site.yaml", "exceptions:\n  - id: e1\n" + EXC_GOOD)
    m = collect_matrix([str(base), str(site)])
    assert [(p.file, p.key, p.what) for p in m.problems] == [
        (str(site), "exceptions.e1", "duplicate exception id")
    ]


def test_the_first_file_names_the_matrix(write_yaml):
    base = write_yaml("base.yaml", HEAD + GOOD)
    site = write_yaml("site.yaml", "name: other\nroles:\n  backup: B\n")
    assert load_matrix([str(base), str(site)]).name == "demo"


# --- finding the files ------------------------------------------------------------------


def test_no_matrix_given():
    with pytest.raises(MatrixError, match="no matrix given"):
        collect_matrix([])


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        load_matrix([str(tmp_path / "absent.yaml")])


def test_unknown_bundled_name():
    with pytest.raises(MatrixError) as info:
        resolve("no-such-matrix")
    assert info.value.what == "no bundled matrix named 'no-such-matrix'"
    assert "bundled matrices:" in info.value.hint


def test_a_path_is_not_looked_up_among_bundled_matrices(tmp_path):
    assert resolve(str(tmp_path / "x.yaml")) == (str(tmp_path / "x.yaml"), None)
    assert resolve("site.yml") == ("site.yml", None)


def test_a_bare_name_that_is_a_file_is_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sitefile").write_text("name: x\n", encoding="utf-8")
    assert resolve("sitefile") == ("sitefile", None)


def test_problem_text():
    p = Problem("error", "m.yaml", 9, "rules.r1.ports", "port 70000 is outside 0-65535", "fix it")
    assert str(p) == "m.yaml:9: rules.r1.ports: port 70000 is outside 0-65535 — fix it"
    assert str(Problem("warning", "m.yaml", 1, "", "empty")) == "m.yaml:1: empty"
    assert isinstance(p.error(), MatrixError)


def test_a_second_file_may_repeat_a_role_exactly(write_yaml):
    base = write_yaml(
        "base.yaml",
        "name: b\nroles:\n  cloud:\n    description: The cloud\n    addresses: [198.51.100.9]\n",
    )
    again = write_yaml(
        "again.yaml",
        "roles:\n  cloud:\n    description: The cloud\n    addresses: [198.51.100.9]\n",
    )
    m = collect_matrix([str(base), str(again)])
    assert m.problems == [] and m.roles["cloud"].source == f"{base}:3"
    moved = write_yaml(
        "moved.yaml",
        "roles:\n  cloud:\n    description: The cloud\n    addresses: [198.51.100.10]\n",
    )
    m = collect_matrix([str(base), str(moved)])
    assert [(p.line, p.key, p.what) for p in m.problems] == [
        (2, "roles.cloud", f"role already defined at {base}:3")
    ]
