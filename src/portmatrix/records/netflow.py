"""NetFlow v5/v9 and IPFIX, as nfdump's collector (nfcapd, or nfpcapd from a
capture) stores them, read through nfdump itself (Debian package `nfdump`).

nfdump prints one record per direction and exporter (`-o fmt:...`, times in
UTC, full IPv6 addresses, plain numbers), and portmatrix joins the two
directions: nfdump's own pairing (`-b`) keeps only the initiator's flags, which
loses refusals. TCP flags are OR-ed over each direction's packets, ACK
included, so a SYN on both sides says a handshake happened and the earlier side
(millisecond times) opened it; a SYN on one side only is an opening that was
refused or unanswered. ICMP types come from nfdump's own fields; the identifier
of an echo is not exported, so the pings between two hosts are one flow, and
an ICMP error is a flow of its own, not tied to the flow it answers. A
forwarding status of "dropped" (IPFIX/NetFlow v9 field 89, 128-191) is
`blocked`.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np

from portmatrix.decode.transport import ICMP, ICMPV6, SCTP, TCP, UDP
from portmatrix.errors import CaptureError, PortmatrixError
from portmatrix.flows.model import BY_SYN
from portmatrix.records import arrow
from portmatrix.records.directed import NS, directed
from portmatrix.records.source import FileRead, observer_id

REMARK = (
    "NetFlow does not tie an ICMP error to the flow it answers (a port unreachable is a "
    "flow of its own, and the flow it answers looks unanswered), and exports no ICMP "
    "echo identifier (the pings between two hosts are one flow)"
)
HINT = "give nfdump files (nfcapd.*), written by nfcapd or nfpcapd"
FIELDS = ("start", "duration", "proto", "src", "sport", "dst", "dport", "flags")
FIELDS += ("pkts", "bytes", "fwd", "icmp_type", "icmp_code", "exporter")
FORMAT = "fmt:%tsr|%td|%pr|%sa|%sp|%da|%dp|%flg|%pkt|%byt|%fwd|%it|%ic|%exp"
FLAG_BITS = {"C": 0x80, "E": 0x40, "U": 0x20, "A": 0x10, "P": 0x08, "R": 0x04, "S": 0x02, "F": 0x01}


def sniff(head: bytes) -> bool:
    """nfdump's file header: magic 0xA50C, layout version 1 or 2 (little-endian)."""
    return head[:2] == b"\x0c\xa5" and head[2:4] in (b"\x01\x00", b"\x02\x00")


def nfdump() -> str:
    found = shutil.which("nfdump")
    if not found:
        raise PortmatrixError(
            "nfdump is needed to read NetFlow/IPFIX files and was not found on PATH",
            hint="install it (Debian/Ubuntu: apt-get install nfdump; scripts/setup.sh does)",
        )
    return found


def read(file_id: int, path: str, out: FileRead) -> None:
    out.format = "nfdump"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CaptureError(f"cannot open: {exc.strerror}", file=path) from None
    if not sniff(head):  # forced with --flowlog-format: nfdump would say "bad magic"
        raise CaptureError(
            f"not an nfdump file (it starts with {head.hex() or 'nothing'}, not nfdump's "
            "magic 0ca5)",
            file=path,
            hint="leave out --flowlog-format to have the format told from the content",
        )
    pa = arrow.pyarrow()
    csv = arrow.require_module("pyarrow.csv")
    invalid: list[str] = []

    def skip(row) -> str:
        if row.text.strip() != "No matching flows":
            invalid.append(row.text)
        return "skip"

    proc = subprocess.Popen(
        [nfdump(), "-r", path, "-q", "-6", "-N", "-o", FORMAT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    )
    try:
        reader = csv.open_csv(
            proc.stdout,
            read_options=csv.ReadOptions(column_names=list(FIELDS), block_size=8 << 20),
            parse_options=csv.ParseOptions(
                delimiter="|", quote_char=False, invalid_row_handler=skip
            ),
            convert_options=csv.ConvertOptions(
                column_types={name: pa.string() for name in FIELDS}, strings_can_be_null=True
            ),
        )
        for batch in reader:
            _batch(batch, file_id, out)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" not in str(exc):
            out.cut_short(f"nfdump's output could not be read past here ({exc})")
    finally:
        proc.stdout.close()
        errors = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.wait()
    if proc.returncode != 0 and not out.rows:
        raise CaptureError(
            f"nfdump cannot read it: {errors or proc.returncode}", file=path, hint=HINT
        )
    if errors:
        out.cut_short(f"nfdump says: {' '.join(errors.split())[:200]}; analyzed what it gave")
    out.invalid_rows += invalid
    out.check_any(HINT)


def _flags(array) -> np.ndarray:
    """TCP flag bits from nfdump's letters ("...AP.SF"), each distinct text once."""
    pc = arrow.require_module("pyarrow.compute")
    encoded = pc.dictionary_encode(array)
    words = encoded.dictionary.to_pylist()
    bits = np.array(
        [sum(FLAG_BITS.get(ch, 0) for ch in str(w).strip()) for w in words] + [0], np.int64
    )
    at = encoded.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
    return bits[at.astype(np.int64)]


def _batch(batch, file_id: int, out: FileRead) -> None:
    pa = arrow.pyarrow()
    pc = arrow.require_module("pyarrow.compute")
    col = {name: batch.column(name) for name in FIELDS}
    n = batch.num_rows
    src_hi, src_lo, src_ok = arrow.address_columns(col["src"])
    dst_hi, dst_lo, dst_ok = arrow.address_columns(col["dst"])
    proto, proto_ok = arrow.numbers(col["proto"])
    start = pc.cast(pc.utf8_trim_whitespace(col["start"]), pa.float64(), safe=False)
    duration = pc.cast(pc.utf8_trim_whitespace(col["duration"]), pa.float64(), safe=False)
    start_ok = np.asarray(start.is_valid())
    first = np.round(start.fill_null(0).to_numpy(zero_copy_only=False) * 1000).astype(np.int64)
    length = np.round(duration.fill_null(0).to_numpy(zero_copy_only=False) * 1000)
    first_ns = first * (NS // 1000)
    last_ns = first_ns + length.astype(np.int64) * (NS // 1000)
    sport, _ = arrow.numbers(col["sport"])
    dport, _ = arrow.numbers(col["dport"])
    pkts, _ = arrow.numbers(col["pkts"])
    nbytes, _ = arrow.numbers(col["bytes"])
    forwarding, _ = arrow.numbers(col["fwd"])
    icmp_type, _ = arrow.numbers(col["icmp_type"], absent=-1)
    flags = _flags(col["flags"])
    good = src_ok & dst_ok & proto_ok & start_ok
    if not good.all():
        out.damaged(
            [f"record {out.rows + i + 1}" for i in np.flatnonzero(~good)[:5].tolist()],
            "nfdump printed no addresses or time for it",
        )
        out.bad_count += max(0, int((~good).sum()) - 5)
    tcp = proto == TCP
    icmp = (proto == ICMP) | (proto == ICMPV6)
    ported = tcp | (proto == UDP) | (proto == SCTP)
    dropped = (forwarding >= 128) & (forwarding < 192)
    exporters = pc.dictionary_encode(pc.utf8_trim_whitespace(col["exporter"]))
    ids = np.array(
        [observer_id(f"nfdump:{v}") for v in exporters.dictionary.to_pylist()] + [0], np.uint64
    )
    observer = ids[exporters.indices.fill_null(len(ids) - 1).to_numpy(zero_copy_only=False)]
    cols = {
        "proto": proto,
        "src_hi": src_hi,
        "src_lo": src_lo,
        "dst_hi": dst_hi,
        "dst_lo": dst_lo,
        "sport": np.where(ported, sport, 0),
        "dport": np.where(ported, dport, 0),
        "icmp": np.where(icmp, icmp_type, -1),
        "first": first_ns,
        "last": last_ns,
        "pkts": pkts,
        "bytes": nbytes,
        "acc_pkts": np.where(dropped, 0, pkts),
        "flags": np.where(tcp, flags, 0),
        "flags_known": tcp,
        # ACK is OR-ed in from later packets: only a SYN without ACK is certainly pure.
        "opened": np.where(tcp & ((flags & 0x12) == 0x02), BY_SYN + 1, 0),
        "rejected": dropped,
        "observer": observer.astype(np.uint64),
        "file": np.full(n, file_id),
    }
    out.add(directed({k: v[good] for k, v in cols.items()}), int(good.sum()))
    out.tcp |= bool(tcp[good].any())
    out.flags_known |= bool(tcp[good].any())
