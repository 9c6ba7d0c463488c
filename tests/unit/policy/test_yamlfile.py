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


BILLION_LAUGHS = """name: bomb
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_an_alias_bomb_is_refused_before_it_expands():
    err = _error(BILLION_LAUGHS)  # 9^8 = 43 million values if expanded
    assert "aliases expand to more than 10000 values" in err.what
    assert err.hint


def test_aliases_within_the_budget_still_work():
    from portmatrix.policy.yamlfile import MAX_ALIAS_VALUES

    items = ", ".join(["80"] * 99)
    text = f"a: &p [{items}]\nb: [" + ", ".join(["*p"] * (MAX_ALIAS_VALUES // 100 - 1)) + "]\n"
    assert len(load_yaml("m.yaml", text)["b"]) == MAX_ALIAS_VALUES // 100 - 1


@pytest.mark.parametrize(
    "text",
    [
        'rules: !!python/object/apply:os.system ["echo pwned"]\n',
        "rules: !!python/object/new:dict {a: 1}\n",
        "rules: !!set {a: null}\n",
        "rules: !custom [1]\n",
        "ports: !!python/name:os.system ''\n",
    ],
    ids=["apply-on-a-list", "new-on-a-mapping", "set", "local-tag", "python-scalar"],
)
def test_tags_outside_the_core_schema_are_errors_never_dropped(text):
    err = _error(text)
    assert err.where == "1"
    assert "is not allowed" in err.what and err.hint == "remove the tag"


def test_nesting_deeper_than_a_matrix_is_an_error_not_a_crash():
    from portmatrix.policy.yamlfile import MAX_NESTING

    err = _error("a: " + "[" * 990 + "]" * 990 + "\n")
    assert f"nested more than {MAX_NESTING} levels deep" in err.what
    assert load_yaml("m.yaml", "a: " + "[" * 10 + "1" + "]" * 10 + "\n")


def test_a_file_larger_than_any_matrix_is_refused_unread(tmp_path):
    from portmatrix.policy.yamlfile import MAX_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("a:\n" + "- 1\n" * (MAX_BYTES // 4 + 1))
    with pytest.raises(MatrixError) as info:
        load_yaml(path)
    assert "larger than a matrix or inventory can be" in info.value.what
    assert info.value.hint == "YAML files up to 2 MB are read"


def test_a_hostile_matrix_through_the_cli_is_one_line(run_cli, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(
        "name: evil\nroles:\n  nodes: {description: x}\n"
        'rules: !!python/object/apply:os.system ["echo pwned"]\n'
    )
    for path in (bomb, tagged):
        result = run_cli("rules", "lint", str(path))
        assert result.exit_code == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"portmatrix: error: {path}:")
