"""Settled records become flows: who initiated each, and what came of it.

The initiator is decided from the strongest evidence there is (INITIATOR_BY):
a pure SYN, else a SYN-ACK, else the ports (the side with the more
service-like port is the responder, as Zeek does), else the first packet; an
ICMP query's sender; or, for a flow seen only through ICMP errors, the sender
of the quoted packet. The outcome is read from the wire (OUTCOMES).
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.fields import any_of
from portmatrix.decode.transport import ICMP, ICMPV6, TCP
from portmatrix.flows.model import (
    BY_FIRST,
    BY_PORT,
    BY_QUOTED,
    BY_REQUEST,
    BY_SYN,
    BY_SYNACK,
    ESTABLISHED,
    FLOW_COLUMNS,
    FRAMES,
    MIDSTREAM,
    NOT_TCP,
    REFUSED,
    UNANSWERED,
    Flows,
)
from portmatrix.flows.records import ACK, FIN, RST, SYN, Records

BLOCK = 1 << 16  # records a finished table turns into flows at a time


def port_class(port: np.ndarray) -> np.ndarray:
    """How much a port looks like a service: 3 well-known, 2 registered below the
    ephemeral ranges, 1 Linux ephemeral, 0 IANA dynamic."""
    return np.select([port < 1024, port < 32768, port < 49152], [3, 2, 1], 0)


def from_records(rec: Records, **fragment_counts: int) -> Flows:
    """Orient settled records: decide each flow's initiator, outcome and close.
    `fragment_counts`: Flows' fragments_* counters."""
    init, by = _initiators(rec)
    swap = init == 1
    cols: dict[str, np.ndarray] = {"proto": rec["proto"]}
    cols["init_hi"] = np.where(swap, rec["b_hi"], rec["a_hi"])
    cols["init_lo"] = np.where(swap, rec["b_lo"], rec["a_lo"])
    cols["resp_hi"] = np.where(swap, rec["a_hi"], rec["b_hi"])
    cols["resp_lo"] = np.where(swap, rec["a_lo"], rec["b_lo"])
    cols["init_port"] = np.where(swap, rec["b_port"], rec["a_port"])
    cols["resp_port"] = np.where(swap, rec["a_port"], rec["b_port"])
    cols["icmp_req"] = rec["icmp_req"]
    cols["first_ts"], cols["last_ts"] = rec["first_ts"], rec["last_ts"]
    cols["pkts_fwd"] = np.where(swap, rec["pkts_b"], rec["pkts_a"])
    cols["pkts_rev"] = np.where(swap, rec["pkts_a"], rec["pkts_b"])
    cols["bytes_fwd"] = np.where(swap, rec["bytes_b"], rec["bytes_a"])
    cols["bytes_rev"] = np.where(swap, rec["bytes_a"], rec["bytes_b"])
    cols["flags_fwd"] = np.where(swap, rec["flags_b"], rec["flags_a"])
    cols["flags_rev"] = np.where(swap, rec["flags_a"], rec["flags_b"])
    cols["outcome"] = _outcomes(rec, cols, init, by)
    cols["close"] = _closes(cols["proto"] == TCP, (rec["flags_a"] | rec["flags_b"]))
    cols["initiator_by"] = by
    cols["icmp_err_type"] = rec["err_type"]
    cols["icmp_err_code"] = rec["err_code"]
    for k in ("vlan_lo", "vlan_hi", "encap", "iface"):
        cols[k] = rec[k]
    for i in range(FRAMES):
        cols[f"frame{i}"] = rec[f"frame{i}"]
        cols[f"file{i}"] = rec[f"file{i}"]
    flows = Flows.from_columns(cols)
    for name, count in fragment_counts.items():
        setattr(flows, name, count)
    return flows


def first_packet_order(rec: Records, rows=slice(None)) -> np.ndarray:
    """The order of records `rows` by first packet (time, file, frame); the flows
    of one frame (a tunnel's outer and inner packets) by key hash."""
    return np.lexsort(
        (rec["hash"][rows], rec["frame0"][rows], rec["file0"][rows], rec["first_ts"][rows])
    )


def from_table(rec: Records, remain, release, **fragment_counts: int) -> Flows:
    """A finished table's records (those at `remain`; all when None) as flows in
    order of first packet, turned into flows a block of records at a time;
    `release(lo, hi)` is told when records lo:hi are done with, so their memory
    goes while the flows' comes (records mostly sit in first-packet order already,
    so each block's flows land together)."""
    kept = np.arange(len(rec)) if remain is None else remain
    first = first_packet_order(rec, kept)
    place = np.full(len(rec), -1, np.int64)
    place[kept[first]] = np.arange(len(kept))
    del first, kept
    cols = {name: np.empty(int((place >= 0).sum()), c.dtype) for name, c in FLOW_COLUMNS.items()}
    for lo in range(0, len(rec), BLOCK):
        hi = min(lo + BLOCK, len(rec))
        at = place[lo:hi]
        sel = np.flatnonzero(at >= 0)
        part = from_records(rec.take(lo + sel))
        for name, column in part.cols.items():
            cols[name][at[sel]] = column
        release(lo, hi)
    return Flows(cols, **fragment_counts)


def _initiators(rec: Records) -> tuple[np.ndarray, np.ndarray]:
    """Per record, the initiator's side (0 = A, 1 = B) and how it was decided."""
    proto = rec["proto"].astype(np.int64)
    tcp = proto == TCP
    icmp = any_of(proto, (ICMP, ICMPV6))
    own_packets = (rec["pkts_a"] + rec["pkts_b"]) > 0
    by = np.full(len(rec), BY_FIRST, np.int8)
    init = rec["first_dir"].astype(np.int8).copy()
    # Port heuristic: the side whose port looks more like a service is the responder.
    ca, cb = port_class(rec["a_port"]), port_class(rec["b_port"])
    port_init = np.where(ca > cb, 1, 0)  # B opened towards A's service port
    decisive = (ca != cb) & ~icmp
    opened = rec["open_dir"] >= 0
    answered = rec["answer_dir"] >= 0
    # TCP: SYN, else SYN-ACK, else the port heuristic, else the first packet.
    use = tcp & opened
    init[use], by[use] = rec["open_dir"][use], BY_SYN
    use = tcp & ~opened & answered
    init[use], by[use] = 1 - rec["answer_dir"][use], BY_SYNACK
    use = tcp & ~opened & ~answered & decisive
    init[use], by[use] = port_init[use], BY_PORT
    # UDP and others: the first packet, unless the ports clearly say otherwise.
    use = ~tcp & ~icmp & decisive & (port_init != init) & own_packets
    init[use], by[use] = port_init[use], BY_PORT
    use = icmp & opened
    init[use], by[use] = rec["open_dir"][use], BY_REQUEST
    use = icmp & ~opened & answered
    init[use], by[use] = 1 - rec["answer_dir"][use], BY_SYNACK
    # Only ICMP errors: the quoted packet's sender started it.
    use = ~own_packets
    init[use], by[use] = rec["err_dir"][use], BY_QUOTED
    return np.maximum(init, 0), by


def _outcomes(rec: Records, cols: dict, init: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Per flow, its OUTCOMES code from what the responder (or an ICMP error) said."""
    tcp = cols["proto"] == TCP
    resp_flags = cols["flags_rev"]
    err_type = rec["err_type"].astype(np.int64)
    is_v4 = (rec["a_hi"] == 0) & ((rec["a_lo"] >> np.uint64(32)) == np.uint64(0xFFFF))
    # Destination unreachable (ICMP 3, ICMPv6 1, any code: port, host, net,
    # administratively prohibited) answering a packet the initiator sent.
    unreachable = np.where(is_v4, err_type == 3, err_type == 1)
    icmp_refused = unreachable & (rec["err_dir"] == init) & (rec["err_dir"] >= 0)
    outcome = np.full(len(rec), UNANSWERED, np.int8)
    answered_by_resp = cols["pkts_rev"] > 0
    outcome[answered_by_resp] = ESTABLISHED
    tcp_syn = tcp & (by == BY_SYN)
    outcome[tcp_syn & ((resp_flags & (SYN | ACK)) == (SYN | ACK))] = ESTABLISHED
    # The capture missed the answer (a span seeing one direction), but the
    # initiator acknowledged it: only a SYN-ACK received makes a client send ACKs.
    outcome[tcp_syn & (cols["pkts_rev"] == 0) & ((cols["flags_fwd"] & ACK) != 0)] = ESTABLISHED
    refused_rst = tcp_syn & ((resp_flags & RST) != 0) & ((resp_flags & SYN) == 0)
    outcome[refused_rst] = REFUSED
    outcome[~answered_by_resp & icmp_refused] = REFUSED
    outcome[tcp & any_of(by, (BY_PORT, BY_FIRST))] = MIDSTREAM
    return outcome


def _closes(tcp: np.ndarray, all_flags: np.ndarray) -> np.ndarray:
    """Per flow, its CLOSES code: how a TCP connection ended (RST beats FIN)."""
    close = np.full(len(tcp), NOT_TCP, np.int8)
    close[tcp] = 0
    close[tcp & ((all_flags & FIN) != 0)] = 1
    close[tcp & ((all_flags & RST) != 0)] = 2
    return close
