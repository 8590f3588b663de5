"""The package's shape: layers that import downwards only (docs/layout.md draws them)."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "acai"

# Each layer and the layers below it that it may import; the files at the bottom are shared.
LAYERS = {
    "bottom": (),
    "core": ("bottom",),
    "training": ("bottom", "core"),
    "pegasi": ("bottom", "core", "training"),
    "bench": ("bottom", "core", "training"),
    "cli": ("bottom", "core", "training", "pegasi", "bench"),
}
BOTTOM = {"errors", "files", "images", "native_logs"}


def layer_of(module: str) -> str:
    """'acai.training.run' -> 'training'; 'acai.errors' -> 'bottom'; 'acai.cli' -> 'cli'."""
    parts = module.split(".")
    if module == "acai":  # the face: it loads Config and the errors, the rest on first use
        return "core"
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return parts[1]
    return "bottom" if parts[1] in BOTTOM else parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def acai_imports(path: Path) -> set[str]:
    """The acai modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "acai":
                continue
            subpackage = (
                node.module == "acai"
                or node.module.count(".") == 1
                and (node.module.split(".")[1] in LAYERS)
            )
            if subpackage:  # from acai.training import run: the module acai.training.run
                found |= {f"{node.module}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("acai.")}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name if name in modules else name.rsplit(".", 1)[0] for name in found}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if p.stem != "__init__"}


def test_every_module_sits_in_a_layer():
    assert {layer_of(m) for m in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_only(module):
    layer = layer_of(module)
    allowed = {layer, *LAYERS[layer]}
    upward = {other for other in acai_imports(MODULES[module]) if layer_of(other) not in allowed}
    assert upward == set(), f"{module} ({layer}) imports {upward}"


def test_no_modules_import_each_other_in_a_circle():
    graph = {m: acai_imports(path) & set(MODULES) for m, path in MODULES.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        pytest.fail(f"modules import each other in a circle: {e.args[1]}")


def test_the_paper_math_needs_no_network():
    """The losses and the walks are pure functions of tensors: from Keras they take `ops` only,
    and of acai the walks only."""
    for name in ("losses", "walks"):
        tree = ast.parse((PACKAGE / "core" / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        allowed = {"__future__.annotations", "keras.ops", "numpy", "tensorflow"}
        assert {
            m for m in imported if not m.startswith(("acai.core.walks.", "acai.core.config."))
        } <= allowed, imported
