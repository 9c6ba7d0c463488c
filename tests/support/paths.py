"""Where the tests find the repository, its sample captures and the shared real
captures (read in place, never copied into the repository)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "captures"
SHARED = REPO.parent / "shared"
SHARED_PCAPS = SHARED / "pcaps"
SEED = SHARED / "seed" / "network-ports.txt"

# The demo: a capture of a small ThoughtSpot cluster and its inventory, checked
# against the bundled `thoughtspot` matrix (captures/README.md).
DEMO = CAPTURES / "thoughtspot-demo.pcap"
DEMO_INVENTORY = CAPTURES / "thoughtspot-demo.inventory.yaml"


def capture_path(name: str) -> Path:
    """A capture by name: a sample of captures/ by its stem ("thoughtspot-demo")
    or file name, else a shared real capture by file name
    ("PcapPlusPlus__DnsPackets.pcap"). A name matching nothing fails the test's
    setup with the folders it looked in."""
    for path in (CAPTURES / name, SHARED_PCAPS / name, *sorted(CAPTURES.glob(f"{name}.pcap*"))):
        if path.is_file():
            return path
    if not SHARED_PCAPS.is_dir():
        from support import tools

        tools.missing(f"the shared captures are not at {SHARED_PCAPS}")
    raise FileNotFoundError(f"no capture {name!r} in {CAPTURES} or {SHARED_PCAPS}")
