"""Evidence: the packets of chosen flows, out of the original captures into one pcapng.

One more pass over the inputs, decoded as for the check: a packet belongs to a
chosen flow when it has the flow's key (either direction; ICMP errors quoting
the flow have it too) and falls within the flow's time span. Packets keep
their original timestamps and link types (one interface per source file and
interface) and come out in time order. A sidecar JSON says, for every packet,
which file and frame it came from, with the SHA-256 of each source file.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from portmatrix import __version__
from portmatrix.decode import decode
from portmatrix.decode.batch import PacketBatch, RawBatch
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.errors import PortmatrixError
from portmatrix.files import staged
from portmatrix.flows.model import Flows
from portmatrix.flows.records import flow_key, packet_key
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.capture import Capture
from portmatrix.textforms import PROTO_NAMES, PROTO_NUMBERS, address_texts, iso

_FLOW = re.compile(
    r"^\s*(?P<proto>\w+)\s+(?P<a>\S+?):(?P<ap>\d+)\s*->\s*(?P<b>\S+?):(?P<bp>\d+)\s*$"
)


@dataclass
class Packet:
    ts: int
    file: int
    frame: int
    iface: int
    linktype: int
    wirelen: int
    data: bytes

    @classmethod
    def of(cls, raw: RawBatch, file: int, i: int, data: bytes | None = None) -> Packet:
        """Packet `i` of a raw batch (its captured bytes, or `data` in their stead)."""
        if data is None:
            off = int(raw.offset[i])
            data = raw.data[off : off + int(raw.caplen[i])].tobytes()
        ts, frame, iface, link, wire = (
            int(raw.ts[i]),
            int(raw.frame[i]),
            int(raw.iface[i]),
            int(raw.linktype[i]),
            int(raw.wirelen[i]),
        )
        return cls(ts, file, frame, iface, link, wire, data)


def parse_flow(spec: str) -> tuple[int, str, int, str, int]:
    """ "tcp 10.0.0.1:40000 -> 10.0.0.2:22" (IPv6 in brackets: [fd00::1]:22)."""
    m = _FLOW.match(spec)
    proto = m and (
        PROTO_NUMBERS.get(m["proto"].lower()) or (int(m["proto"]) if m["proto"].isdigit() else None)
    )
    if not m or proto is None:
        raise PortmatrixError(
            f"{spec!r} is not a flow",
            where="--flow",
            hint='write it as "tcp 10.0.0.1:40000 -> 10.0.0.2:22"',
        )
    return proto, m["a"].strip("[]"), int(m["ap"]), m["b"].strip("[]"), int(m["bp"])


def flows_matching(flows: Flows, spec: str) -> np.ndarray:
    """Flows with these ends, whichever side opened."""
    import ipaddress

    from portmatrix.addresses import to_int

    proto, a, ap, b, bp = parse_flow(spec)
    try:
        a_int, b_int = (to_int(ipaddress.ip_address(x)) for x in (a, b))
    except ValueError:
        raise PortmatrixError(
            f"{spec!r} has an address that is not one",
            where="--flow",
            hint='write it as "tcp 10.0.0.1:40000 -> 10.0.0.2:22"',
        ) from None

    def at(side: str, value: int, port: int) -> np.ndarray:
        return (
            (flows[f"{side}_hi"] == np.uint64(value >> 64))
            & (flows[f"{side}_lo"] == np.uint64(value & (2**64 - 1)))
            & (flows[f"{side}_port"] == port)
        )

    same = flows["proto"] == proto
    return same & (
        (at("init", a_int, ap) & at("resp", b_int, bp))
        | (at("init", b_int, bp) & at("resp", a_int, ap))
    )


@dataclass
class FlowRows:
    """The rows of one batch that belong to chosen flows, and which flow each is."""

    file_id: int
    raw: RawBatch
    rows: PacketBatch
    flow: np.ndarray  # index into the chosen flows of each row's flow


def flow_rows(
    paths: list[str],
    chosen: Flows,
    infos: list | None = None,
    first: int = 0,
    on_batch=None,
    digest: bool = True,
):
    """Batch by batch, the packets of the `chosen` flows in the captures (`infos`,
    when given, collects each capture's CaptureInfo); with `first`, only each
    flow's first packets (its first `first` rows), and reading stops once every
    flow has them (or all it has: its packet count). `on_batch(bytes, packets)`
    reports progress; `digest` False skips the SHA-256 (`infos` then carry none)."""
    keys, _, _ = flow_key(
        chosen["init_hi"],
        chosen["init_lo"],
        chosen["init_port"],
        chosen["resp_hi"],
        chosen["resp_lo"],
        chosen["resp_port"],
        chosen["proto"],
        chosen["icmp_req"],
    )
    order = np.argsort(keys)
    keys, start, stop = keys[order], chosen["first_ts"][order], chosen["last_ts"][order]
    taken = np.zeros(len(chosen), np.int64)  # rows given so far, per chosen flow
    wanted = np.minimum(first, chosen["pkts_fwd"] + chosen["pkts_rev"]) if first else None
    for file_id, path in enumerate(paths):
        if first and (taken >= wanted).all():
            break
        capture = Capture(path, digest=digest)
        fragments = FragmentPorts()
        seen = 0
        batches = capture.batches()  # closed here on every path (see flows.from_captures)
        try:
            for raw in batches:
                if on_batch:
                    on_batch(capture.bytes_read - seen, len(raw))
                    seen = capture.bytes_read
                rows, _ = decode(raw)
                if not len(rows):
                    continue
                rows = fragments.resolve(rows)
                # Only this batch's frames have their bytes here: a later fragment that
                # came before its first fragment, in an earlier batch, is left out.
                # (resolve can leave no row at all: every one a fragment held back.)
                if len(rows) and rows.frame.min() < raw.frame[0]:
                    rows = rows.take(np.flatnonzero(rows.frame >= raw.frame[0]))
                h, _, _ = packet_key(rows)
                pos = np.searchsorted(keys, h)
                flow = np.full(len(h), -1, np.int64)
                # A key may stand for several chosen flows (port reuse): try each.
                while True:
                    inside = pos < len(keys)
                    at = np.minimum(pos, len(keys) - 1)
                    same = inside & (keys[at] == h)
                    if not same.any():
                        break
                    hit = same & (flow < 0) & (rows.ts >= start[at]) & (rows.ts <= stop[at])
                    flow[hit] = order[at[hit]]
                    pos = np.where(same, pos + 1, len(keys))
                sel = np.flatnonzero(flow >= 0)
                if first:
                    sel = sel[_ranks(flow[sel]) + taken[flow[sel]] < first]
                    np.add.at(taken, flow[sel], 1)
                if len(sel):
                    yield FlowRows(file_id, raw, rows.take(sel), flow[sel])
                if first and (taken >= wanted).all():
                    break
        finally:
            batches.close()
        if infos is not None:
            infos.append(capture.info)


def _ranks(groups: np.ndarray) -> np.ndarray:
    """The place of each element among the earlier elements of its group (0, 1, ...)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    rank_sorted = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    ranks = np.empty(len(groups), np.int64)
    ranks[order] = rank_sorted
    return ranks


@dataclass
class Extract:
    """The packets of chosen flows as columns (never an object per packet: an
    extract of a scan holds millions): packet i is `data[start[i]:start[i] +
    caplen[i]]`, from frame `frame[i]` of input `file[i]`."""

    ts: np.ndarray  # int64 ns
    file: np.ndarray  # int64, index into the inputs
    frame: np.ndarray  # int64
    iface: np.ndarray  # int64
    linktype: np.ndarray  # int64
    wirelen: np.ndarray  # int64
    caplen: np.ndarray  # int64
    start: np.ndarray  # int64, into data
    data: np.ndarray  # uint8: the captured bytes, one packet after another

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def of(cls, raw: RawBatch, file: int, idx: np.ndarray, at: int) -> Extract:
        """Frames `idx` of a raw batch, their bytes copied out (the batch's chunk is
        reused), placed at byte `at` of the extract's data."""
        caplen = raw.caplen[idx].astype(np.int64)
        placed = np.r_[0, np.cumsum(caplen)[:-1]] if len(idx) else caplen
        data = np.empty(int(caplen.sum()), np.uint8)
        _copy_spans(data, placed, raw.data, raw.offset[idx], caplen)
        return cls(
            ts=raw.ts[idx].astype(np.int64),
            file=np.full(len(idx), file, np.int64),
            frame=raw.frame[idx].astype(np.int64),
            iface=raw.iface[idx].astype(np.int64),
            linktype=raw.linktype[idx].astype(np.int64),
            wirelen=raw.wirelen[idx].astype(np.int64),
            caplen=caplen,
            start=at + placed,
            data=data,
        )

    @classmethod
    def of_packets(cls, packets: list[Packet]) -> Extract:
        """A few packets held one by one (application samples), in their order."""
        caplen = np.array([len(p.data) for p in packets], np.int64)

        def column(name: str) -> np.ndarray:
            return np.array([getattr(p, name) for p in packets], np.int64)

        return cls(
            ts=column("ts"),
            file=column("file"),
            frame=column("frame"),
            iface=column("iface"),
            linktype=column("linktype"),
            wirelen=column("wirelen"),
            caplen=caplen,
            start=np.r_[0, np.cumsum(caplen)[:-1]] if len(packets) else caplen,
            data=np.frombuffer(b"".join(p.data for p in packets), np.uint8),
        )

    @classmethod
    def joined(cls, parts: list[Extract]) -> Extract:
        """One extract of several, in time order (then file, then frame)."""
        if not parts:
            return cls(*([np.zeros(0, np.int64)] * 8), data=np.zeros(0, np.uint8))
        cols = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        order = np.lexsort((cols["frame"], cols["file"], cols["ts"]))
        return cls(**{k: v if k == "data" else v[order] for k, v in cols.items()})


def _copy_spans(dst: np.ndarray, at: np.ndarray, src: np.ndarray, start: np.ndarray, length):
    """dst[at[i]:at[i] + length[i]] = src[start[i]:start[i] + length[i]] for each i.

    A copy per span, not numpy's gather by a byte index: that builds eight bytes of
    index per byte copied and ran nine times slower on 318k packets."""
    out, data = memoryview(dst), memoryview(src)
    for a, s, n in zip(at.tolist(), start.tolist(), length.tolist(), strict=True):
        out[a : a + n] = data[s : s + n]


def extract(
    paths: list[str], chosen: Flows, on_batch=None, digests: dict[str, str] | None = None
) -> tuple[Extract, list[CaptureInfo]]:
    """The packets of `chosen` flows from the captures, in time order. `digests`
    (path -> SHA-256), when the read that chose the flows has them, are not
    computed again."""
    parts: list[Extract] = []
    infos: list[CaptureInfo] = []
    at = 0
    known = digests or {}
    hashing = not all(p in known for p in paths)
    selected = flow_rows(paths, chosen, infos, on_batch=on_batch, digest=hashing)
    with contextlib.closing(selected):  # on every path now, not by the collector
        for part in selected:
            frames = np.unique(part.rows.frame)  # a tunnelled frame has two rows
            parts.append(Extract.of(part.raw, part.file_id, frames - part.raw.frame[0], at))
            at += len(parts[-1].data)
    for info in infos:
        info.sha256 = known.get(info.path, info.sha256)
    return Extract.joined(parts), infos


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


SLICE = 1 << 16  # packets written at a time: the blocks of a slice are built in memory


def write_pcapng(path: str, packets: Extract, infos: list[CaptureInfo], batch) -> None:
    """One pcapng: an interface per (source file, interface) used, ns timestamps."""
    with batch.open(path, "wb") as fh:
        for block in pcapng_blocks(packets, infos):
            fh.write(block)


def pcapng_blocks(packets: Extract, infos: list[CaptureInfo]) -> Iterator[bytes]:
    """The blocks of a pcapng holding `packets`, in their order: the section, an
    interface per (file, interface) in the order of first use, then the packets
    in slices of enhanced packet blocks built as arrays."""
    yield _block(
        0x0A0D0D0A,
        struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        + _option(4, f"portmatrix {__version__} evidence".encode())
        + _option(0, b""),
    )
    key = (packets.file << 32) | (packets.iface & 0xFFFFFFFF)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    used = np.argsort(first)  # interfaces in order of first use
    number = np.empty(len(uniq), np.int64)
    number[used] = np.arange(len(uniq))
    for u in used.tolist():
        at = int(first[u])
        file, iface = int(packets.file[at]), int(packets.iface[at])
        names = infos[file].interfaces
        name = names[iface].name if 0 <= iface < len(names) else ""
        label = f"{Path(infos[file].path).name}:{name or iface}"
        yield _block(
            1,
            struct.pack("<HHI", int(packets.linktype[at]), 0, 0)
            + _option(2, label.encode())
            + _option(9, b"\x09")
            + _option(0, b""),
        )
    interface = number[inverse.reshape(-1)]
    for lo in range(0, len(packets), SLICE):
        yield _packet_blocks(packets, interface, slice(lo, lo + SLICE))


def _packet_blocks(packets: Extract, interface: np.ndarray, part: slice) -> bytes:
    """Enhanced packet blocks of a slice of the packets: 28 bytes of header, the
    bytes padded to 4, the length again; every field lands on a 32-bit word."""
    cap = packets.caplen[part]
    size = 32 + cap + (-cap % 4)
    at = np.r_[0, np.cumsum(size)[:-1]]
    out = np.zeros(int(size.sum()), np.uint8)
    words = out.view("<u4")
    w = at // 4
    ticks = np.maximum(packets.ts[part], 0).astype(np.uint64)  # never a negative time
    words[w] = 6
    words[w + 1] = size
    words[w + 2] = interface[part]
    words[w + 3] = ticks >> np.uint64(32)
    words[w + 4] = ticks & np.uint64(0xFFFFFFFF)
    words[w + 5] = cap
    words[w + 6] = np.minimum(packets.wirelen[part], 0xFFFFFFFF)
    words[(at + size) // 4 - 1] = size
    _copy_spans(out, at + 28, packets.data, packets.start[part], cap)
    return out.tobytes()


def sidecar_text(
    path: str, packets: Extract, infos: list[CaptureInfo], chosen: Flows, findings: list[dict]
) -> str:
    """What the evidence file holds and where every packet came from, as JSON: the
    tool, the file and its sources first (a folder walk knows an extract by its
    first lines), then its findings, flows and packets, one flow or packet a line."""
    counts = np.bincount(packets.file, minlength=len(infos))
    doc = {
        "tool": {"name": "portmatrix", "version": __version__},
        "evidence": path,
        "sources": [
            {"path": info.path, "sha256": info.sha256, "packets": int(n)}
            for info, n in zip(infos, counts.tolist(), strict=True)
        ],
        "findings": findings,
        "flows": "@flows",
        "packets": "@packets",
    }
    flows = [
        json.dumps(
            {
                "proto": PROTO_NAMES.get(p, str(p)),
                "initiator": a,
                "initiator_port": ap,
                "responder": b,
                "responder_port": bp,
            }
        )
        for p, a, ap, b, bp in zip(
            chosen["proto"].tolist(),
            address_texts(chosen["init_hi"], chosen["init_lo"]),
            chosen["init_port"].tolist(),
            address_texts(chosen["resp_hi"], chosen["resp_lo"]),
            chosen["resp_port"].tolist(),
            strict=True,
        )
    ]
    paths = [json.dumps(info.path) for info in infos]
    rows = [
        f'{{"n": {n}, "file": {paths[f]}, "frame": {fr}, "time": "{t}"}}'
        for n, f, fr, t in zip(
            range(1, len(packets) + 1),
            packets.file.tolist(),
            packets.frame.tolist(),
            iso(packets.ts).tolist(),
            strict=True,
        )
    ]
    text = json.dumps(doc, indent=1)
    for name, lines in (("flows", flows), ("packets", rows)):
        listed = "[\n  " + ",\n  ".join(lines) + "\n ]" if lines else "[]"
        text = text.replace(f'"@{name}"', listed, 1)
    return text + "\n"


def write_evidence(
    path: str,
    paths: list[str],
    chosen: Flows,
    findings: list[dict],
    on_batch=None,
    digests: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Write the extract and its sidecar; (packets, flows) written."""
    packets, infos = extract(paths, chosen, on_batch, digests)
    if not len(packets):
        raise PortmatrixError(
            "no packet belongs to the chosen flows",
            where="--output",
            hint="check the finding ids, verdicts or flow given",
        )
    text = sidecar_text(path, packets, infos, chosen, findings)
    with staged() as batch:  # the pcapng and its sidecar appear together, or neither
        write_pcapng(path, packets, infos, batch)
        batch.write_text(path + ".json", text)
    return len(packets), len(chosen)


def flows_of_findings(result, ids: list[str]) -> tuple[np.ndarray, list[dict]]:
    """Which flows the findings `ids` of a check result stand for (a flow finding: its
    flows; a coverage finding: the rule's failed attempts), and those findings."""

    by_id = {f.id: f for f in result.findings}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise PortmatrixError(
            f"no finding {', '.join(missing)} in this check",
            where="--finding",
            hint="take ids from a report of the same captures and matrix",
        )
    cls = result.classified
    chosen = np.zeros(len(result.traffic.flows), bool)
    for fid in ids:
        f = by_id[fid]
        mine = np.zeros(len(chosen), bool)
        if f.members is not None:  # flow, scan and flood findings: their flows
            mine[f.members] = True
        elif f.kind == "coverage":
            covering = [k for k, d in enumerate(cls.decisions) if f.rule in d.covers]
            mine = np.isin(cls.decision, covering) & cls.failed
        if not mine.any():
            raise PortmatrixError(
                f"finding {fid} ({f.verdict}) has no flows of its own: "
                + (
                    "nothing was seen for its rule"
                    if f.kind == "coverage"
                    else "it is about the matrix"
                ),
                where="--finding",
                hint="choose a finding about flows, or flows with --verdict or --flow",
            )
        chosen |= mine
    return chosen, [by_id[i].to_dict() for i in ids]


@dataclass
class EvidenceOptions:
    inputs: tuple[str, ...]
    finding_ids: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    flow_specs: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    inventory: str | None = None
    output: str = ""


def run_command(opts: EvidenceOptions) -> int:
    """Choose the flows, then write their packets; every choice must select some."""
    from portmatrix import console
    from portmatrix.files import check_writable
    from portmatrix.sources.inputs import expand_inputs

    for spec in opts.flow_specs:
        parse_flow(spec)  # a typo fails before anything is read
    _check_evidence_name(opts.output)
    inputs = expand_inputs(opts.inputs)
    for item in inputs:
        if item == "-" or not Path(item).is_file():
            raise PortmatrixError(
                "evidence reads its captures twice (to choose the flows, then their "
                "packets): standard input or a pipe cannot be read again",
                file=item,
                hint="save the capture to a file first",
            )
    others = [*inputs, *opts.rules, *([opts.inventory] if opts.inventory else [])]
    check_writable(opts.output, "--output", others)
    check_writable(opts.output + ".json", "--output", others)
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import total_size

    findings: list[dict] = []
    size = total_size(inputs)
    with progress(size, True, "choosing flows") as on_batch:
        if opts.rules:
            from portmatrix.check import Reading, run_check

            reading = Reading(on_batch)
            result = run_check(inputs, list(opts.rules), opts.inventory, reading=reading)
            traffic = result.traffic
            flows = traffic.flows
            chosen, findings = flows_of_findings(result, list(opts.finding_ids))
            for verdict in opts.verdicts:
                from portmatrix.policy.lookup import VERDICTS

                mine = result.classified.verdict == VERDICTS.index(verdict)
                _selects(mine, "--verdict", verdict, "no flow has this verdict in the captures")
                chosen |= mine
        else:
            from portmatrix.flows.from_captures import read_traffic

            traffic = read_traffic(inputs, on_batch=on_batch)
            flows = traffic.flows
            chosen = np.zeros(len(flows), bool)
    for spec in opts.flow_specs:
        mine = flows_matching(flows, spec)
        _selects(mine, "--flow", spec, "no flow of the captures has these ends")
        chosen |= mine
    with progress(size, True, "extracting") as on_batch:
        digests = {c.path: c.sha256 for c in traffic.captures if c.sha256}
        n_packets, n_flows = write_evidence(
            opts.output, inputs, flows.take(chosen), findings, on_batch, digests
        )
    console.say(
        f"portmatrix: wrote {opts.output}: {n_packets} packets of "
        f"{n_flows} flows (sources and frames in {opts.output}.json)"
    )
    return 0


def _check_evidence_name(path: str) -> None:
    from portmatrix.report.outputs import FORMAT_OF_SUFFIX

    if path == "-" or Path(path).suffix.lower() in FORMAT_OF_SUFFIX:
        raise PortmatrixError(
            "evidence is a pcapng file, with a sidecar beside it",
            file=path,
            where="--output",
            hint="give a file name ending in .pcapng",
        )


def _selects(mask: np.ndarray, option: str, value: str, what: str) -> None:
    if not mask.any():
        raise PortmatrixError(
            f"{value!r}: {what}",
            where=option,
            hint="list the flows with `portmatrix flows` (or check the finding ids)",
        )
