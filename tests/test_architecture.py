"""The boundaries the design depends on: one module talks to Lark, one to llama.cpp; imports run one way, from
the faces down to the catalog, with no circle; no private name is reached across modules; the public API is
whole."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lmlang

PACKAGE = Path(lmlang.__file__).parent

# The layers, bottom to top (see the design notes): a module may import its own layer and those below it.
LAYERS = ("base", "catalog", "syntax", "check", "interpret", "masks", "constraints", "models", "decoding",
          "multimodel", "session", "faces")
# A module's layer is that of the longest prefix listed here; a module under no prefix is a face.
PLACES = {
    "lmlang.errors": "base", "lmlang.source": "base", "lmlang.result": "base", "lmlang.caches": "base",
    "lmlang.decoding.catalog": "catalog", "lmlang.constraints.catalog": "catalog",
    "lmlang.constraints.meaning": "catalog",
    "lmlang.syntax": "syntax",
    "lmlang.check": "check",
    "lmlang.interpret": "interpret",
    # Decorators run the query's own functions on values: no model, nothing of decoding but the name.
    "lmlang.decoding.decorator": "interpret",
    # The prompt as the cache holds it (text, roles, the model's sequence): runtime state, whatever its package.
    "lmlang.interpret.prompt": "decoding",
    "lmlang.masks": "masks",
    "lmlang.constraints": "constraints",
    "lmlang.models": "models",
    "lmlang.decoding": "decoding",
    "lmlang.multimodel": "multimodel",
    # The calibration tool runs whole queries through the front door.
    "lmlang.multimodel.calibrate": "faces",
    "lmlang.session": "session",
    # Which runs may use a model at once: the session takes a model's lock as a run reaches it.
    "lmlang.concurrency": "session",
}


def importers(module: str) -> set[str]:
    pattern = re.compile(rf"^\s*(import|from)\s+{module}\b", re.MULTILINE)
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, those inside functions included (they run too), but not those under
    ``if TYPE_CHECKING:`` (they never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the lmlang modules it imports (``from package import name`` counts the submodule ``name``)."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(owner(alias.name) for alias in node.names if alias.name.split(".")[0] == "lmlang")
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "lmlang":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else owner(base))
        targets.discard(None)
        targets.discard(module)
        graph[module] = {t for t in targets if t is not None}
    return graph


def layer(module: str) -> str:
    name = module
    while name:
        if name in PLACES:
            return PLACES[name]
        name = name.rpartition(".")[0]
    return "faces"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


# The parser: its front door, the indentation layout between Lark's lexer and parser, and the pass that builds the
# AST from Lark's tree. Only the front door is imported from elsewhere, so Lark's objects stay inside the parser.
PARSER = {"syntax/parser.py", "syntax/layout.py", "syntax/builder.py"}


def test_only_the_parser_imports_lark() -> None:
    assert importers("lark") == PARSER


def test_the_parser_is_reached_through_its_front_door() -> None:
    for part in ("layout", "builder"):
        assert importers(rf"lmlang\.syntax\.{part}") <= PARSER, part
        assert importers(rf"lmlang\.syntax import .*\b{part}\b") == set(), part


def test_only_the_backend_imports_llama_cpp() -> None:
    assert {path for path in importers("llama_cpp") if not path.startswith("models/")} == set()


def test_the_graph_sees_lazy_imports() -> None:
    graph = import_graph()
    assert "lmlang.models" in graph["lmlang.session"] or "lmlang.models.llama" in graph["lmlang.session"]


def test_no_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_imports_point_down_the_layers() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(f"{module} ({layer(module)}) imports {target} ({layer(target)})"
                    for module, targets in import_graph().items() for target in targets
                    if rank[layer(target)] > rank[layer(module)])
    assert upward == []


def test_no_private_name_is_imported_across_modules() -> None:
    graph_modules = modules()
    crossing = []
    for module, path in graph_modules.items():
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lmlang"):
                crossing += [f"{module}: from {node.module} import {a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossing == []


def _private_names_defined(tree: ast.AST) -> set[str]:
    """The private functions, methods and ``self.`` attributes a module defines."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if name.startswith("_")}


def test_no_private_attribute_is_reached_across_modules() -> None:
    """``decoder._drive(...)`` from another module: a name with a leading underscore is used only in the module
    that defines it."""
    crossing = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text())
        own = _private_names_defined(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.attr not in own and isinstance(node.value, ast.Name)
                    and node.value.id not in ("sys", "os", "self", "cls")):
                crossing.append(f"{module}:{node.lineno}: {node.value.id}.{node.attr}")
    assert crossing == []


def test_every_module_has_a_known_layer() -> None:
    assert {layer(m) for m in modules()} <= set(LAYERS)


def test_public_api_is_exported() -> None:
    for name in lmlang.__all__:
        assert hasattr(lmlang, name), name
