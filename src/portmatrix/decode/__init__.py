"""Vectorized decoding of a raw batch into IP packet rows and per-frame buckets.

link -> (tags, labels) -> IP -> transport, then, for the rows that need it, the
header quoted inside ICMP errors and the packets inside tunnels, decoded by the
same functions. No per-packet Python: every step works on whole columns. The
common frames take a compiled fast path first (`common`) when it was built.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode import common, ethertype, ip, link, nflog, transport, tunnels
from portmatrix.decode.batch import DecodeCounts, PacketBatch, RawBatch
from portmatrix.decode.fields import any_of

MAX_DEPTH = b.MAX_TUNNELS  # tunnels inside tunnels; a packet deeper is counted, not decoded


def decode(
    raw: RawBatch, fast: bool = True, label: Callable[[int, str], int] | None = None
) -> tuple[PacketBatch, DecodeCounts]:
    """Rows of the IP packets in `raw`, in frame order, and where every frame went.

    `fast=False` decodes every frame with numpy alone (the reference).
    `label(link type, name)` gives the interface number that names a firewall
    rule ("nflog:GROUP PREFIX"): an NFLOG row's `iface` is the rule that logged it
    (the capture's `CaptureInfo.label`). Without it rows keep the capture's."""
    if not (fast and common.available() and len(raw)):
        rows, counts = _decode(raw, label)
        _times(counts, raw)
        return rows, counts
    rows, non_ip, rest = common.split(raw)
    counts = DecodeCounts(frames=len(raw) - len(rest), ip=len(rows), non_ip=non_ip)
    if len(rest):
        more, more_counts = _decode(raw.take(rest), label)
        counts.add(more_counts)
        if len(more):
            rows = rows.concat(more)
            rows = rows.take(np.argsort(rows.frame, kind="stable"))  # two sorted runs: a merge
    _times(counts, raw)
    return rows, counts


def _times(counts: DecodeCounts, raw: RawBatch) -> None:
    """Count the frames whose time is not their own (none recorded, or out of range)."""
    counts.ts_carried = 0 if raw.ts_carried is None else int(raw.ts_carried.sum())
    counts.ts_out_of_range = 0 if raw.ts_unknown is None else int(raw.ts_unknown.sum())


def _decode(raw: RawBatch, label=None) -> tuple[PacketBatch, DecodeCounts]:
    data = raw.data
    end = raw.offset + raw.caplen
    l3pos, kind, etype, vlan, status = link.decode(data, raw.offset, raw.caplen, raw.linktype)
    parts: list[dict[str, np.ndarray]] = []
    counts = DecodeCounts(frames=len(raw))
    fidx = np.flatnonzero(status == b.IP)
    _ip_layers(
        data, fidx, l3pos[fidx], end[fidx], kind[fidx].astype(np.int64), 0, 0, parts, status, counts
    )
    _count(counts, status, etype, raw.linktype)
    if not parts:
        return PacketBatch.empty(), counts
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    f = cols.pop("fidx")
    rows = PacketBatch(
        frame=raw.frame[f],
        ts=raw.ts[f],
        iface=_labelled(raw, label)[f],
        wirelen=raw.wirelen[f],
        vlan=vlan[f],
        **cols,
    )
    if len(parts) > 1:  # keep file order: outer and inner rows of a frame side by side
        rows = rows.take(np.argsort(rows.frame, kind="stable"))
    return rows, counts


def _labelled(raw: RawBatch, label) -> np.ndarray:
    """Each frame's interface; an NFLOG frame's is the rule that logged it."""
    logged = np.flatnonzero(raw.linktype == nflog.NFLOG)
    if label is None or not len(logged):
        return raw.iface
    ends = raw.offset[logged] + raw.caplen[logged]
    index, names = nflog.labels(raw.data, raw.offset[logged], ends)
    number = np.array([label(nflog.NFLOG, name) for name in names], np.int32)
    iface = raw.iface.copy()
    iface[logged] = number[index]
    return iface


def _ip_layers(data, fidx, pos, end, kind, encap, depth, parts, status, counts) -> None:
    """Decode IP and transport at `pos`; append the rows; recurse into tunnels."""
    net = ip.network(data, pos, end, kind)
    later = net.frag >= b.LATER_FRAGMENT
    tr = transport.transport(data, net.l4pos, net.l4end, net.proto, later)
    bad = np.where(net.status != b.IP, net.status, tr.status)
    if depth == 0:
        status[fidx] = bad
    else:
        counts.inner_undecodable += int((bad != b.IP).sum())
        counts.inner_too_deep += int(any_of(bad, b.TOO_DEEP).sum())
    ok = bad == b.IP
    counts.l4_truncated += int((tr.flags_cut & ok).sum())
    n = len(fidx)
    row = {
        "fidx": fidx,
        "encap": np.full(n, encap, np.uint8),
        "src_hi": net.src_hi,
        "src_lo": net.src_lo,
        "dst_hi": net.dst_hi,
        "dst_lo": net.dst_lo,
        "proto": net.proto,
        "sport": tr.sport,
        "dport": tr.dport,
        "tcp_flags": tr.tcp_flags,
        "tcp_seq": tr.tcp_seq,
        "icmp_type": tr.icmp_type,
        "icmp_code": tr.icmp_code,
        "icmp_req": np.full(n, -1, np.int64),
        "kind": np.zeros(n, np.uint8),
        "frag": net.frag,
        "frag_id": net.frag_id,
        "frag_off": net.frag_off,
        "frag_len": net.frag_len,
    }
    _icmp_keys(row, tr.icmp_type, tr.icmp_id)
    _quoted(data, net, tr, row, ok)
    parts.append(row if ok.all() else {k: v[ok] for k, v in row.items()})
    usable = ok & ~later & (row["kind"] == b.PACKET)
    t_rows, start, inner, code = tunnels.find(
        data, net.proto, net.l4pos, net.l4end, tr.sport, tr.dport, usable
    )
    if depth >= MAX_DEPTH:  # one tunnel too many: its packet is counted, not decoded
        counts.inner_undecodable += len(t_rows)
        counts.inner_too_deep += len(t_rows)
        return
    for c in np.unique(code).tolist() if len(code) else ():
        sel = code == c
        r, s = t_rows[sel], start[sel]
        stop = net.l4end[r]
        st = np.full(len(r), b.IP, np.int8)
        vl = np.full(len(r), -1, np.int32)  # a tag inside a tunnel is not the frame's VLAN
        s, k, _ = ethertype.follow(data, s, stop, inner[sel], vl, st)
        go = k > 0
        counts.inner_undecodable += int(((st != b.IP) & (st != b.NON_IP)).sum())
        counts.inner_too_deep += int(any_of(st, b.TOO_DEEP).sum())
        _ip_layers(data, fidx[r[go]], s[go], stop[go], k[go], c, depth + 1, parts, status, counts)


def _icmp_keys(row, icmp_type: np.ndarray, icmp_id: np.ndarray) -> None:
    """ICMP queries and replies pair on (request type, identifier): sport = dport = id."""
    icmp = np.flatnonzero(any_of(row["proto"], (transport.ICMP, transport.ICMPV6)))
    if not len(icmp):
        return
    proto, itype = row["proto"][icmp], icmp_type[icmp]
    req_of = np.full(len(icmp), -1, np.int64)
    for p, pairs in transport.ICMP_QUERY_REPLY.items():
        for req, rep in pairs.items():
            req_of[(proto == p) & ((itype == req) | (itype == rep))] = req
    query = req_of >= 0
    ident = np.maximum(icmp_id[icmp], 0)
    row["sport"][icmp[query]] = ident[query]
    row["dport"][icmp[query]] = ident[query]
    # Other informational ICMP (router/neighbour discovery, ...): one flow per type.
    row["icmp_req"][icmp] = np.where(query, req_of, itype)


def _quoted(data, net, tr, row, ok) -> None:
    """Rewrite ICMP error rows to the flow they answer, from the header they quote."""
    err = np.flatnonzero(
        ok & transport.is_icmp_error(net.proto, tr.icmp_type) & (net.l4pos + 8 + 20 <= net.l4end)
    )
    if not len(err):
        return
    qpos = net.l4pos[err] + 8
    qkind = (data[np.clip(qpos, 0, len(data) - 1)] >> 4).astype(np.int64)
    q = ip.network(data, qpos, net.l4end[err], qkind, quoted=True)
    qt = transport.transport(data, q.l4pos, q.l4end, q.proto, q.frag >= b.LATER_FRAGMENT)
    good = (q.status == b.IP) & (qt.status == b.IP)
    rows, sel = err[good], good
    for name, src in (
        ("src_hi", q.src_hi),
        ("src_lo", q.src_lo),
        ("dst_hi", q.dst_hi),
        ("dst_lo", q.dst_lo),
        ("proto", q.proto),
        ("sport", qt.sport),
        ("dport", qt.dport),
        ("frag", q.frag),
        ("frag_id", q.frag_id),
        ("frag_off", q.frag_off),
        ("frag_len", q.frag_len),
    ):
        row[name][rows] = src[sel]
    row["tcp_flags"][rows] = 0
    row["tcp_seq"][rows] = -1
    row["kind"][rows] = b.ICMP_ERROR
    # An error quoting an ICMP query belongs to that query's flow.
    quoted_row = {
        "proto": q.proto[sel],
        "sport": qt.sport[sel].copy(),
        "dport": qt.dport[sel].copy(),
        "icmp_req": np.full(sel.sum(), -1, np.int64),
    }
    _icmp_keys(quoted_row, qt.icmp_type[sel], qt.icmp_id[sel])
    row["sport"][rows] = quoted_row["sport"]
    row["dport"][rows] = quoted_row["dport"]
    row["icmp_req"][rows] = quoted_row["icmp_req"]


def _count(counts: DecodeCounts, status, etype, linktype) -> None:
    ip_frames = status == b.IP
    counts.ip = int(ip_frames.sum())
    if counts.ip == len(status):  # the common case: nothing else to sort out
        return
    for code in np.unique(status[~ip_frames]).tolist():
        sel = status == code
        if code == b.NON_IP:
            types, n = np.unique(etype[sel], return_counts=True)
            counts.non_ip = dict(zip(types.tolist(), n.tolist(), strict=True))
        elif code == b.UNSUPPORTED_LINK:
            types, n = np.unique(linktype[sel], return_counts=True)
            counts.unsupported = dict(zip(types.tolist(), n.tolist(), strict=True))
        elif code != b.IP:
            counts.undecodable[b.UNDECODABLE[code]] = int(sel.sum())
