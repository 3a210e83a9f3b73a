"""The package's layers: imports point one way, down the layers below, and no two parts import each other.

Every module under `valgusml/` is parsed (not imported); each `valgusml...` import, absolute or relative, at
module level or inside a function, is mapped to the part it lands in: the first name under `valgusml`
(`valgusml.training.train` → `training`; `valgusml/__init__.py` → `__init__`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "valgusml"

# Low → high. A part may import parts of the layers below it; within a layer only the pairs in SIDEWAYS.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "core (numpy only)",
        frozenset({
            "__init__", "errors", "labels", "skeleton", "sequence", "io", "features", "preprocess", "predictor",
            "paths", "json_safe", "canonical_json", "hydra_app", "limits", "leftovers",
        }),
    ),
    ("data/synth", frozenset({"data", "synth", "models", "scoring", "viz"})),
    ("runs", frozenset({"runs"})),
    ("training/evaluation/export", frozenset({"training", "evaluation", "export"})),
    ("apps", frozenset({"cli", "run_default", "train"})),
)
# The core is one layer of small leaf modules: any order among them, as long as there is no cycle.
FREE_WITHIN = frozenset({"core (numpy only)"})
SIDEWAYS = frozenset({
    ("synth", "data"),  # the generator writes datasets through data.format
    ("training", "export"),  # a training run ends by exporting its predictor; export never imports training
})
LAYER_OF = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}


def _part(file: Path) -> str:
    rel = file.relative_to(PACKAGE)
    return "__init__" if rel == Path("__init__.py") else rel.parts[0].removesuffix(".py")


def _targets(node: ast.AST, file: Path) -> list[str]:
    """Dotted `valgusml...` names an import statement reaches (for `from X import a, b`: X.a and X.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        package = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = package[:-1]  # a module's package; for __init__.py the package itself
        base = package[: len(package) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [f"{module}.{alias.name}" for alias in node.names]


def import_edges() -> list[tuple[str, str, str, int]]:
    """(importing part, imported part, file, line) for every import from one part into another."""
    edges = []
    for file in sorted(PACKAGE.rglob("*.py")):
        source = _part(file)
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _targets(node, file):
                parts = name.split(".")
                if parts[0] != "valgusml":
                    continue
                target = parts[1] if len(parts) > 1 else "__init__"
                if target not in LAYER_OF and not (PACKAGE / target).is_dir() and not (PACKAGE / f"{target}.py").is_file():
                    target = "__init__"  # `from valgusml import __version__`: a name of the package itself
                if target != source:
                    edges.append((source, target, str(file.relative_to(PACKAGE.parent)), node.lineno))
    return edges


def _cycles(edges: list[tuple[str, str, str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one part (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _, _ in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_part_has_a_layer():
    parts = {_part(f) for f in PACKAGE.rglob("*.py")}
    unplaced = sorted(parts - set(LAYER_OF))
    assert not unplaced, f"valgusml parts without a layer: {unplaced}; add each to LAYERS in {__file__}"


def test_no_import_cycles_between_parts():
    edges = import_edges()
    messages = []
    for component in _cycles(edges):
        inside = [f"  {f}:{line}: {a} -> {b}" for a, b, f, line in edges if a in component and b in component]
        messages.append(f"cycle among {component}:\n" + "\n".join(inside))
    assert not messages, "\n".join(messages)


def test_imports_point_down_the_layers():
    violations = []
    for a, b, file, line in import_edges():
        la, lb = LAYER_OF.get(a), LAYER_OF.get(b)
        if la is None or lb is None or lb < la:
            continue
        if la == lb and (LAYERS[la][0] in FREE_WITHIN or (a, b) in SIDEWAYS):
            continue
        where = "up to" if lb > la else "sideways within"
        violations.append(f"{file}:{line}: {a} ({LAYERS[la][0]}) imports {b}: {where} layer {LAYERS[lb][0]!r}")
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_import_graph_sees_relative_and_function_level_imports():
    # The checker itself: the kinds of import the layers rest on are all seen.
    edges = {(a, b) for a, b, _, _ in import_edges()}
    assert ("training", "runs") in edges  # function-level and absolute
    assert ("data", "errors") in edges
    for file in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert all(t.startswith("valgusml.") for t in _targets(node, file))


def test_data_imports_no_torch():
    code = "import sys, valgusml.data; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", f"import valgusml.data loaded {proc.stdout.strip()}"
