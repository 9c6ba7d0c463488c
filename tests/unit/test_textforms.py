"""JSON text of reports: what json writes, laid out one list item per line."""

from __future__ import annotations

import json

import pytest

from portmatrix.textforms import json_text, printable

DOC = {
    "findings": [{"id": "PM-1", "port": 22, "roles": ["nodes"]}, {"id": "PM-2", "port": 53}],
    "summary": {"flows": 3, "verdicts": {"allowed": 2, "forbidden": 1}, "window": None},
    "notices": ["zoë's capture"],
    "empty": {},
    "none": [],
    "nested": [[1, 2], [3]],
}


def test_it_is_the_document_json_would_write():
    assert json.loads(json_text(DOC)) == json.loads(json.dumps(DOC))


def test_objects_outside_in_key_by_key_and_list_items_one_per_line():
    lines = json_text(DOC).splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert ' {"id": "PM-1", "port": 22, "roles": ["nodes"]},' in [line[1:] for line in lines]
    assert '  "flows": 3,' in lines
    assert '  "verdicts": {"allowed": 2, "forbidden": 1},' in lines  # deeper: one line
    assert ' "empty": {},' in lines and ' "none": [],' in lines


def test_text_stays_text_and_keys_are_written_as_json_writes_them():
    assert '"zoë\'s capture"' in json_text(DOC)
    assert json_text({"a": {True: {False: None}}}) == '{\n "a": {\n  "true": {"false": null}\n }\n}'


def test_keys_json_cannot_sort_are_an_error_as_in_json():
    with pytest.raises(TypeError):
        json_text({"a": 1, 2: 3})


@pytest.mark.parametrize(
    ("proto", "port", "text"),
    [
        ("tcp", 443, "tcp/443"),
        ("icmp", 8, "icmp type 8"),
        ("icmpv6", 128, "icmpv6 type 128"),
        ("47", None, "IP protocol 47"),
        ("tcp", None, "tcp"),  # a rule's coverage: no single port
    ],
)
def test_every_output_names_a_service_alike(proto, port, text):
    from portmatrix.textforms import service_text

    assert service_text(proto, port) == text


def test_iso_never_prints_not_a_time():
    import numpy as np

    from portmatrix.textforms import NAT, iso

    got = iso(np.array([0, NAT, 1_700_000_000_123_456_789], np.int64)).tolist()
    assert got == ["1970-01-01T00:00:00.000000Z", "", "2023-11-14T22:13:20.123456Z"]


@pytest.mark.parametrize(
    ("raw", "limit", "text"),
    [
        (b"OpenSSH_9.2p1\r\n", None, "OpenSSH_9.2p1??"),
        (b"caf\xc3\xa9 \xff", None, "caf\u00e9 \ufffd"),  # bad UTF-8: U+FFFD, which prints
        (b"abcdef", 3, "abc"),  # cut in bytes
        ("tab\there\u202e", None, "tab?here?"),  # a right-to-left override does not print
        ("line\nbreak", 4, "line"),
    ],
)
def test_printable_text_shows_only_what_prints(raw, limit, text):
    assert printable(raw, limit) == text
