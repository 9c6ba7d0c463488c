"""A problem's numbers from its flows, against a slow reference over the flows of
a real (built) capture: counts, outcomes, hosts, pairs, examples."""

from __future__ import annotations

from collections import Counter

import numpy as np

from portmatrix.findings.aggregate import aggregate
from portmatrix.policy.classify import matrix_port
from portmatrix.testing.captures import tcp_session
from portmatrix.textforms import address_texts
from support.packets import refused, syn
from support.site import N1, N2, N3, USER


def test_numbers_of_each_problem_against_the_flows(check_packets):
    packets = (
        tcp_session(USER, N1, 40000, 8443)
        + tcp_session(USER, N1, 40001, 8443)
        + refused(USER, N2, 40002, 8443)
        + [syn("10.0.2.8", N3, 40003, 8443)]
        + tcp_session(USER, N3, 40004, 9443)
    )
    flows = check_packets(packets).traffic.flows
    rows = np.arange(len(flows))
    gid = (matrix_port(flows) == 9443).astype(np.int64)  # two problems by port
    g = aggregate(flows, rows, gid, 2, matrix_port(flows), np.ones(len(flows), bool), False)
    init = address_texts(flows["init_hi"], flows["init_lo"])
    resp = address_texts(flows["resp_hi"], flows["resp_lo"])
    for j in range(2):
        mine = [i for i in rows.tolist() if gid[i] == j]
        assert g.flows[j] == len(mine)
        assert sorted(g.members[j].tolist()) == mine
        assert g.packets[j] == int(sum(flows["pkts_fwd"][mine] + flows["pkts_rev"][mine]))
        assert g.initiators[j] == len({init[i] for i in mine})
        assert g.responders[j] == len({resp[i] for i in mine})
        pairs = Counter((init[i], resp[i]) for i in mine)
        assert {(p["initiator"], p["responder"]): p["flows"] for p in g.pairs[j]} == pairs
        assert g.frames[j] == [str(int(flows["frame0"][i])) for i in mine][:5]
        assert len(g.community[j]) == len(mine)  # distinct flows, distinct ids
    assert g.outcomes[0] == {"established": 2, "refused": 1, "unanswered": 1}
    assert g.initiator_hosts[0] == [USER, "10.0.2.8"]
    assert g.responder_hosts[0] == [N1, N2, N3]
    assert g.ports == [[(6, 8443, 8443)], [(6, 9443, 9443)]]
