"""The readers' module structure (issue 12, item 6): no import circle, none hidden behind an
import inside a function, the column-map model outside the readers, and a command line that
does not load every format at start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import importer.readers

READERS = Path(importer.readers.__file__).parent


def _relative_imports(tree: ast.AST, module: str) -> list[tuple[str, bool]]:
    """(imported sibling module, at module level?) for each ``from . import``/``from .x import``."""
    found = []
    top_level = {id(node) for node in getattr(tree, "body", [])}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found += [(name.split(".")[0], id(node) in top_level) for name in names]
    return found


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {
        path.stem: _relative_imports(ast.parse(path.read_text(encoding="utf-8")), path.stem)
        for path in READERS.glob("*.py")
    }


def test_reader_modules_import_each_other_without_a_circle():
    graph = {module: {name for name, _ in imports} for module, imports in _graph().items() if module != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_no_reader_module_imports_a_sibling_inside_a_function():
    late = [
        (module, name)
        for module, imports in _graph().items()
        if module != "__init__"
        for name, top in imports
        if not top
    ]
    assert late == []


def test_the_package_has_no_lazy_attributes_and_no_copied_format_list():
    source = (READERS / "__init__.py").read_text(encoding="utf-8")
    assert "def __getattr__" not in source and "LOG_FORMATS" not in source
    assert not hasattr(importer.readers, "LOG_FORMATS")


def test_column_map_specs_live_outside_the_readers():
    from importer import columnmap

    for name in ("ColumnMap", "ParamsSpec", "BAG_TYPE", "MAPPABLE", "TIMESTAMP_FORMATS", "INPUT_FORMATS"):
        assert hasattr(columnmap, name)
    assert "from .readers" not in Path(columnmap.__file__).read_text(encoding="utf-8")
    assert not (READERS / "tabular.py").exists()


def test_the_command_line_starts_without_loading_the_format_modules():
    code = (
        "import sys, importer.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('importer.readers.') and m != 'importer.readers.base'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
