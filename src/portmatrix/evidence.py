"""Evidence: the packets of chosen flows, out of the original captures into one pcapng.

One more pass over the inputs, decoded as for the check: a packet belongs to a
chosen flow when it has the flow's key (either direction; ICMP errors quoting
the flow have it too) and falls within the flow's time span. Packets keep
their original timestamps and link types (one interface per source file and
interface) and come out in time order. A sidecar JSON says, for every packet,
which file and frame it came from, with the SHA-256 of each source file.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
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


def flow_rows(paths: list[str], chosen: Flows, infos: list | None = None, first: int = 0):
    """Batch by batch, the packets of the `chosen` flows in the captures (`infos`,
    when given, collects each capture's CaptureInfo); with `first`, only each
    flow's first packets (its first `first` rows), and reading stops once every
    flow has them (or all it has: its packet count)."""
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
        capture = Capture(path)
        fragments = FragmentPorts()
        for raw in capture.batches():
            rows, _ = decode(raw)
            if not len(rows):
                continue
            rows = fragments.resolve(rows)
            # Only this batch's frames have their bytes here: a later fragment that
            # came before its first fragment, in an earlier batch, is left out.
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


def extract(paths: list[str], chosen: Flows) -> tuple[list[Packet], list[CaptureInfo]]:
    """The packets of `chosen` flows from the captures, in time order."""
    packets: list[Packet] = []
    infos: list[CaptureInfo] = []
    for part in flow_rows(paths, chosen, infos):
        raw = part.raw
        frames = np.unique(part.rows.frame)  # a tunnelled frame has two rows
        for i in (frames - raw.frame[0]).tolist():
            off, cap = int(raw.offset[i]), int(raw.caplen[i])
            packets.append(
                Packet(
                    int(raw.ts[i]),
                    part.file_id,
                    int(raw.frame[i]),
                    int(raw.iface[i]),
                    int(raw.linktype[i]),
                    int(raw.wirelen[i]),
                    raw.data[off : off + cap].tobytes(),
                )
            )
    packets.sort(key=lambda p: (p.ts, p.file, p.frame))
    return packets, infos


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def write_pcapng(path: str, packets: list[Packet], infos: list[CaptureInfo], batch) -> None:
    """One pcapng: an interface per (source file, interface) used, ns timestamps."""
    with batch.open(path, "wb") as fh:
        fh.writelines(pcapng_blocks(packets, infos))


def pcapng_blocks(packets: list[Packet], infos: list[CaptureInfo]) -> list[bytes]:
    """The blocks of a pcapng holding `packets`, in the order given."""
    interfaces: dict[tuple[int, int], int] = {}
    blocks = [
        _block(
            0x0A0D0D0A,
            struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
            + _option(4, f"portmatrix {__version__} evidence".encode())
            + _option(0, b""),
        )
    ]
    for p in packets:
        if (p.file, p.iface) not in interfaces:
            interfaces[(p.file, p.iface)] = len(interfaces)
            names = infos[p.file].interfaces
            name = names[p.iface].name if 0 <= p.iface < len(names) else ""
            label = f"{Path(infos[p.file].path).name}:{name or p.iface}"
            blocks.append(
                _block(
                    1,
                    struct.pack("<HHI", p.linktype, 0, 0)
                    + _option(2, label.encode())
                    + _option(9, b"\x09")
                    + _option(0, b""),
                )
            )
        ticks = min(max(p.ts, 0), (1 << 64) - 1)  # readers keep times in range; never raise
        blocks.append(
            _block(
                6,
                struct.pack(
                    "<IIIII",
                    interfaces[(p.file, p.iface)],
                    ticks >> 32,
                    ticks & 0xFFFFFFFF,
                    len(p.data),
                    p.wirelen,
                )
                + p.data,
            )
        )
    return blocks


def sidecar(
    path: str, packets: list[Packet], infos: list[CaptureInfo], chosen: Flows, findings: list[dict]
) -> dict:
    """What the evidence file holds and where every packet came from."""
    counts = (
        np.bincount([p.file for p in packets], minlength=len(infos))
        if packets
        else np.zeros(len(infos), int)
    )
    times = iso(np.array([p.ts for p in packets], np.int64)) if packets else []
    return {
        "tool": {"name": "portmatrix", "version": __version__},
        "evidence": path,
        "sources": [
            {"path": info.path, "sha256": info.sha256, "packets": int(n)}
            for info, n in zip(infos, counts, strict=True)
        ],
        "findings": findings,
        "flows": [
            {
                "proto": PROTO_NAMES.get(int(p), str(p)),
                "initiator": a,
                "initiator_port": int(ap),
                "responder": b,
                "responder_port": int(bp),
            }
            for p, a, ap, b, bp in zip(
                chosen["proto"].tolist(),
                address_texts(chosen["init_hi"], chosen["init_lo"]),
                chosen["init_port"].tolist(),
                address_texts(chosen["resp_hi"], chosen["resp_lo"]),
                chosen["resp_port"].tolist(),
                strict=True,
            )
        ],
        "packets": [
            {"n": i + 1, "file": infos[p.file].path, "frame": p.frame, "time": str(t)}
            for i, (p, t) in enumerate(zip(packets, times, strict=True))
        ],
    }


def write_evidence(path: str, paths: list[str], chosen: Flows, findings: list[dict]) -> dict:
    packets, infos = extract(paths, chosen)
    if not packets:
        raise PortmatrixError(
            "no packet belongs to the chosen flows",
            where="--output",
            hint="check the finding ids, verdicts or flow given",
        )
    doc = sidecar(path, packets, infos, chosen, findings)
    with staged() as batch:  # the pcapng and its sidecar appear together, or neither
        write_pcapng(path, packets, infos, batch)
        batch.write_text(path + ".json", json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


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
    findings: list[dict] = []
    if opts.rules:
        from portmatrix.check import run_check

        result = run_check(inputs, list(opts.rules), opts.inventory)
        flows = result.traffic.flows
        chosen, findings = flows_of_findings(result, list(opts.finding_ids))
        for verdict in opts.verdicts:
            from portmatrix.policy.lookup import VERDICTS

            mine = result.classified.verdict == VERDICTS.index(verdict)
            _selects(mine, "--verdict", verdict, "no flow has this verdict in the captures")
            chosen |= mine
    else:
        from portmatrix.flows.from_captures import read_traffic

        flows = read_traffic(inputs).flows
        chosen = np.zeros(len(flows), bool)
    for spec in opts.flow_specs:
        mine = flows_matching(flows, spec)
        _selects(mine, "--flow", spec, "no flow of the captures has these ends")
        chosen |= mine
    doc = write_evidence(opts.output, inputs, flows.take(chosen), findings)
    console.say(
        f"portmatrix: wrote {opts.output}: {len(doc['packets'])} packets of "
        f"{len(doc['flows'])} flows (sources and frames in {opts.output}.json)"
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
