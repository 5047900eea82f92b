"""The readers' module structure (issue 12, item 6): no import circle, none hidden behind an
import inside a function, the column-map model with the mapping (which never imports the
readers), no circle between the package's parts, and a command line that does not load every
format at start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import importer.readers

READERS = Path(importer.readers.__file__).parent
PACKAGE = READERS.parent


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


def test_column_map_specs_live_with_the_mapping_model():
    from importer.mapping import columnmap

    for name in ("ColumnMap", "ParamsSpec", "BAG_TYPE", "MAPPABLE", "TIMESTAMP_FORMATS", "INPUT_FORMATS"):
        assert hasattr(columnmap, name)
    assert not (PACKAGE / "columnmap.py").exists()
    assert not (READERS / "tabular.py").exists()


def _imported_parts(path: Path, root: Path = PACKAGE) -> set[str]:
    """The parts of the package at ``root`` (its top-level modules and subpackages) that ``path``
    imports when it runs, at module level or inside a function; imports for type checkers only
    do not count."""
    package = path.relative_to(root).parent.parts
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    targets: list[tuple[str, ...]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            names = [node.module] if node.module else [alias.name for alias in node.names]
            targets += [(*base, *name.split(".")) for name in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("importer."):
            targets.append(tuple(node.module.split(".")[1:]))
        elif isinstance(node, ast.Import):
            targets += [tuple(a.name.split(".")[1:]) for a in node.names if a.name.startswith("importer.")]
    return {target[0] for target in targets if target}


def _parts_graph() -> dict[str, set[str]]:
    """Which part of ``importer`` imports which others (a part's imports of itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        part = path.relative_to(PACKAGE).with_suffix("").parts[0]
        graph.setdefault(part, set()).update(_imported_parts(path) - {part})
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for imported in graph.get(todo.pop(), ()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_the_mapping_never_imports_the_readers():
    # The readers import the column maps from the mapping; the other way round is a circle.
    graph = _parts_graph()
    assert "mapping" in graph["readers"]
    assert "readers" not in _reachable(graph, "mapping")


def test_the_parts_of_the_package_import_each_other_without_a_circle():
    graph = _parts_graph()
    assert {"mapping", "readers", "sinks", "arrowutil"} <= set(graph)
    circles = sorted(part for part in graph if part in _reachable(graph, part))
    assert circles == []


def test_the_parts_graph_counts_late_imports_and_leaves_out_those_for_type_checkers(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "__init__.py").write_text("from ..two import x\n", encoding="utf-8")
    (tmp_path / "two.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .three import y\n"
        "def f():\n    from .one import z\n",
        encoding="utf-8",
    )
    (tmp_path / "three.py").write_text("from importer.one import w\n", encoding="utf-8")
    graph = {
        path.relative_to(tmp_path).with_suffix("").parts[0]: _imported_parts(path, tmp_path)
        for path in tmp_path.rglob("*.py")
    }
    assert graph == {"one": {"two"}, "two": {"one"}, "three": {"one"}}


def test_the_command_line_starts_without_loading_the_format_modules():
    code = (
        "import sys, importer.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('importer.readers.') and m != 'importer.readers.base'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
