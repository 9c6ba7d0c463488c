"""Where the tests find the repository, its sample captures and the shared real
captures (read in place, never copied into the repository)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "captures"
SHARED = REPO.parent / "shared"
SHARED_PCAPS = SHARED / "pcaps"
SEED = SHARED / "seed" / "network-ports.txt"
