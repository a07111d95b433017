"""Code a reader can take in: no class over 250 lines, no function over 60 (generated code and tests aside)."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

ROOTS = ("shared", "services", "tools", "bench")
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return sorted(
        path
        for root in ROOTS
        for path in (REPO / root).rglob("*.py")
        if "_proto" not in path.parts and "build" not in path.parts and ".egg-info" not in str(path)
    )


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(REPO)))
def test_classes_and_functions_stay_small(path: Path) -> None:
    too_long = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                too_long.append(f"{node.name}: {lines} lines (limit {limit})")
    assert not too_long, too_long
