"""The outside tools conformance tests drive (tshark, Chromium, a Dask cluster):
found, or the test is skipped with the reason — except in CI (CI set), where a
missing tool fails the run, so the checks cannot quietly stop running there."""

from __future__ import annotations

import os
import shutil
from types import ModuleType

import pytest


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this: {reason}", pytrace=False)
    pytest.skip(reason)


def program(name: str, install: str) -> str:
    """The path of the program `name`; `install` says how to get it."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({install})")
    return found


def module(name: str, install: str) -> ModuleType:
    """The Python module `name`, imported; `install` says how to get it."""
    try:
        return __import__(name)
    except ImportError:
        missing(f"the Python package {name} is missing ({install})")
