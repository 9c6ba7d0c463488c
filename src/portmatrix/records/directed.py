"""One-direction flow records joined into flows: the engine that AWS, Azure, GCP
and NetFlow records share (docs/flow-records.md says what each source maps to).

A flow log says, per *observer* (an ENI, a NIC, the VM that reported, an
exporter) and per time window, what one direction of a connection carried.
Joining them is three steps, all columnar:

1. `reduce`: the records of one direction at one observer, merged over the
   time windows of each GAP-long slot (a long connection spans many windows).
   Reducing file by file keeps memory bounded by flows, not records; reducing
   reduced records again gives the same result (the reduction is associative).
2. `join`: both directions of a connection (keyed by protocol and the two
   endpoints, as captures are) and every observer that saw them become one
   flow; a record that starts more than `GAP` after every earlier one of its
   connection ended begins a new flow. Traffic between two logged interfaces
   is seen twice, once at each: per direction the observer that saw the most
   is kept, never the sum.
3. Orientation and outcome, from the strongest evidence the records carry: a
   source that names the initiator (Azure), a pure SYN or a SYN-ACK (AWS
   tcp-flags, NetFlow), an ICMP query, the first record in time, and last the
   ports (the side with the service-like port is the responder). A record
   that says its packets were dropped (AWS REJECT, Azure D, NetFlow's
   forwarding status) makes the flow `blocked` unless an answer got through.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.fields import any_of
from portmatrix.decode.keyhash import mix
from portmatrix.decode.transport import ICMP, ICMP_QUERY_REPLY, ICMPV6, TCP
from portmatrix.flows.model import (
    BLOCKED,
    BY_FIRST,
    BY_PORT,
    BY_RECORD,
    BY_REQUEST,
    BY_SYN,
    BY_SYNACK,
    ESTABLISHED,
    MIDSTREAM,
    NOT_TCP,
    REFUSED,
    UNANSWERED,
    Flows,
)
from portmatrix.flows.orient import port_class
from portmatrix.flows.records import ACK, FIN, RST, SYN

GAP = 600  # seconds: records of one direction further apart than this are two flows
NS = 1_000_000_000

DIRECTED = {
    "proto": np.int16,
    "src_hi": np.uint64,
    "src_lo": np.uint64,
    "dst_hi": np.uint64,
    "dst_lo": np.uint64,
    "sport": np.int32,  # 0 for ICMP: sources that give its type put it in `icmp`
    "dport": np.int32,
    "icmp": np.int16,  # ICMP type the sender sent, -1 unknown or not ICMP
    "first": np.int64,  # ns since the epoch
    "last": np.int64,
    "pkts": np.int64,
    "bytes": np.int64,
    "acc_pkts": np.int64,  # packets that were not dropped (all of them unless rejected)
    "flags": np.int16,  # TCP flags OR-ed over the records; 0 when not known
    "flags_known": np.bool_,  # the source gives TCP flags
    "synack": np.bool_,  # a SYN-ACK certainly among them (AWS: ACK only reported with SYN)
    "opened": np.int8,  # 1 + INITIATOR_BY code when the source says the sender opened
    "rejected": np.bool_,  # some of the packets were dropped by a security group / ACL
    "sampled": np.bool_,  # the source samples packets: silence and direction prove nothing
    "observer": np.uint64,  # hash of who logged it (interface, NIC, reporter, exporter)
    "file": np.int32,
    "records": np.int64,  # source records merged into this one
    "pair": np.uint64,  # hash of the connection, alike both ways (`reduce` sets it)
}
"""The columns of directed records, as every flow-record reader produces them."""

_KEY = ("proto", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "observer")
_SUM = ("pkts", "bytes", "acc_pkts", "records")
_ANY = ("flags_known", "synack", "rejected", "sampled")


def directed(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Directed records from a reader's columns: every column of DIRECTED, with its
    dtype; a column not given gets its neutral value."""
    n = len(cols["proto"])
    defaults = {"icmp": -1, "records": 1}
    out = {}
    for name, dtype in DIRECTED.items():
        if name in cols:
            out[name] = np.asarray(cols[name]).astype(dtype, copy=False)
        elif name == "acc_pkts":
            out[name] = np.asarray(cols["pkts"], np.int64).copy()
        else:  # one value for every row: a read-only view, never copied (see _take)
            out[name] = constant(defaults.get(name, 0), dtype, n)
    return out


def constant(value, dtype, n: int) -> np.ndarray:
    """A column of `n` times `value` that takes no memory (a zero-stride view)."""
    return np.broadcast_to(np.array(value, dtype), (n,))


def empty() -> dict[str, np.ndarray]:
    return {name: np.zeros(0, dtype) for name, dtype in DIRECTED.items()}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if len(p["proto"])]
    if len(parts) <= 1:
        return parts[0] if parts else empty()
    return {name: np.concatenate([p[name] for p in parts]) for name in DIRECTED}


def _take(cols: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    """The rows at `index`; a constant column stays a constant (no gather)."""
    return {
        k: v[index] if v.strides[0] else constant(v[0] if len(v) else 0, v.dtype, len(index))
        for k, v in cols.items()
    }


def _segments(new_key: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Where each segment starts, in rows sorted by key then first (`new_key`: the
    rows where a key starts): a new key, or a row that starts more than GAP after
    every earlier row of its key ended."""
    n = len(first)
    if not n:
        return new_key
    # The running end per key: keys numbered upwards pack above the (relative)
    # seconds, so one running maximum never crosses from one key into the next.
    t0 = int(first.min()) // NS
    rel_first = first // NS - t0  # whole seconds, from the earliest
    rel_last = np.clip(np.maximum(last, first) // NS + 1 - t0, 0, 0xFFFFFFFF)
    packed = ((np.cumsum(new_key) - 1).astype(np.int64) << 32) | rel_last
    running = np.maximum.accumulate(packed) & 0xFFFFFFFF
    late = np.zeros(n, bool)
    late[1:] = rel_first[1:] > running[:-1] + GAP
    return new_key | late


def _combine(how, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`how`.reduceat(values, starts); a constant column is worked out, not reduced."""
    if values.strides[0] or not len(values):
        return how.reduceat(values, starts)
    if how is np.add:
        return np.diff(np.r_[starts, len(values)]) * values[0]
    return constant(values[0], values.dtype, len(starts))


_BITS = {"flags_known": 16, "synack": 17, "rejected": 18, "sampled": 19}
"""Where the OR-ed columns sit in one word, so one gather and one reduction do them
all (TCP flags in the low 16 bits)."""


def _pack(cols: dict[str, np.ndarray]) -> np.ndarray:
    word = cols["flags"].astype(np.int64) & 0xFFFF
    for name, bit in _BITS.items():
        if cols[name].strides[0] or cols[name][:1].any():
            word |= cols[name].astype(np.int64) << bit
    return word


def _unpack(word: np.ndarray, out: dict[str, np.ndarray]) -> None:
    out["flags"] = (word & 0xFFFF).astype(np.uint16).view(np.int16)
    for name, bit in _BITS.items():
        out[name] = (word >> bit) & 1 == 1


def _fold(cols: dict[str, np.ndarray], starts: np.ndarray) -> dict[str, np.ndarray]:
    """One row per segment (`starts` into rows sorted by segment); the OR-ed
    columns packed in `bits` (_pack)."""
    out = {k: cols[k][starts] for k in (*_KEY, "pair")}
    out["first"] = np.minimum.reduceat(cols["first"], starts)
    out["last"] = np.maximum.reduceat(cols["last"], starts)
    for k in _SUM:
        out[k] = _combine(np.add, cols[k], starts)
    _unpack(np.bitwise_or.reduceat(cols["bits"], starts), out)
    out["opened"] = _combine(np.maximum, cols["opened"], starts)
    out["icmp"] = _combine(np.maximum, cols["icmp"], starts)
    out["file"] = _combine(np.minimum, cols["file"], starts)
    return {name: out[name].astype(dtype, copy=False) for name, dtype in DIRECTED.items()}


def reduce(cols: dict[str, np.ndarray], keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The records of each direction at each observer merged within each GAP-long
    time slot: records of one slot are never more than GAP apart, so merging them
    is what `join` would do; `join` then merges the slots of a long connection.
    Reducing is a group-by, so it needs no time order: one sort of one hash.
    `keep`: the rows to take (indices), when not all are records."""
    if not len(cols["proto"]):
        return cols
    slot = cols["first"] // (GAP * NS)
    pair, ours_first = _pair(cols)
    h = mix(pair, ours_first, cols["observer"], slot)
    # Sorted by the connection first (its hash's upper bits), so that `join`, which
    # sorts the files' rows by connection, reads each file's rows in the order they
    # are stored in, not at random (a third of its time); then by the group (its
    # hash's lower bits: two groups of one connection that share them are merged
    # by join instead, which only costs a row).
    h = (pair & ~np.uint64(0xFFFF)) | (h & np.uint64(0xFFFF))
    order = np.argsort(h) if keep is None else keep[np.argsort(h[keep])]
    rows = _take({k: v for k, v in cols.items() if k != "flags" and k not in _BITS}, order)
    rows["bits"] = _pack(cols)[order]
    rows["pair"] = pair[order]
    del cols  # the unsorted records (memory: a caller that passes a temporary frees them)
    new = np.ones(len(order), bool)
    hs, slots = h[order], slot[order]
    new[1:] = (hs[1:] != hs[:-1]) | (slots[1:] != slots[:-1])
    for k in _KEY:  # rows whose hashes collide are told apart by their key
        new[1:] |= rows[k][1:] != rows[k][:-1]
    return _fold(rows, np.flatnonzero(new))


def join(cols: dict[str, np.ndarray]) -> Flows:
    """Flows from directed records (reduced file by file: `reduce`, which gives
    them their connection hash, sorted by it): both
    directions and every observer of a connection become one flow, oriented,
    with its outcome; the flows in time order."""
    n = len(cols["proto"])
    if not n:
        return Flows.from_columns({"proto": np.zeros(0, np.int64)})
    src_first = _not_after(
        (cols["src_hi"], cols["src_lo"], cols["sport"]),
        (cols["dst_hi"], cols["dst_lo"], cols["dport"]),
    )
    if not cols["pair"].all():  # records that were not reduced: no hash yet
        cols = {**cols, "pair": _pair(cols)[0]}
    order = np.lexsort((cols["first"], cols["pair"]))
    first, last = cols["first"][order], cols["last"][order]
    heads = np.flatnonzero(_segments(_new_pairs(cols, order), first, last))
    del last
    # A flow's head is its earliest row: numbering the flows by their heads' times
    # puts them in the order they are reported in (ties: in key order).
    by_time = np.argsort(first[heads], kind="stable")
    number = np.empty(len(heads), np.int64)
    number[by_time] = np.arange(len(heads))
    starts = np.zeros(n, np.int64)
    starts[heads[1:]] = 1
    segment = np.cumsum(starts)  # per row, in `order`: its flow, in key order
    side = (~src_first[order]).astype(np.int64)  # 1: the sender is side B
    head_rows = order[heads[by_time]]
    a_first = src_first[head_rows]
    head = {k: cols[k][head_rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo")}
    sport, dport = cols["sport"][head_rows], cols["dport"][head_rows]
    head_ends = {
        "a_hi": np.where(a_first, head["src_hi"], head["dst_hi"]),
        "a_lo": np.where(a_first, head["src_lo"], head["dst_lo"]),
        "b_hi": np.where(a_first, head["dst_hi"], head["src_hi"]),
        "b_lo": np.where(a_first, head["dst_lo"], head["src_lo"]),
        "a_port": np.where(a_first, sport, dport),
        "b_port": np.where(a_first, dport, sport),
    }
    proto = cols["proto"][head_rows].astype(np.int64)
    per_side = _per_side(cols, order, segment * 2 + side, number, len(heads))
    return _flows(proto, head_ends, per_side)


def _pair(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(the connection's hash, alike both ways; which way the row goes)."""
    ours = mix(cols["src_hi"], cols["src_lo"], cols["sport"])
    theirs = mix(cols["dst_hi"], cols["dst_lo"], cols["dport"])
    return mix(cols["proto"], np.minimum(ours, theirs), np.maximum(ours, theirs)), ours < theirs


def _new_pairs(cols: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
    """For rows in `order` (by connection hash), where a connection starts: a new
    hash, or (hashes that collide) endpoints that are neither the same nor the
    same swapped."""
    pair = cols["pair"][order]
    new = np.ones(len(order), bool)
    new[1:] = pair[1:] != pair[:-1]
    g = {k: cols[k][order] for k in ("proto", "src_hi", "src_lo", "dst_hi", "dst_lo")}
    g["sport"], g["dport"] = cols["sport"][order], cols["dport"][order]

    def equal(a: str, b: str) -> np.ndarray:
        return g[a][1:] == g[b][:-1]

    same = equal("src_hi", "src_hi") & equal("src_lo", "src_lo") & equal("sport", "sport")
    same &= equal("dst_hi", "dst_hi") & equal("dst_lo", "dst_lo") & equal("dport", "dport")
    swapped = equal("src_hi", "dst_hi") & equal("src_lo", "dst_lo") & equal("sport", "dport")
    swapped &= equal("dst_hi", "src_hi") & equal("dst_lo", "src_lo") & equal("dport", "sport")
    new[1:] |= ~equal("proto", "proto") | ~(same | swapped)
    return new


def _not_after(a: tuple, b: tuple) -> np.ndarray:
    """Row-wise a <= b for (hi, lo, port) tuples: is `a` the canonical side A?"""
    ahi, alo, ap = a
    bhi, blo, bp = b
    return (ahi < bhi) | ((ahi == bhi) & ((alo < blo) | ((alo == blo) & (ap <= bp))))


_BIG = np.iinfo(np.int64).max
_COUNTS = ("pkts", "bytes", "acc_pkts")  # summed per observer, then the largest observer
_PER_SIDE = {  # column: (how the rows of one side combine, the value of a side with none)
    "first": (np.minimum, _BIG),
    "last": (np.maximum, -_BIG),
    "records": (np.add, 0),
    "flags": (np.bitwise_or, 0),
    "icmp": (np.maximum, -1),
    "opened": (np.maximum, 0),
    "file": (np.minimum, _BIG),
    **{k: (np.logical_or, False) for k in _ANY},
}


def _per_side(cols, order, cell, number, flows: int) -> dict[str, np.ndarray]:
    """Per flow and side (shape (flows, 2), flows in time order) what that
    direction carried. `cell` is, for the rows in `order`, segment * 2 + side (1:
    the sender is side B), ascending by segment; `number` each segment's flow.
    Counts are summed per observer and the observer that saw the most is kept
    (traffic between two logged interfaces is seen at both); flags, rejects and
    times combine over all rows of the side."""
    by_cell = np.argsort(cell, kind="stable")  # only the sides of a flow swap: nearly sorted
    rows, cells = order[by_cell], cell[by_cell]
    del by_cell
    bounds = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])  # where each cell starts
    at = cells[bounds]
    slot = number[at >> 1] * 2 + (at & 1)  # the cell's place in the (flows, 2) output

    def spread(values: np.ndarray, none) -> np.ndarray:
        full = np.full(flows * 2, none, values.dtype)
        full[slot] = values
        return full.reshape(flows, 2)

    out = {}
    for name, (how, none) in _PER_SIDE.items():
        if name == "flags" or name in _BITS:
            continue  # packed: below
        values = cols[name][rows]
        if values.dtype.kind in "iu":
            values = values.astype(np.int64, copy=False)
        out[name] = spread(_combine(how, values, bounds), none)
    _unpack(spread(np.bitwise_or.reduceat(_pack(cols)[rows], bounds), 0), out)
    observers = cols["observer"][rows]
    seen_by_one = np.minimum.reduceat(observers, bounds) == np.maximum.reduceat(observers, bounds)
    several = np.flatnonzero(~seen_by_one)  # cells seen by more than one observer
    largest = _largest_observer(observers, cells, bounds, several) if len(several) else None
    for name in _COUNTS:
        values = cols[name][rows].astype(np.int64, copy=False)
        per_cell = np.add.reduceat(values, bounds)
        if largest is not None:
            per_cell[several] = largest(values)
        out[name] = spread(per_cell, 0)
    out["present"] = out["records"] > 0
    return out


def _largest_observer(observers, cells, bounds, several):
    """For the cells at `several` (indices into `bounds`; rows grouped by cell, as
    `cells`), a function of a column giving the largest of their observers' sums."""
    size = np.diff(np.r_[bounds, len(cells)])[several]
    start = np.repeat(bounds[several] - np.cumsum(np.r_[0, size[:-1]]), size)
    take = start + np.arange(size.sum())
    order = np.lexsort((observers[take], cells[take]))
    take = take[order]
    sub_cells, sub_obs = cells[take], observers[take]
    groups = np.flatnonzero(
        np.r_[True, (sub_cells[1:] != sub_cells[:-1]) | (sub_obs[1:] != sub_obs[:-1])]
    )
    group_cells = sub_cells[groups]
    firsts = np.flatnonzero(np.r_[True, group_cells[1:] != group_cells[:-1]])
    return lambda values: np.maximum.reduceat(np.add.reduceat(values[take], groups), firsts)


def _flows(proto: np.ndarray, ends: dict, s: dict) -> Flows:
    """Oriented flows from the per-side columns (see the module docstring)."""
    init, by = _orient(proto, ends, s)
    rows = np.arange(len(proto))
    fwd, rev = init, 1 - init

    def pick(name, at):
        return s[name][rows, at]

    cols = {"proto": proto}
    for end, at in (("init", fwd), ("resp", rev)):
        cols[f"{end}_hi"] = np.where(at == 0, ends["a_hi"], ends["b_hi"])
        cols[f"{end}_lo"] = np.where(at == 0, ends["a_lo"], ends["b_lo"])
        cols[f"{end}_port"] = np.where(at == 0, ends["a_port"], ends["b_port"])
    known = s["flags_known"][:, 0] | s["flags_known"][:, 1]
    tcp = proto == TCP
    for name, at in (("fwd", fwd), ("rev", rev)):
        cols[f"pkts_{name}"] = pick("pkts", at)
        cols[f"bytes_{name}"] = pick("bytes", at)
        cols[f"flags_{name}"] = np.where(tcp & known, pick("flags", at), 0)
    present = s["present"]
    cols["first_ts"] = np.where(present, s["first"], np.iinfo(np.int64).max).min(axis=1)
    cols["last_ts"] = np.where(present, s["last"], np.iinfo(np.int64).min).max(axis=1)
    icmp = any_of(proto, (ICMP, ICMPV6))
    sent = pick("icmp", fwd)
    cols["icmp_req"] = np.where(icmp & _is_query(proto, sent), sent, -1)
    cols["outcome"] = _outcome(proto, by, cols, s, fwd, rev, known)
    all_flags = s["flags"][:, 0] | s["flags"][:, 1]
    close = np.full(len(proto), NOT_TCP, np.int8)
    close[tcp & known] = 0
    close[tcp & known & ((all_flags & FIN) != 0)] = 1
    close[tcp & known & ((all_flags & RST) != 0)] = 2
    cols["close"] = close
    cols["initiator_by"] = by
    cols["file0"] = s["file"].min(axis=1)
    cols["records"] = s["records"].sum(axis=1)
    return Flows.from_columns(cols)  # in time order: `join` numbered them so


def _is_query(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    out = np.zeros(len(proto), bool)
    for p, pairs in ICMP_QUERY_REPLY.items():
        out |= (proto == p) & any_of(icmp_type, list(pairs))
    return out


def _is_reply(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    out = np.zeros(len(proto), bool)
    for p, pairs in ICMP_QUERY_REPLY.items():
        out |= (proto == p) & any_of(icmp_type, list(pairs.values()))
    return out


def _orient(proto: np.ndarray, ends: dict, s: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per flow, the initiator's side (0 = A, 1 = B) and how it was decided; each
    rule below overrides the weaker ones before it."""
    tcp = proto == TCP
    icmp = any_of(proto, (ICMP, ICMPV6))
    big = np.iinfo(np.int64).max
    first_a = np.where(s["present"][:, 0], s["first"][:, 0], big)
    first_b = np.where(s["present"][:, 1], s["first"][:, 1], big)
    earlier = np.where(first_a < first_b, 0, np.where(first_b < first_a, 1, -1))
    ca, cb = port_class(ends["a_port"]), port_class(ends["b_port"])
    port_init = np.where(ca > cb, 1, 0)  # B opened towards A's service port
    decisive = (ca != cb) & ~icmp
    # The first record in time; a tie (the same second, or millisecond) is a guess:
    # the ports where they tell, else the canonical order.
    init = np.where(earlier >= 0, earlier, np.where(decisive, port_init, 0))
    by = np.where(earlier < 0, BY_PORT, BY_FIRST).astype(np.int8)
    # Not TCP: the ports, where they clearly say otherwise (as for captures).
    use = ~tcp & ~icmp & decisive & (port_init != init)
    init[use], by[use] = port_init[use], BY_PORT
    # TCP without a SYN: the ports.
    use = tcp & decisive
    init[use], by[use] = port_init[use], BY_PORT
    # A SYN on one side only: that side opened — unless it also acknowledged and the
    # other side sent packets without a SYN: then it was a SYN-ACK whose SYN the
    # exporter missed. A SYN on both sides (NetFlow ORs the flags): the earlier.
    syn = s["flags_known"] & ((s["flags"] & SYN) != 0)
    acked = (s["flags"] & ACK) != 0
    one = tcp & (syn[:, 0] ^ syn[:, 1])
    side = np.where(syn[:, 0], 0, 1)
    rows = np.arange(len(proto))
    answer_only = acked[rows, side] & s["present"][rows, 1 - side]
    init[one], by[one] = side[one], BY_SYN
    use = one & answer_only
    init[use], by[use] = 1 - side[use], BY_SYNACK
    use = tcp & syn[:, 0] & syn[:, 1] & (earlier >= 0)
    init[use], by[use] = earlier[use], BY_SYN
    # A certain SYN-ACK: the other side opened; a certain pure SYN: this side did.
    answer = s["synack"]
    use = tcp & (answer[:, 0] ^ answer[:, 1])
    init[use], by[use] = np.where(answer[:, 0], 1, 0)[use], BY_SYNACK
    opened = s["opened"] == BY_SYN + 1
    use = tcp & (opened[:, 0] ^ opened[:, 1])
    init[use], by[use] = np.where(opened[:, 0], 0, 1)[use], BY_SYN
    # ICMP: the sender of a query, else the receiver of a reply.
    sent = s["icmp"]
    query = np.stack([_is_query(proto, sent[:, i]) for i in (0, 1)], axis=1)
    reply = np.stack([_is_reply(proto, sent[:, i]) for i in (0, 1)], axis=1)
    use = icmp & ~(query[:, 0] | query[:, 1]) & (reply[:, 0] ^ reply[:, 1])
    init[use], by[use] = np.where(reply[:, 0], 1, 0)[use], BY_SYNACK
    use = icmp & (query[:, 0] ^ query[:, 1])
    init[use], by[use] = np.where(query[:, 0], 0, 1)[use], BY_REQUEST
    # The source names the initiator (its own connection tracking).
    named = s["opened"] == BY_RECORD + 1
    use = named[:, 0] ^ named[:, 1]
    init[use], by[use] = np.where(named[:, 0], 0, 1)[use], BY_RECORD
    # Sampled records: whatever the direction, it is a guess.
    by[s["sampled"][:, 0] | s["sampled"][:, 1]] = BY_PORT
    return init.astype(np.int64), by


def _outcome(proto, by, cols, s, fwd, rev, known) -> np.ndarray:
    """Per flow, its OUTCOMES code (see the module docstring)."""
    rows = np.arange(len(proto))
    tcp = proto == TCP
    pkts_fwd, pkts_rev = cols["pkts_fwd"], cols["pkts_rev"]
    rev_flags = s["flags"][rows, rev]
    outcome = np.where(pkts_rev > 0, ESTABLISHED, UNANSWERED).astype(np.int8)
    # A SYN seen (or a source that names the initiator): the handshake was logged.
    syn_seen = ((s["flags"][:, 0] | s["flags"][:, 1]) & SYN) != 0
    opened = tcp & known & (syn_seen | (by == BY_RECORD))
    rev_syn = (rev_flags & SYN) != 0
    outcome[opened & rev_syn] = ESTABLISHED
    outcome[opened & ~rev_syn & ((rev_flags & RST) != 0)] = REFUSED
    # Nothing came back, yet the initiator acknowledged something (NetFlow's flags
    # carry ACK): the exporter saw one direction only, as a half-mirrored span.
    fwd_ack = (s["flags"][rows, fwd] & ACK) != 0
    outcome[opened & (pkts_rev == 0) & fwd_ack] = ESTABLISHED
    # No SYN in any record: the connection began before the log did.
    outcome[tcp & known & ~opened] = MIDSTREAM
    sampled = s["sampled"][:, 0] | s["sampled"][:, 1]
    # No flags (Azure, AWS without tcp-flags): a handshake takes the initiator two
    # packets (SYN, ACK), so a lone packet that was answered was refused (a RST).
    outcome[tcp & ~known & ~sampled & (pkts_fwd == 1) & (pkts_rev > 0)] = REFUSED
    outcome[sampled & (pkts_rev == 0)] = MIDSTREAM
    outcome[(pkts_fwd == 0) & (pkts_rev == 0)] = MIDSTREAM  # no counters: not said
    rejected = s["rejected"][:, 0] | s["rejected"][:, 1]
    outcome[rejected & (s["acc_pkts"][rows, rev] == 0)] = BLOCKED
    return outcome
