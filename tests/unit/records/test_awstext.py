"""The compiled AWS text parser (records/_awstext.c) against pyarrow's CSV reader
(the reference, aws.py): from the same file both must give the very same
directed records, counts (rows, NODATA, SKIPDATA) and damaged lines — on flow
logs built from real captures' flows, in random field orders, with `-` values,
CRLF, blank, misshapen and damaged lines; and mutated input must never make the
parser read past its buffer or fail."""

from __future__ import annotations

import gzip
import os
import random

import numpy as np
import pytest

from portmatrix.check import run_check
from portmatrix.records import aws, awstext
from portmatrix.records.source import FileRead
from support import flowlogs as fl
from support.paths import CAPTURES, REPO

pytestmark = pytest.mark.skipif(
    awstext.compiled is None and not os.environ.get("CI"), reason="built without a C compiler"
)
SHARED = REPO.parent / "shared" / "pcaps"
SOURCES = [
    (CAPTURES / "violations-small.pcap", CAPTURES / "violations-small.inventory.yaml"),
    (SHARED / "chrissanders-packets__http_ip4and6.pcapng", None),  # IPv6 too
    (SHARED / "chrissanders-packets__tcp_refuseconnection.pcapng", None),
    (SHARED / "zeek__icmp-destunreach-udp.pcap", None),
    (SHARED / "PcapPlusPlus__DnsPackets.pcap", None),
]
OPTIONAL = [f for f in fl.V5 if f not in ("srcaddr", "dstaddr", "protocol", "start")]


def test_built_where_ci_runs():
    assert awstext.compiled is not None, "the C extension portmatrix.records._awstext was not built"


@pytest.fixture(scope="module")
def recs() -> list[fl.Rec]:
    out = []
    for pcap, inv in SOURCES:
        if not pcap.exists():
            continue
        flows = run_check([str(pcap)], ["thoughtspot"], str(inv) if inv else None).traffic.flows
        out += fl.logged(flows, observers=("eni-0a0a0a0a0a0a0a0a0", "eni-0b0b0b0b0b0b0b0b0"))
    assert len(out) > 50
    return out


def both(path) -> tuple[FileRead, FileRead]:
    """The file read by the compiled parser, and by the reference."""
    reads = []
    for compiled in (True, False):
        out = FileRead(0, str(path))
        aws.read(0, str(path), out, compiled=compiled)
        reads.append(out)
    return reads[0], reads[1]


def assert_same(fast: FileRead, ref: FileRead) -> None:
    a, b = fast.records(), ref.records()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (fast.rows, fast.nodata, fast.skipdata) == (ref.rows, ref.nodata, ref.skipdata)
    assert fast.bad_count == ref.bad_count + len(ref.invalid_rows)
    assert fast.bad == ref.bad
    assert (fast.flags_known, fast.tcp) == (ref.flags_known, ref.tcp)


DAMAGE = [  # (field, value): what a damaged line has in one of its fields
    ("packets", "abc"),
    ("srcport", "12x"),
    ("bytes", "1234567890123456789"),  # 19 digits: no (int64-safe) number
    ("dstaddr", "not-an-address"),
    ("srcaddr", "10.0.0.256"),
    ("srcaddr", "010.0.0.1"),  # leading zeros are no address
    ("protocol", "300"),
    ("protocol", "-"),
    ("start", "-"),
]


def mangled(recs: list[fl.Rec], seed: int) -> tuple[bytes, list[str]]:
    """The records as AWS text in a random field order (some fields left out, a
    newer one added), with `-` for random optional values, NODATA and SKIPDATA
    lines, blank, misshapen and damaged lines, CRLF or LF, with a header or not."""
    rng = random.Random(seed)
    header = rng.random() < 0.8
    if header:
        fields = [f for f in fl.V5 if f not in OPTIONAL or rng.random() < 0.8]
        fields += ["ecs-task-id"] if rng.random() < 0.5 else []
        rng.shuffle(fields)
    else:
        fields = list(aws.DEFAULT)
    lines = []
    for r in recs:
        values = {**fl.aws_values(r), "ecs-task-id": "-"}
        if ":" in r.src:
            values["pkt-srcaddr"] = values["pkt-dstaddr"] = "-"
        for f in rng.sample(OPTIONAL, rng.randrange(3)):
            values[f] = "-"
        if rng.random() < 0.05:
            f, v = rng.choice(DAMAGE)
            values[f] = v
        if rng.random() < 0.03:
            values["action"] = "reject"  # any case
        lines.append(" ".join(values[f] for f in fields))
        dice = rng.random()
        if dice < 0.02:
            lines.append("")
        elif dice < 0.04:
            lines.append(" ".join(values[f] for f in fields[:-1]))  # a field short
        elif dice < 0.05:
            lines.append(lines[-1] + " ")  # one more, empty
        elif dice < 0.07:
            status = rng.choice(["NODATA", "SKIPDATA"])
            given = {"version": "5", "interface-id": "eni-1", "start": "1", "end": "2"}
            lines.append(" ".join({**given, "log-status": status}.get(f, "-") for f in fields))
    eol = "\r\n" if rng.random() < 0.3 else "\n"
    text = eol.join(([" ".join(fields)] if header else []) + lines)
    return (text + (eol if rng.random() < 0.7 else "")).encode(), fields


@pytest.mark.parametrize("seed", range(8))
def test_the_same_as_the_reference(tmp_path, recs, seed):
    text, _ = mangled(recs, seed)
    path = tmp_path / f"log{seed}.log.gz"
    path.write_bytes(gzip.compress(text))
    fast, ref = both(path)
    assert fast.rows > len(recs) * 0.8
    assert_same(fast, ref)


def test_damaged_lines_by_number_and_the_rest_read(tmp_path, recs):
    lines = fl.aws_text(recs[:20]).splitlines()
    lines[3] = lines[3].replace(" 6 ", " x6 ", 1)
    lines[7] = "5 just a few fields"
    lines[9] = lines[9].split(" ", 1)[0] + " " + lines[9].split(" ", 1)[1].replace(" - ", " ", 1)
    path = tmp_path / "bad.log"
    path.write_text("\r\n".join(lines) + "\r\n")
    fast, ref = both(path)
    assert_same(fast, ref)
    assert [where for where, _ in fast.bad] == ["line 4", "line 8", "line 10"]  # header: 1
    assert fast.rows == 20 - 3


def test_several_chunks_give_what_one_does(tmp_path, recs, monkeypatch):
    path = fl.write_aws(tmp_path / "big.log", recs * 3)
    one = FileRead(0, str(path))
    aws.read(0, str(path), one)
    monkeypatch.setattr(awstext, "CHUNK", 7)
    many = FileRead(0, str(path))
    aws.read(0, str(path), many)
    assert len(many.parts) > 10
    assert_same(many, one)


@pytest.mark.parametrize("text", ["", "e", "eni-0a1", "eni-0a0a0a0a", "eni-0a0a0a0a0a0a0a0a0"])
def test_the_observer_is_the_same_hash_both_ways(text):
    assert awstext.eni_hash(text) == awstext.compiled.eni_hash(text.encode())


# Fuzzing ------------------------------------------------------------------------

ROLES = np.array([awstext.ROLES.get(f, -1) for f in fl.V5], np.int8)


def parse(view, roles: bytes, cap: int):
    out = np.full((awstext.COLS, cap), -7, np.int64)
    rows, end, line = awstext.compiled.parse(view, roles, 0, 0, out, cap)
    return rows, end, line, out[:, :rows]


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randrange(1, 12)):
        at = rng.randrange(len(data) + 1)
        what = rng.random()
        if what < 0.4 and at < len(data):
            data[at] = rng.choice(b" \n\r-.:0123456789abcOKNODATAREJECT\x00\xff")
        elif what < 0.6:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif what < 0.8:
            del data[at : at + rng.randrange(1, 40)]
        else:
            data[at:at] = rng.choice([b"-", b" ", b"\n", b"\r\n", b"255.255.255.255", b"9" * 30])
    return bytes(data)


def test_mutated_input_is_parsed_within_its_buffer(recs):
    """A prefix of a larger buffer parses exactly as a copy of it (whose next byte
    is a NUL): the parser never looked past the end; rows stay within `cap`,
    offsets and line numbers within the text, whatever the bytes and roles."""
    rng = random.Random(17)
    base = fl.aws_text(recs[:60], header=False).encode()
    for trial in range(400):
        data = mutate(rng, base)
        cut = rng.randrange(len(data) + 1)
        view = memoryview(data)[:cut]
        roles = ROLES.copy()
        if trial % 5 == 0:
            roles = np.array([rng.randrange(-1, 15) for _ in range(rng.randrange(0, 40))], np.int8)
        roles = roles.tobytes()
        cap = rng.choice([1, 3, 64, 4096])
        rows, end, line, out = parse(view, roles, cap)
        copy = parse(bytes(view), roles, cap)
        assert (rows, end, line) == copy[:3]
        np.testing.assert_array_equal(out, copy[3])
        assert 0 <= rows <= cap and 0 <= end <= cut and line <= data[:end].count(b"\n") + 1
        assert (out[awstext.OFF] < max(cut, 1)).all()
        assert (np.diff(out[awstext.LINE]) > 0).all()


def test_mutated_files_give_records_or_one_clear_error(tmp_path, recs):
    """Whole files, mutated: the compiled reader takes what it can and names the
    rest, or raises the one-line error a file with no record gets."""
    from portmatrix.errors import CaptureError

    rng = random.Random(5)
    base = fl.aws_text(recs[:40]).encode()
    for trial in range(60):
        path = tmp_path / f"m{trial}.log"
        path.write_bytes(mutate(rng, base))
        out = FileRead(0, str(path))
        try:
            aws.read(0, str(path), out)
        except CaptureError as exc:
            assert exc.file == str(path)
            continue
        assert out.rows + out.bad_count + out.nodata + out.skipdata > 0


def test_bad_arguments_are_refused():
    out = np.zeros((awstext.COLS, 4), np.int64)
    with pytest.raises(ValueError, match="output too small"):
        awstext.compiled.parse(b"x\n", ROLES.tobytes(), 0, 0, out, 5)
    with pytest.raises(ValueError, match="start outside"):
        awstext.compiled.parse(b"x\n", ROLES.tobytes(), 3, 0, out, 4)
    with pytest.raises(ValueError, match="unknown role"):
        awstext.compiled.parse(b"x\n", bytes([15]), 0, 0, out, 4)
