"""The tests mirror the code: tests/domain, tests/services, tests/cli, tests/system.

A test module sits in one of those directories, never directly in tests/, and
imports no other test module: what tests share (labs, builders, junk, oracles)
lives in tests/support, and fixtures in a conftest.py. The same holds for
tests/support itself and for every conftest.py, so nothing leans on a test
module by the back door.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
KINDS = ("domain", "services", "cli", "system")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module path imports, anywhere in it (functions too), as (line, dotted name)."""
    package = path.relative_to(TESTS.parent).with_suffix("").parts[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else ()
            base = ".".join([*parent, *([node.module] if node.module else [])])
            # `from tests import test_x` names the module in the alias.
            named = [f"{base}.{alias.name}" for alias in node.names]
            found.append((node.lineno, next(filter(_leans_on_a_test_module, named), base)))
    return found


def _leans_on_a_test_module(module: str) -> bool:
    """A module of tests/ other than tests/support: a test module, or a helper beside them."""
    parts = module.split(".")
    return parts[0] == "tests" and len(parts) > 1 and parts[1] != "support"


def test_no_test_module_sits_directly_in_tests() -> None:
    loose = sorted(path.name for path in TESTS.glob("test_*.py"))
    assert not loose, f"move into tests/{{{','.join(KINDS)}}}/: {loose}"


def test_no_test_module_imports_another_test_module() -> None:
    checked = [
        *TESTS.rglob("test_*.py"),
        *TESTS.rglob("conftest.py"),
        *(TESTS / "support").rglob("*.py"),
    ]
    offences = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
        for path in sorted(set(checked))
        for line, module in _imported_modules(path)
        if _leans_on_a_test_module(module)
    ]
    assert not offences, "put what is shared in tests/support:\n" + "\n".join(offences)
