"""A network namespace with a veth pair, for live tests and benchmarks that must
send and capture traffic no other process on the machine can see."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def veth_namespace(prefix: str) -> Iterator[str]:
    """A namespace named `prefix-XXXXXX` with a veth pair vA <-> vB and lo, all up,
    without IPv6 (no router solicitations mixed into a count); its name. Deleted
    on the way out, whatever happened."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        ip = ["ip", "-n", name]
        subprocess.run([*ip, "link", "add", "vA", "type", "veth", "peer", "name", "vB"], check=True)
        for dev in ("lo", "vA", "vB"):
            subprocess.run([*ip, "link", "set", dev, "up"], check=True, capture_output=True)
            sysctl = ["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"]
            subprocess.run(["ip", "netns", "exec", name, *sysctl], capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
