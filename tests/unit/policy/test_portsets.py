"""Ports seen become port sets: single ports, dense ranges, pools of dynamic ports —
only above the thresholds of distinct ports and flows."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from portmatrix.policy.portsets import RangeOptions, generalise

DEFAULT = RangeOptions()


def sets(ports, flows, options=DEFAULT):
    order = np.argsort(ports)
    result = generalise(np.asarray(ports)[order], np.asarray(flows)[order], options)
    return [(s.lo, s.hi, s.kind) for s in result]


def test_few_ports_stay_single_ports():
    expected = [(22, 22, "port"), (80, 80, "port"), (443, 443, "port")]
    assert sets([22, 80, 443], [5, 9, 40]) == expected


def test_a_contiguous_run_becomes_a_range_above_both_thresholds():
    ports = list(range(4000, 4010))
    assert sets(ports, [5] * 10) == [(4000, 4009, "range")]
    # one port fewer than --range-min-ports: single ports
    assert sets(ports[:7], [5] * 7) == [(p, p, "port") for p in ports[:7]]
    # enough ports, too few flows (10 < 16): single ports
    assert sets(ports, [1] * 10, RangeOptions(min_ports=8, min_flows=16)) == [
        (p, p, "port") for p in ports
    ]
    # the thresholds are options
    assert sets(ports[:4], [5] * 4, RangeOptions(min_ports=4, min_flows=4)) == [
        (4000, 4003, "range")
    ]


def test_a_dense_run_with_holes_is_a_range_a_sparse_one_is_not():
    dense = [4000, 4002, 4004, 4006, 4008, 4010, 4012, 4014]  # 8 of 15: density 0.53
    assert sets(dense, [3] * 8) == [(4000, 4014, "range")]
    sparse = [4000, 4003, 4006, 4009, 4012, 4015, 4018, 4021]  # 8 of 22
    assert [k for _, _, k in sets(sparse, [3] * 8)] == ["port"] * 8


def test_ports_used_once_each_above_32767_become_a_known_ephemeral_range():
    rnd = random.Random(3)
    linux = rnd.sample(range(33000, 60000), 30)
    assert sets(linux, [1] * 30) == [(32768, 60999, "pool")]
    windows = rnd.sample(range(50000, 65000), 30)
    assert sets(windows, [1] * 30) == [(49152, 65535, "pool")]
    both = rnd.sample(range(33000, 65000), 30)
    assert sets(both, [1] * 30) == [(32768, 65535, "pool")]


def test_a_dynamic_pool_below_32768_is_the_span_seen_and_absorbs_services_inside():
    rnd = random.Random(5)
    pool = sorted({20123, 32768, *rnd.sample(range(20124, 32768), 58)})
    ports = [2100, 5432, 25000, *pool]  # 25000: a busy service inside the pool's span
    flows = [40, 40, 40] + [1] * len(pool)
    expected = [(2100, 2100, "port"), (5432, 5432, "port"), (20123, 32768, "pool")]
    assert sets(ports, flows) == expected


def test_busy_ports_are_services_not_a_pool():
    ports = list(range(40000, 40200, 20))  # 10 ports, each in many flows
    assert [k for _, _, k in sets(ports, [30] * 10)] == ["port"] * 10


def test_rare_service_ports_far_apart_do_not_make_a_pool():
    # admins' debug HTTP ports, each hit once: too spread to be a pool of 8
    ports = [2101, 2211, 2231, 4001, 4002, 4201, 4231, 4241, 4251, 4501, 4852, 4853, 12345]
    assert [k for _, _, k in sets(ports, [1] * len(ports))] == ["port"] * len(ports)


def test_passive_ftp_data_ports_in_a_configured_range_keep_that_range():
    ports = list(range(40000, 40040, 2))  # a dense pool: the span, not 32768-60999
    assert sets(ports, [1] * 20) == [(40000, 40038, "pool")]


@pytest.mark.parametrize("seed", range(20))
def test_every_port_is_in_exactly_one_set(seed):
    rnd = random.Random(seed)
    ports = sorted(rnd.sample(range(1, 65536), rnd.randint(1, 200)))
    flows = [rnd.choice([1, 1, 2, 5, 50]) for _ in ports]
    result = generalise(np.array(ports), np.array(flows), DEFAULT)
    for a, b in itertools.pairwise(result):
        assert a.hi < b.lo
    for p in ports:
        assert sum(s.lo <= p <= s.hi for s in result) == 1
    assert sum(s.flows for s in result) == sum(flows)
