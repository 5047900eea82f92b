"""Pieces small enough to read in one sitting: no function or method in ``importer/`` over
80 lines, no module over 600.

Lines are counted as a reader sees them: a function runs from the first line of its body (its
docstring, when it has one) to its last line, comments and blank lines inside included; its
signature is not counted (a command's signature is its table of options: a declaration, not
logic to hold in one's head). A module is all of its physical lines. There are no exceptions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "importer"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def function_lengths(source: str) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from the body's first line to its last) of every function in ``source``,
    methods and nested functions included (``Class.method``, ``outer.inner``)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                yield name, (child.end_lineno or child.lineno) - child.body[0].lineno + 1
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(source), "")


def measure(package: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(functions over the limit, modules over the limit) of ``package``, keyed as in the known lists."""
    functions: dict[str, int] = {}
    modules: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            modules[relative] = lines
        for name, length in function_lengths(source):
            if length > MAX_FUNCTION_LINES:
                functions[f"{relative}:{name}"] = length
    return functions, modules


def test_no_function_is_over_80_lines_and_no_module_over_600():
    functions, modules = measure(PACKAGE)
    assert functions == {}, f"functions over {MAX_FUNCTION_LINES} lines (split them): {functions}"
    assert modules == {}, f"modules over {MAX_MODULE_LINES} lines (split them): {modules}"


def test_a_function_counts_its_body_with_docstring_and_nested_names_not_its_signature():
    body = "\n".join(f"    x{i} = {i}" for i in range(78))
    source = (
        "import functools\n"
        "\n"
        "@functools.cache\n"  # decorators are not counted
        "def long(\n"  # nor the signature
        "    a: int = 1,\n"
        "):\n"
        '    """A docstring counts."""\n'
        "\n"  # a blank line inside the body counts
        f"{body}\n"
        "\n"
        "class Box:\n"
        "    async def method(self):\n"
        "        def inner():\n"
        "            return 1\n"
        "        return inner()\n"
    )
    assert dict(function_lengths(source)) == {"long": 80, "Box.method": 3, "Box.method.inner": 1}


def test_measure_reports_a_function_of_81_lines_and_a_module_of_601(tmp_path):
    long_body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (tmp_path / "long.py").write_text(f"def f():\n{long_body}\n", encoding="utf-8")
    short_body = "\n".join(f"    x{i} = {i}" for i in range(80))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "fits.py").write_text(f"def g():\n{short_body}\n" + "\n" * 519, encoding="utf-8")
    (tmp_path / "sub" / "big.py").write_text("x = 1\n" * 601, encoding="utf-8")
    assert measure(tmp_path) == ({"long.py:f": 81}, {"sub/big.py": 601})
