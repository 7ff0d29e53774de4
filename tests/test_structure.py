"""The package's structure: no import cycles, and no private attribute of Ray or Optuna.

Both are checked on the source with the ast module, so they hold for code paths no test
runs. Imports inside functions count: a lazy import still couples two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autopeft"
FOREIGN = ("ray", "optuna")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> autopeft modules it imports (``from pkg import sub`` points at ``pkg.sub``)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_lower_layers_never_import_the_cli():
    graph = import_graph()
    offenders = {m: sorted(t for t in targets if t.startswith("autopeft.cli"))
                 for m, targets in graph.items() if not m.startswith("autopeft.cli")}
    assert {m: t for m, t in offenders.items() if t} == {}


def _own_private_names() -> set[str]:
    """Underscore names autopeft itself defines (functions, classes, attributes it assigns)."""
    names: set[str] = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def foreign_private_uses() -> list[str]:
    """``x._name`` reads, in modules that use Ray or Optuna, of names autopeft never defines,
    and imports of underscore names or modules from Ray or Optuna."""
    own = _own_private_names()
    found = []
    for name, path in sorted(modules().items()):
        tree = ast.parse(path.read_text())
        uses_foreign = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or ""]
                if mods[0].split(".")[0] in FOREIGN:
                    found += [f"{name}: from {mods[0]} import {a.name}" for a in node.names
                              if a.name.startswith("_")]
            else:
                continue
            for mod in mods:
                if mod.split(".")[0] in FOREIGN:
                    uses_foreign = True
                    if any(part.startswith("_") for part in mod.split(".")):
                        found.append(f"{name}: imports {mod}")
        if not uses_foreign:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and node.attr not in own):
                found.append(f"{name}:{node.lineno}: .{node.attr}")
    return found


def test_no_private_attribute_of_ray_or_optuna_is_used():
    assert foreign_private_uses() == []


def test_every_deferred_import_names_something_that_exists():
    """Imports inside functions run only when called: a name that moved (a merge, a refactor)
    fails there, in front of a user. Check every ``from autopeft... import name`` up front."""
    import ast
    import importlib

    root = Path(__file__).resolve().parents[1]
    missing = []
    for path in sorted([*root.joinpath("autopeft").rglob("*.py"),
                        *root.joinpath("scripts").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0
                    and (node.module or "").startswith("autopeft")):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if alias.name == "*" or hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    missing.append(f"{path.relative_to(root)}:{node.lineno} "
                                   f"{node.module}.{alias.name}")
    assert missing == []
