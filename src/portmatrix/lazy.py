"""Optional heavy modules, imported on first use with a hint naming what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from portmatrix.errors import PortmatrixError


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or fail with the pip command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PortmatrixError(
            f"this needs the optional package {module!r}", hint=f"pip install 'portmatrix[{extra}]'"
        ) from None
