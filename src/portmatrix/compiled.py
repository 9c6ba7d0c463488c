"""Which of the optional compiled helpers this installation has. Each has a
numpy (or pure Python) twin that gives the same results, only slower; an
install without a C compiler silently lacks them, so `--version` says.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

HELPERS = {
    "sources/_walk": "record walk",
    "decode/_common": "decoder fast path",
    "flows/_table": "flow table",
    "records/_awstext": "AWS flow-log reader",
}


def active() -> dict[str, bool]:
    """Helper name -> whether its extension module is installed (found on disk;
    nothing is imported, so `--version` stays light)."""
    root = Path(__file__).parent
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return {
        name: any((root / f"{module}{suffix}").is_file() for suffix in suffixes)
        for module, name in HELPERS.items()
    }


def describe() -> str:
    state = active()
    if all(state.values()):
        return "compiled helpers active: " + ", ".join(state)
    missing = [name for name, ok in state.items() if not ok]
    return (
        f"compiled helpers missing: {', '.join(missing)} — the numpy versions run instead "
        "(slower); reinstall with a C compiler to build them"
    )
