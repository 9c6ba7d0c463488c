"""The finished flows: one declaration of the columns, filled the same way by every
producer (captures here, Zeek's conn.log in tests/unit/records)."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import UDP

from portmatrix.flows.model import (
    CLOSES,
    FLOW_COLUMNS,
    INITIATOR_BY,
    MIDSTREAM,
    NOT_TCP,
    OUTCOMES,
    Flows,
)
from portmatrix.testing.captures import ether, flows_of, ip, tcp_session


def test_flows_from_captures_fill_exactly_the_declared_columns():
    flows = flows_of(
        [ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 40000, 22)]
        + [ether(ip("10.0.0.1", "10.0.0.3") / UDP(sport=5000, dport=53))]
    )
    assert set(flows.cols) == set(FLOW_COLUMNS)
    for name, col in FLOW_COLUMNS.items():
        assert flows[name].dtype == col.dtype, name
        assert len(flows[name]) == len(flows) == 2, name


def test_every_column_is_documented_and_its_missing_value_fits_its_type():
    for name, col in FLOW_COLUMNS.items():
        assert col.doc.strip(), name
        assert np.array(col.missing).astype(col.dtype) == col.missing, name


def test_a_producer_that_knows_some_columns_gets_the_rest_as_unknown():
    flows = Flows.from_columns(
        {"proto": [6, 17], "resp_port": np.array([22, 53], np.int64), "pkts_fwd": [3, 1]}
    )
    assert len(flows) == 2
    assert flows["resp_port"].dtype == FLOW_COLUMNS["resp_port"].dtype == np.int32
    assert flows["resp_port"].tolist() == [22, 53]
    assert flows["outcome"].tolist() == [MIDSTREAM] * 2
    assert flows["close"].tolist() == [NOT_TCP] * 2
    assert flows["icmp_err_type"].tolist() == [-1, -1]
    assert flows["frame0"].tolist() == [-1, -1] and flows["init_hi"].dtype == np.uint64
    assert set(flows.cols) == set(FLOW_COLUMNS)


def test_a_column_nobody_declared_is_a_producers_bug():
    with pytest.raises(ValueError, match="not flow columns: colour, size"):
        Flows.from_columns({"proto": [6], "size": [1], "colour": [2]})


def test_take_by_index_or_mask_keeps_every_column_and_the_fragment_count():
    flows = Flows.from_columns({"proto": [6, 17, 1], "resp_port": [22, 53, 0]})
    flows.fragments_unresolved = 4
    some = flows.take(np.array([2, 0]))
    assert some["proto"].tolist() == [1, 6] and some["resp_port"].tolist() == [0, 22]
    assert set(some.cols) == set(FLOW_COLUMNS) and some.fragments_unresolved == 4
    assert flows.take(flows["proto"] == 17)["resp_port"].tolist() == [53]


def test_index_columns_name_their_tables():
    """outcome, close and initiator_by hold indices into their documented tables."""
    assert OUTCOMES[MIDSTREAM] == "midstream" and CLOSES[NOT_TCP] == ""
    assert len(set(OUTCOMES)) == len(OUTCOMES) and len(set(INITIATOR_BY)) == len(INITIATOR_BY)
    flows = flows_of([ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 40000, 22)])
    assert OUTCOMES[int(flows["outcome"][0])] == "established"
    assert CLOSES[int(flows["close"][0])] == "fin"
    assert INITIATOR_BY[int(flows["initiator_by"][0])] == "syn"


def test_a_producer_that_does_not_know_a_column_leaves_it_missing():
    flows = Flows({"proto": np.array([6, 17]), "outcome": np.array([4, 0], np.int8)})
    assert set(flows.cols) == set(FLOW_COLUMNS)
    assert flows["records"].tolist() == [0, 0] and flows["icmp_req"].tolist() == [-1, -1]
    assert [OUTCOMES[o] for o in flows["outcome"]] == ["blocked", "established"]


def test_every_outcome_and_initiator_is_documented_where_declared():
    import inspect

    import portmatrix.flows.model as model

    source = inspect.getsource(model)
    for name in (*OUTCOMES, *INITIATOR_BY):
        assert f"{name}:" in source, name
