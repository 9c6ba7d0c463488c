"""The one declaration of flow columns: what producers fill, and what they leave."""

from __future__ import annotations

import numpy as np

from portmatrix.flows.model import FLOW_COLUMNS, INITIATOR_BY, OUTCOMES, Flows


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
