"""The draft as a rules file: loads through the matrix loader, lint-clean, every
rule with its evidence in a comment, and no value can break the YAML."""

from __future__ import annotations

import datetime as dt

import pytest

from portmatrix.addresses import parse_entry
from portmatrix.policy.draft_file import Provenance, comment, render
from portmatrix.policy.learn import Draft, DraftOptions, DraftRule, Evidence, Unlearned
from portmatrix.policy.lint import lint
from portmatrix.policy.matrix import Role, Rule, collect_matrix

MADE = Provenance(
    inputs=[("cap.pcap", "ab" * 32)],
    inventory="site.yaml",
    base=[],
    version="9.9",
    check_command="portmatrix check cap.pcap --rules draft.yaml --inventory site.yaml",
)


def evidence(flows=3) -> Evidence:
    return Evidence(
        flows,
        2,
        1,
        "2024-03-01T10:00:00.000000Z",
        "2024-03-01T11:00:00.000000Z",
        "10.0.2.7 → 10.0.0.1:443",
        9,
    )


def draft(roles=None, rules=None, **extra) -> Draft:
    roles = (
        roles
        if roles is not None
        else {
            "nodes": Role("nodes", "listed in the inventory"),
            "net-10-9-0-0-29": Role("net-10-9-0-0-29", "drafted", (parse_entry("10.9.0.0/29"),)),
        }
    )
    rules = (
        rules
        if rules is not None
        else [
            DraftRule(
                Rule(
                    "nodes-to-nodes-tcp-7000",
                    "tcp/7000",
                    "tcp",
                    ((7000, 7000),),
                    "nodes",
                    "nodes",
                    required=True,
                ),
                evidence(),
                0.9,
            ),
            DraftRule(
                Rule(
                    "nodes-to-net-10-9-0-0-29-tcp-20000-20100",
                    "Dynamic ports",
                    "tcp",
                    ((20000, 20100),),
                    "nodes",
                    "net-10-9-0-0-29",
                    description="dynamic ports: ...",
                ),
                evidence(40),
                0.3,
            ),
            DraftRule(
                Rule(
                    "nodes-to-nodes-icmp",
                    "ICMP echo",
                    "icmp",
                    (),
                    "nodes",
                    "nodes",
                    icmp_types=(0, 8),
                ),
                evidence(),
                0.1,
            ),
        ]
    )
    origins = {n: ("draft" if n.startswith("net-") else "inventory") for n in roles}
    fields = dict(
        name="learned",
        roles=roles,
        origins=origins,
        rules=rules,
        kept_out=[],
        unlearned=[],
        unlearned_more=0,
        choices=[],
        counts={
            "flows": 50,
            "established": 45,
            "taught": 45,
            "base_allowed": 0,
            "out_of_scope": 0,
            "not_learned": 5,
            "kept_out_flows": 0,
        },
        window=("2024-03-01T10:00:00.000000Z", "2024-03-01T11:00:00.000000Z"),
        options=DraftOptions(),
    )
    fields.update(extra)
    return Draft(**fields)


def load(tmp_path, text, name="draft.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return collect_matrix([str(path)])


def test_the_draft_loads_as_written_and_lint_finds_nothing(tmp_path):
    d = draft()
    m = load(tmp_path, render(d, MADE))
    assert m.problems == []
    assert lint(m, None, dt.date(2026, 1, 1)) == []
    assert [(r.id, r.proto, r.ports, r.icmp_types, r.required) for r in m.rules] == [
        ("nodes-to-nodes-tcp-7000", "tcp", ((7000, 7000),), (), True),
        ("nodes-to-net-10-9-0-0-29-tcp-20000-20100", "tcp", ((20000, 20100),), (), False),
        ("nodes-to-nodes-icmp", "icmp", (), (0, 8), False),
    ]
    assert [e.text for e in m.roles["net-10-9-0-0-29"].entries] == ["10.9.0.0/29"]


def test_each_rule_carries_its_evidence_in_comments(tmp_path):
    text = render(draft(), MADE)
    block = text[text.index("rules:") :].splitlines()
    at = block.index("  - id: nodes-to-nodes-tcp-7000")
    assert block[at - 3 : at] == [
        "  # 3 flow(s) from 2 host(s) to 1, e.g. 10.0.2.7 → 10.0.0.1:443",
        "  # first 2024-03-01T10:00:00.000000Z, last 2024-03-01T11:00:00.000000Z",
        "  # required: seen in 9 of 10 time buckets (90%)",
    ]
    assert "# input: cap.pcap (sha256 " + "ab" * 32 + ")" in text
    assert "# check traffic against it: portmatrix check cap.pcap" in text


def test_kept_out_and_unlearned_are_listed_at_the_end(tmp_path):
    kept = DraftRule(
        Rule("x", "HTTPS alternate", "tcp", ((8443, 8443),), "users", "nodes"), evidence(1), 0.1
    )
    lost = Unlearned(
        "users", "nodes", "tcp", 9999, 3, {"refused": 2, "unanswered": 1}, "10.0.2.7 → 10.0.0.1"
    )
    text = render(draft(kept_out=[kept], unlearned=[lost], unlearned_more=4), MADE)
    tail = text[text.index("# Kept out") :]
    assert "#   users → nodes tcp/8443 (HTTPS alternate): 1 flow(s), 2 initiator(s)" in tail
    assert (
        "#   users → nodes tcp/9999: 3 flow(s) (refused 2, unanswered 1), e.g. 10.0.2.7 → 10.0.0.1"
        in tail
    )
    assert "#   ... and 4 more" in tail
    assert load(tmp_path, text).problems == []


HOSTILE = "x\nrules:\n  - id: evil\n# '\"{}[]&*!|>%@`\u2028\x85end"


def test_hostile_descriptions_and_paths_cannot_break_the_yaml(tmp_path):
    roles = {
        "nodes": Role("nodes", HOSTILE),
        "admins": Role("admins", "A", (parse_entry("10.0.1.5"), parse_entry("admin.example.com"))),
    }
    rules = [
        DraftRule(
            Rule(
                "admins-to-nodes-tcp-22",
                HOSTILE,
                "tcp",
                ((22, 22),),
                "admins",
                "nodes",
                description=HOSTILE,
            ),
            evidence(),
            0.5,
        )
    ]
    made = Provenance([(HOSTILE, "")], HOSTILE, [HOSTILE], "1", HOSTILE)
    text = render(draft(roles=roles, rules=rules, choices=[HOSTILE]), made)
    m = load(tmp_path, text)
    assert m.problems == []
    assert [r.id for r in m.rules] == ["admins-to-nodes-tcp-22"]
    assert m.rules[0].service == HOSTILE and m.roles["nodes"].description == HOSTILE
    assert [e.text for e in m.roles["admins"].entries] == ["10.0.1.5", "admin.example.com"]
    lines = text.splitlines()
    assert lines.count("rules:") == 1 and "  - id: evil" not in lines


def test_a_comment_is_one_printable_line():
    assert comment("a\nb\rc\u2028d\x85e") == "# a?b?c?d?e\n"


def test_an_empty_draft_is_still_a_rules_file(tmp_path):
    text = render(draft(roles={}, rules=[]), MADE)
    m = load(tmp_path, text)
    assert m.rules == [] and m.roles == {} and m.problems == []


def test_what_does_not_read_back_is_a_bug(monkeypatch):
    from portmatrix.policy import draft_file

    monkeypatch.setattr(draft_file, "_indent", lambda text: text)  # a broken layout
    with pytest.raises(AssertionError, match="does not read back"):
        draft_file.render(draft(), MADE)
