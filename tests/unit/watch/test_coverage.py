"""The sliding window of required services on its own: what raises, what
recovers, what is stronger, what survives a restart. (Alarms over replayed
traffic: test_watcher.py.)"""

from __future__ import annotations

from portmatrix.findings.model import stable_id
from portmatrix.policy.classify import classify
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.lookup import RuleIndex
from portmatrix.policy.matrix import load_matrix
from portmatrix.policy.roles import build_role_map
from portmatrix.testing.captures import T0, flows_of
from portmatrix.watch.coverage import CoverageWindow, RuleState
from support.live_traffic import SECOND, second_of_traffic


def judged(site, t: int, rpc: str):
    """The flows of second `t` of the small site's traffic and their judgement."""
    paths = site("small")
    matrix = load_matrix([str(paths.matrix)])
    role_map = build_role_map(matrix, load_inventory(str(paths.inventory), matrix))
    flows = flows_of(second_of_traffic(t, rpc))
    return matrix, flows, classify(flows, RuleIndex(matrix), role_map)


def test_an_established_flow_moves_the_last_seen_time(site):
    matrix, flows, cls = judged(site, 3, "ok")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=False)
    rpc = window.state["node-rpc"]
    assert rpc.last_ok == int(flows["last_ts"][flows["resp_port"] == 7000].max())
    assert rpc.last_failed is None


def test_a_live_flow_fails_only_once_it_is_over(site):
    matrix, flows, cls = judged(site, 3, "refused")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=False)
    assert window.state["node-rpc"].last_failed is None  # the answer may still come
    window.add(flows, cls, settled=True)
    assert window.state["node-rpc"].last_failed is not None
    assert window.state["node-rpc"].failed_since_ok == 1


def gossip_only(site, window: CoverageWindow, *seconds: int) -> None:
    """Traffic in those seconds, but no RPC."""
    for t in seconds:
        _, flows, cls = judged(site, t, "none")
        window.add(flows, cls, settled=True)


def test_missing_becomes_unreachable_but_not_back(site):
    matrix, flows, cls = judged(site, 0, "none")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=True)
    window.judge(T0)  # watching begins
    gossip_only(site, window, 10)
    (raised,) = [c for c in window.judge(T0 + 11 * SECOND) if c.finding.rule == "node-rpc"]
    assert raised.finding.verdict == "missing-required"
    _, attempts, failed = judged(site, 12, "refused")
    window.add(attempts, failed, settled=True)
    (stronger,) = window.judge(T0 + 13 * SECOND)
    assert stronger.finding.verdict == "required-unreachable"
    assert "had 1 failed attempt(s)" in stronger.finding.message
    gossip_only(site, window, 29)
    assert window.judge(T0 + 30 * SECOND) == []  # attempts stopped: still raised, not again
    assert window.active() == {stable_id("required-unreachable", "node-rpc"): "node-rpc"}
    assert window.up() == {"node-rpc": 0, "node-gossip": 1}


def test_rules_whose_roles_hold_no_address_raise_nothing(site):
    matrix, flows, cls = judged(site, 0, "none")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=True)
    window.judge(T0)
    gossip_only(site, window, 10)
    assert window.judge(T0 + 11 * SECOND, unheld=frozenset({"nodes"})) == []


def test_a_weakened_capture_makes_the_alarm_a_warning(site):
    matrix, flows, cls = judged(site, 0, "none")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=True)
    window.judge(T0)
    gossip_only(site, window, 10)
    (raised,) = window.judge(T0 + 11 * SECOND, weakened=True)
    assert raised.finding.severity == "warning"
    assert "the capture dropped packets" in raised.finding.message


def test_the_state_survives_a_restart(site):
    matrix, flows, cls = judged(site, 0, "none")
    window = CoverageWindow(matrix, 10 * SECOND)
    window.add(flows, cls, settled=True)
    window.judge(T0)
    gossip_only(site, window, 10)
    assert window.judge(T0 + 11 * SECOND)
    again = CoverageWindow(matrix, 10 * SECOND)
    again.restore({**window.to_dict(), "gone-rule": RuleState().to_dict()})
    assert again.state == window.state and "gone-rule" not in again.state
    # After the restart: no new alarm for a whole window, the standing one stays...
    _, ok, cls_ok = judged(site, 30, "ok")
    again.judge(T0 + 25 * SECOND)
    again.add(ok, cls_ok, settled=False)
    # ... and ends when the service is seen again.
    (back,) = again.judge(T0 + 31 * SECOND)
    assert back.kind == "recovered" and back.finding.severity == "info"


def test_watching_begins_with_the_first_packet_not_a_judgement_before_it(site):
    """A judgement before any packet has no clock to go by (the watch's clock is the
    packets'): a replayed capture, or one whose first packets are late, must not
    start the window on the wall clock, years after its packets, and so never
    raise."""
    matrix, flows, cls = judged(site, 0, "ok")
    window = CoverageWindow(matrix, 2 * SECOND)
    wall_clock = T0 + 10 * 365 * 24 * 3600 * SECOND
    assert window.judge(wall_clock) == [] and window.started is None
    window.add(flows, cls, settled=True)  # RPC at second 0
    gossip_only(site, window, 1, 2, 3)
    (raised,) = window.judge(T0 + 3 * SECOND + SECOND // 2)
    assert raised.finding.rule == "node-rpc" and raised.finding.verdict == "missing-required"
    assert window.started == int(flows["first_ts"].min())
