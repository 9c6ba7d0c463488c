"""tests/unit mirrors src/portmatrix one to one (as mitmproxy's
test/filename_matching.py enforces): every module has its test file, named
test_<module>.py (or test_<module>_<aspect>.py) in the same folder; a package's
__init__ is tested by test_<package>.py; and no test file names a module that
does not exist."""

from __future__ import annotations

from support.paths import REPO

SRC = REPO / "src" / "portmatrix"
UNIT = REPO / "tests" / "unit"
NOT_MODULES = {"__main__.py"}  # `python -m portmatrix`: the CLI's tests cover it


def modules() -> set[tuple[str, ...]]:
    """(folder parts..., module name) of every module, __init__ named after its package."""
    out = set()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if path.name in NOT_MODULES or rel == SRC.joinpath("__init__.py").relative_to(SRC):
            continue
        if path.name == "__init__.py" and _only_a_docstring(path):
            continue  # a package's __init__ that only says what the package holds
        folder = rel.parent.parts
        name = folder[-1] if path.name == "__init__.py" else path.stem
        out.add((*folder, name))
    return out


def _only_a_docstring(path) -> bool:
    import ast

    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def unit_test_files() -> dict[tuple[str, ...], str]:
    out = {}
    for path in UNIT.rglob("test_*.py"):
        rel = path.relative_to(UNIT)
        out[(*rel.parent.parts, path.stem[len("test_") :])] = str(rel)
    return out


def _module_of(key: tuple[str, ...], known: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    *folder, name = key
    for candidate in sorted(known, key=lambda m: -len(m[-1])):
        if tuple(folder) == candidate[:-1] and (
            name == candidate[-1] or name.startswith(candidate[-1] + "_")
        ):
            return candidate
    return None


def test_every_module_has_its_test_file():
    known = modules()
    tested = {_module_of(key, known) for key in unit_test_files()}
    missing = sorted("/".join(m) + ".py" for m in known - tested)
    assert not missing, f"modules without tests/unit/.../test_<module>.py: {missing}"


def test_every_test_file_names_a_module():
    known = modules()
    orphans = sorted(path for key, path in unit_test_files().items() if not _module_of(key, known))
    assert not orphans, f"test files matching no module of src/portmatrix: {orphans}"
