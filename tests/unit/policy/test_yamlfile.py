import datetime as dt

import pytest

from portmatrix.errors import MatrixError
from portmatrix.policy.yamlfile import YList, YMap, load_yaml


def test_mappings_and_sequences_know_their_lines():
    data = load_yaml(
        "m.yaml",
        "name: x\nroles:\n  nodes:\n    description: all\nrules:\n  - id: a\n  - id: b\n",
    )
    assert isinstance(data, YMap)
    assert data == {
        "name": "x",
        "roles": {"nodes": {"description": "all"}},
        "rules": [{"id": "a"}, {"id": "b"}],
    }
    assert data.line == 1
    assert data.line_of("name") == 1
    assert data.line_of("roles") == 2
    assert data.line_of("rules") == 5
    assert data["roles"].line_of("nodes") == 3
    rules = data["rules"]
    assert isinstance(rules, YList)
    assert rules.item_lines == [6, 7]
    assert rules[1].line_of("id") == 7


def test_line_of_a_missing_key_is_the_line_of_the_mapping():
    data = load_yaml("m.yaml", "a: 1\nb:\n  c: 2\n")
    assert data["b"].line_of("nope") == 3


def test_scalars_keep_their_yaml_types():
    data = load_yaml(
        "m.yaml", "i: 22\ns: '22'\nr: 20123-32768\nb: true\nd: 2027-03-31\nn: null\nf: 1.5\n"
    )
    assert data == {
        "i": 22,
        "s": "22",
        "r": "20123-32768",
        "b": True,
        "d": dt.date(2027, 3, 31),
        "n": None,
        "f": 1.5,
    }


def test_integer_keys_become_text():
    data = load_yaml("m.yaml", "22: ssh\n")
    assert data == {"22": "ssh"}


def test_text_is_read_from_the_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a: [1, 2]\n", encoding="utf-8")
    assert load_yaml(path) == {"a": [1, 2]}


def test_aliases_are_followed():
    data = load_yaml("m.yaml", "a: &ports [22, 80]\nb: *ports\n")
    assert data["b"] == [22, 80]
    assert isinstance(data["b"], YList)


def _error(text: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        load_yaml("m.yaml", text)
    return info.value


def test_duplicate_key_names_both_lines():
    err = _error("roles:\n  nodes: a\n  admins: b\n  nodes: c\n")
    assert err.file == "m.yaml"
    assert err.where == "4"
    assert "nodes: key given twice (first on line 2)" in str(err)
    assert str(err).startswith("m.yaml:4: ")


def test_duplicate_key_at_top_level():
    err = _error("name: a\nname: b\n")
    assert err.where == "2"
    assert "key given twice" in err.what


def test_malformed_yaml_names_file_and_line():
    err = _error("name: x\nrules:\n  - id: a\n   proto: tcp\n")
    assert err.file == "m.yaml"
    assert err.where == "4"
    assert err.what.startswith("malformed YAML: ")
    assert err.hint
    assert str(err).startswith("m.yaml:4: malformed YAML: ")


def test_unclosed_flow_sequence_is_malformed():
    err = _error("a: [1, 2\nb: 3\n")
    assert err.what.startswith("malformed YAML")
    assert err.where is not None and int(err.where) >= 1


def test_two_documents_are_malformed():
    err = _error("a: 1\n---\nb: 2\n")
    assert "malformed YAML" in err.what


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file(text):
    err = _error(text)
    assert err.what == "the file is empty"
    assert err.file == "m.yaml"


def test_non_word_key_is_an_error():
    err = _error("a: 1\n[x, y]: 2\n")
    assert err.where == "2"
    assert "plain word" in err.what


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError) as info:
        load_yaml(tmp_path / "absent.yaml")
    assert info.value.what == "no such file"
    assert info.value.file == str(tmp_path / "absent.yaml")


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(MatrixError) as info:
        load_yaml(path)
    assert info.value.what == "not text (UTF-8): byte 3 is 0xff"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("name: x\nexpires: 2027-13-45\n", "2027-13-45"),  # looks like a date, is not one
        ("a: 1\nb: !!int abc\n", "abc"),
        ("a: 1\nb: !!binary xx\n", "xx"),
        ("a:\n  - !custom thing\n", "thing"),
    ],
)
def test_bad_scalar_is_a_matrix_error_with_its_line(text, value):
    err = _error(text)
    assert err.file == "m.yaml"
    assert err.where == "2"
    assert err.what.startswith(f"{value!r} cannot be read")


def test_alias_to_itself_is_an_error_not_a_crash():
    err = _error("a: &x [1, *x]\n")
    assert err.file == "m.yaml"
    assert "malformed YAML" in err.what
