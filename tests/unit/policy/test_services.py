"""Service names in a draft: the base matrix's, the well-known one, or proto/port."""

from __future__ import annotations

from portmatrix.policy.matrix import load_matrix
from portmatrix.policy.portsets import PortSet
from portmatrix.policy.services import service_name


def one(port: int) -> PortSet:
    return PortSet(port, port, "port", 1, 1)


def test_the_base_names_its_own_ports_first():
    base = load_matrix(["thoughtspot"])
    assert service_name("tcp", one(2100), base) == "Oreo RPC"
    assert service_name("tcp", one(2100), None) == "tcp/2100"
    assert service_name("udp", one(123), base) == "NTP"


def test_well_known_ports_then_proto_and_port():
    assert service_name("tcp", one(22), None) == "SSH"
    assert service_name("tcp", one(5432), None) == "Postgres"
    assert service_name("tcp", one(31337), None) == "tcp/31337"
    assert service_name("udp", PortSet(5000, 5009, "range", 10, 20), None) == "udp/5000-5009"


def test_dynamic_ports_are_named_by_the_control_service_beside_them():
    pool = PortSet(32768, 60999, "pool", 20, 20)
    assert service_name("tcp", pool, None, {("tcp", 21), ("tcp", 443)}) == "FTP passive data"
    assert service_name("tcp", pool, None, {("tcp", 135)}) == "MS-RPC dynamic endpoints"
    assert service_name("tcp", pool, None, {("tcp", 443)}) == "Dynamic ports"
