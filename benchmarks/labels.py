"""Which labeller names more of the test set right: tshark as is, tshark on
payloads alone (ports neutralised, as `portmatrix.apps` runs it), our payload
signatures, nDPI (through nfstream, when a Python with it is given), and
pyshark (tshark through its wrapper: the same labels, its time).

    python benchmarks/labels.py [--ndpi-python /path/to/python-with-nfstream]

The test set is tests/support/apps.py: every protocol of CASES on its own port
and on a foreign one, random bytes on SSH's port (must stay unidentified), and
QUIC on 443 and on a foreign port. A label is right when it is the protocol's
(or, for the random bytes, when nothing is named). Prints one row per
labeller: right / total, and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from portmatrix.testing.captures import write_pcap  # noqa: E402
from support import apps  # noqa: E402

CLIENT, SERVER = "10.1.0.5", "10.2.0.9"


def test_set(folder: Path) -> list[tuple[Path, str, str]]:
    """(capture, expected label, case name): one flow per capture."""
    out = []
    cases = [*apps.CASES, apps.UNIDENTIFIED_CASE]
    for case in cases:
        for where, port in (("own", case.port), ("foreign", case.foreign)):
            packets = apps.conversation(CLIENT, SERVER, 40000, port, case.messages)
            path = write_pcap(folder / f"{case.label}-{where}.pcap", apps.frames_of(packets))
            out.append((path, case.label, f"{case.label} tcp/{port}"))
    hello = apps.client_hello("quic.example.com", ("h3",))
    for where, port in (("own", 443), ("foreign", 8853)):
        packets = apps.conversation(
            CLIENT, SERVER, 40000, port, [("c", apps.quic_initial(hello))], proto="udp"
        )
        path = write_pcap(folder / f"quic-{where}.pcap", apps.frames_of(packets))
        out.append((path, "quic", f"quic udp/{port}"))
    return out


def ours(paths, tshark: bool):
    from portmatrix.apps.labels import label_flows
    from portmatrix.flows.from_captures import read_traffic

    found = []
    for path in paths:
        flows = read_traffic([str(path)]).flows
        labels = label_flows([str(path)], flows, use_tshark=tshark, signatures_first=not tshark)
        found.append(labels.labels[0] if len(labels.labels) else None)
    return found


def tshark_as_is(paths):
    from portmatrix.apps.tshark import deepest

    found = []
    for path in paths:
        done = subprocess.run(
            ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.protocols"],
            capture_output=True,
            text=True,
            check=True,
        )
        names = [deepest(line) for line in done.stdout.splitlines()]
        found.append(next((n for n in names if n), None))
    return found


def pyshark_as_is(paths):
    import pyshark

    from portmatrix.apps.tshark import deepest

    found = []
    for path in paths:
        cap = pyshark.FileCapture(str(path), keep_packets=False)
        names = [deepest(":".join(layer.layer_name.lower() for layer in p.layers)) for p in cap]
        cap.close()
        found.append(next((n for n in names if n), None))
    return found


NDPI_SCRIPT = """
import json, sys
from nfstream import NFStreamer
out = []
for path in sys.argv[1:]:
    names = [f.application_name for f in NFStreamer(source=path, n_dissections=20)]
    out.append(names[0] if names else None)
print(json.dumps(out))
"""


def ndpi(paths, python: str):
    done = subprocess.run(
        [python, "-c", NDPI_SCRIPT, *map(str, paths)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


NDPI_NAMES = {
    "SSH": "ssh",
    "TLS": "tls",
    "HTTP": "http",
    "SMBv23": "smb",
    "SMBv1": "smb",
    "RDP": "rdp",
    "PostgreSQL": "postgresql",
    "Redis": "redis",
    "RESP": "redis",
    "IRC": "irc",
    "MySQL": "mysql",
    "SMTP": "smtp",
    "FTP_CONTROL": "ftp",
    "QUIC": "quic",
    "Unknown": None,
}


def right(found, expected) -> bool:
    if expected == "unidentified":
        return found in (None, "unidentified")
    return found == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ndpi-python", help="a Python that can import nfstream")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = test_set(Path(tmp))
        paths = [p for p, _, _ in cases]
        runs = {
            "signatures (ours)": lambda: ours(paths, tshark=False),
            "tshark, payload only (ours)": lambda: ours(paths, tshark=True),
            "tshark as is (ports)": lambda: tshark_as_is(paths),
            "pyshark as is (ports)": lambda: pyshark_as_is(paths),
        }
        if args.ndpi_python:
            runs["nDPI (nfstream)"] = lambda: [
                NDPI_NAMES.get(n.split(".")[-1], n) if n else None
                for n in ndpi(paths, args.ndpi_python)
            ]
        table = {}
        for name, run in runs.items():
            start = time.perf_counter()
            found = run()
            table[name] = (found, time.perf_counter() - start)
        width = max(len(n) for _, _, n in cases)
        print(f"{'case':{width}}  " + "  ".join(f"{n[:22]:22}" for n in table))
        for k, (_, expected, name) in enumerate(cases):
            cells = []
            for found, _ in table.values():
                mark = "ok" if right(found[k], expected) else "--"
                cells.append(f"{mark} {found[k] or '-'}"[:22].ljust(22))
            print(f"{name:{width}}  " + "  ".join(cells))
        for name, (found, seconds) in table.items():
            score = sum(right(f, e) for f, (_, e, _) in zip(found, cases, strict=True))
            print(f"{name}: {score}/{len(cases)} right, {seconds:.1f} s for {len(cases)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
