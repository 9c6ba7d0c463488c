"""The semantic diff of two matrices: on the ThoughtSpot matrix against an edited
copy it lists exactly the edits; reordering, renaming and splitting are none."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from portmatrix.policy.diff import diff, intersect, normalise, subtract
from portmatrix.policy.matrix import load_matrix


def thoughtspot() -> dict:
    text = (resources.files("portmatrix") / "rules" / "thoughtspot.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def rule(doc: dict, rule_id: str) -> dict:
    return next(r for r in doc["rules"] if r["id"] == rule_id)


def write(tmp_path, name: str, doc: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def cosmetic(doc: dict) -> dict:
    """Rules reordered, an id renamed, a range split in two: the same matrix."""
    doc["rules"].reverse()
    rule(doc, "ssh-from-admins")["id"] = "admin-ssh"
    pool = rule(doc, "dynamic-ports")
    upper = dict(pool, id="dynamic-ports-upper", ports="25001-32768")
    pool["ports"] = "20123-25000"
    doc["rules"].append(upper)
    return doc


def summary(d) -> dict:
    return {
        "pairs": [
            (
                p.from_role,
                p.to_role,
                p.proto,
                p.added,
                p.removed,
                p.became_required,
                p.no_longer_required,
            )
            for p in d.pairs
        ],
        "directions": [(x.roles, x.proto, x.ports, x.a, x.b) for x in d.directions],
        "roles": [(r.role, r.change, r.a, r.b) for r in d.roles],
        "exceptions": [
            (e.proto, e.from_side, e.to_side, e.added, e.removed, e.expires) for e in d.exceptions
        ],
    }


def test_reordering_renaming_and_splitting_are_no_difference(tmp_path):
    same = load_matrix([write(tmp_path, "same.yaml", cosmetic(thoughtspot()))])
    d = diff(load_matrix(["thoughtspot"]), same)
    assert not d.differ, summary(d)


def test_the_thoughtspot_matrix_against_an_edited_copy_lists_exactly_the_edits(tmp_path):
    doc = cosmetic(thoughtspot())
    rule(doc, "http-from-users")["ports"] = [80, 8081]  # a port added
    doc["rules"].remove(rule(doc, "ntp"))  # a rule removed
    rule(doc, "postgres")["required"] = False  # no longer required
    rule(doc, "admin-ssh")["initiator"] = "either"  # nodes may now open SSH to admins
    rule(doc, "smtp")["from"], rule(doc, "smtp")["to"] = "smtp-relay", "nodes"  # reversed
    doc["roles"]["egnyte"]["addresses"] = ["208.83.110.21"]  # a fixed address changed
    doc["exceptions"] = [
        {
            "id": "old-monitor",
            "from": ["10.9.9.9"],
            "to": "nodes",
            "proto": "udp",
            "ports": 161,
            "reason": "trial",
            "expires": "2027-01-01",
        }
    ]
    d = diff(load_matrix(["thoughtspot"]), load_matrix([write(tmp_path, "edited.yaml", doc)]))
    assert summary(d) == {
        "pairs": [
            ("nodes", "nodes", "tcp", (), (), (), ((5432, 5432),)),
            ("nodes", "ntp-server", "udp", (), ((123, 123),), (), ()),
            ("users", "nodes", "tcp", ((8081, 8081),), (), (), ()),
        ],
        "directions": [
            (("admins", "nodes"), "tcp", ((22, 22),), "admins → nodes", "either"),
            (
                ("nodes", "smtp-relay"),
                "tcp",
                ((25, 25), (587, 587)),
                "nodes → smtp-relay",
                "smtp-relay → nodes",
            ),
        ],
        "roles": [
            (
                "egnyte",
                "changed",
                ["208.83.110.20", "thoughtspot.egnyte.com"],
                ["208.83.110.21", "thoughtspot.egnyte.com"],
            )
        ],
        "exceptions": [("udp", ("10.9.9.9",), ("nodes",), ((161, 161),), (), None)],
    }
    assert [p.added_by for p in d.pairs if p.added] == [["http-from-users"]]
    assert [p.removed_by for p in d.pairs if p.removed] == [["ntp"]]


def test_with_an_inventory_differences_on_roles_without_addresses_have_no_effect(tmp_path):
    a = load_matrix(["thoughtspot"])
    doc = thoughtspot()
    doc["rules"].remove(rule(doc, "ntp"))
    doc["rules"].remove(rule(doc, "ssh-from-admins"))
    b = load_matrix([write(tmp_path, "b.yaml", doc)])
    d = diff(a, b, held={"nodes", "admins"})
    assert [(p.to_role, p.no_effect) for p in d.pairs] == [("nodes", False), ("ntp-server", True)]


def test_exception_expiry_changes_are_listed(tmp_path):
    def site(expires):
        return {
            "name": "s",
            "roles": {"nodes": "N"},
            "exceptions": [
                {
                    "id": "e",
                    "from": ["10.0.0.9"],
                    "to": "nodes",
                    "proto": "tcp",
                    "ports": 22,
                    "reason": "r",
                    "expires": expires,
                }
            ],
        }

    a = load_matrix([write(tmp_path, "a.yaml", site("2027-01-01"))])
    b = load_matrix([write(tmp_path, "b.yaml", site("2028-01-01"))])
    assert summary(diff(a, b))["exceptions"] == [
        ("tcp", ("10.0.0.9",), ("nodes",), (), (), ("2027-01-01", "2028-01-01"))
    ]


@pytest.mark.parametrize(
    ("a", "b", "minus", "both"),
    [
        (((1, 10),), ((3, 4),), ((1, 2), (5, 10)), ((3, 4),)),
        (((1, 10),), ((0, 20),), (), ((1, 10),)),
        (((1, 3), (7, 9)), ((2, 8),), ((1, 1), (9, 9)), ((2, 3), (7, 8))),
        ((), ((1, 2),), (), ()),
    ],
)
def test_port_set_arithmetic(a, b, minus, both):
    assert subtract(a, b) == minus
    assert intersect(a, b) == both
    assert normalise([(5, 6), (1, 2), (3, 4)]) == ((1, 6),)
