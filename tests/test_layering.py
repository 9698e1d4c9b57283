"""The package's layers point one way: no import cycle, at most one import running up a layer,
no module over 500 lines. The graph is read from the source (ast), so it sees imports inside
functions as well as those at module level."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "onnxfit"

# Lowest first. A module belongs to the first layer with a prefix matching it (the longest
# prefix wins); a module in no layer fails the test, so a new module must be placed.
LAYERS = {
    "ground floor: model I/O, shapes, graphs, batch-op table, versions, text, errors": (
        "onnxfit", "onnxfit.errors", "onnxfit.model", "onnxfit.lazy_io", "onnxfit.shapes",
        "onnxfit.graphs", "onnxfit._graphsurgeon", "onnxfit.batch_ops", "onnxfit.batch_axes",
        "onnxfit.fixed_inputs", "onnxfit.model_inputs", "onnxfit.versions", "onnxfit.text",
    ),
    "engine: targets, optimizer, verify, exporters": (
        "onnxfit.targets", "onnxfit.optimizer", "onnxfit.verification",
        "onnxfit.exporters",
    ),
    "application: jobs, prepare/cache, advice, sessions, inspect, the public functions": (
        "onnxfit.app",
        "onnxfit.exporters.torch_onnx",  # exports, then optimizes and verifies the result
    ),
    "command line": ("onnxfit.cli", "onnxfit.__main__"),
}

# Generated data tables: rows transcribed from ONNX Runtime's kernel registrations, not logic.
LONG_DATA_TABLES = {"onnxfit/targets/cuda_kernels.py"}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The onnxfit modules ``name`` imports anywhere in its source (relative imports resolved;
    ``from package import submodule`` counts as the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("onnxfit") and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def layer_of(name: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS.values()):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if layer_of(b) > layer_of(a))


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_at_most_one_import_runs_up_a_layer():
    upward = upward_imports(import_graph())
    assert len(upward) <= 1, upward


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= LONG_DATA_TABLES, long


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "onnxfit"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("def f():\n    from .. import low\n    from . import b\n")
    (package / "sub" / "b.py").write_text("")
    known = {"onnxfit", "onnxfit.low", "onnxfit.sub", "onnxfit.sub.a", "onnxfit.sub.b"}
    assert imports_of("onnxfit.sub.a", package / "sub" / "a.py", known) == {"onnxfit.low", "onnxfit.sub.b"}


if __name__ == "__main__":
    graph = import_graph()
    print("cycles:", cycles(graph))
    print("upward:", *upward_imports(graph), sep="\n  ")
