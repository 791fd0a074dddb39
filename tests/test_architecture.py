"""The layout's rules, read from the package's own imports: layers, peers, no cycles."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "uitpas_async"
#: The provider packages: peers that never import each other.
PROVIDERS = ("xml_api", "finam", "v4")
#: What each layer may import from inside the package (besides itself).
ALLOWED = {
    "engine": set(),
    "sandboxkit": {"engine", "reports"},
    "reports": {"engine"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    tree: ast.AST, module: str, is_package: bool, modules: Collection[str]
) -> Iterator[str]:
    """Yield every module of this package imported at run time, function-local ones too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []  # imports for type checkers only never run
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule; other names come from ``pkg``.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name.startswith("uitpas_async"))


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = _imports(tree, module, path.name == "__init__.py", files)
        graph[module] = {target for target in targets if target in files and target != module}
    return graph


GRAPH = _graph()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    """The engine imports no provider; the sandbox kit and the report reader no provider either."""
    wrong = {
        (module, target)
        for module, targets in GRAPH.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) not in ALLOWED[layer] | {layer}
    }
    assert not wrong


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_imports_no_other_provider(provider: str) -> None:
    """Providers are peers: each builds on the engine and the kit, never on another."""
    others = set(PROVIDERS) - {provider}
    wrong = {
        (module, target)
        for module, targets in GRAPH.items()
        if _layer(module) == provider
        for target in targets
        if _layer(target) in others or target == "uitpas_async.errors"
    }
    assert not wrong


def test_there_are_no_import_cycles() -> None:
    """No module reaches itself through imports, counting function-local ones."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles


def test_the_rules_see_real_imports() -> None:
    """The graph is read correctly: the orchestrator's known imports are in it."""
    assert "uitpas_async.engine.journal" in GRAPH["uitpas_async.engine.orchestrator"]
    assert "uitpas_async.engine.transport" in GRAPH["uitpas_async.xml_api.client"]
