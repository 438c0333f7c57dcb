"""The floor plan, read from the imports of every module (ARCHITECTURE.md): layers import only
downwards, no import circle anywhere, and no library module imports the command line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Layers, bottom to top; a module may import its own package and the packages of lower layers.
LAYERS = (("theory",), ("infra",), ("simulate", "distill"), ("experiments",), ("reports",), ("icurr",))
#: Imports across one layer that the plan allows: the Transformer engine reuses the MLP engine's pure
#: math (Boolean-cube data, losses, probes, extraction projections); the MLP engine never imports it.
SIDEWAYS = {("distill", "simulate")}
PACKAGES = [p for layer in LAYERS for p in layer]


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Project modules that ``name`` imports (anywhere in the file, lazy imports included)."""
    out = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_pkg else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def _layer(pkg: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if pkg in layer)


def test_every_package_is_in_a_layer():
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert on_disk == set(PACKAGES)


def test_imports_go_only_downwards(graph):
    bad = []
    for mod, deps in graph.items():
        top = mod.split(".")[0]
        for dep in deps:
            other = dep.split(".")[0]
            if other == top or _layer(other) < _layer(top) or (top, other) in SIDEWAYS:
                continue
            bad.append(f"{mod} -> {dep}")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


def test_no_import_circles(graph):
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_floor_plan_checker_finds_a_planted_circle_and_an_upward_import(tmp_path):
    mods = {"a.x": tmp_path / "x.py", "a.y": tmp_path / "y.py"}
    mods["a.x"].write_text("from a.y import f\n")
    mods["a.y"].write_text("def f():\n    from .x import g\n")
    assert _imports("a.x", mods["a.x"], mods) == {"a.y"}
    assert _imports("a.y", mods["a.y"], mods) == {"a.x"}  # a lazy, relative import counts too
    assert _layer("infra") < _layer("simulate") == _layer("distill") < _layer("experiments") < _layer("icurr")


def test_one_version_source():
    from importlib import metadata

    from icurr import __version__
    from infra.version import package_version

    assert __version__ == package_version() == metadata.version("implicit-curriculum")
