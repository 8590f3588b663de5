"""The package's shape: data flows one way, and no module grows past a screenful of screens."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "acai"

# Each module may import only modules before it (docs/layout.md draws the same flow).
FLOW = (
    "errors",
    "native_logs",
    "config",
    "files",
    "images",
    "metrics",
    "lines",
    "data",
    "classifier",
    "features",
    "networks",
    "losses",
    "model",
    "devices",
    "run",
    "callbacks",
    "loop",
    "trainer",
    "judge",
    "realism",
    "diagrams",
    "report",
    "pegasus",
    "export",
    "evaluate",
    "bench",
    "studio",
    "demo",
    "cli",
)
MAX_LINES = 450


def acai_imports(path: Path) -> set[str]:
    """The acai modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "acai":
                found |= {a.name for a in node.names if a.name in FLOW}
            elif node.module.startswith("acai."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("acai.")}
    return found


def test_every_module_is_in_the_flow():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(FLOW)


def test_no_import_runs_back_up_the_flow():
    upward = [
        f"{name} imports {other}"
        for name in FLOW
        for other in acai_imports(PACKAGE / f"{name}.py")
        if other in FLOW and FLOW.index(other) >= FLOW.index(name)
    ]
    assert upward == []


def test_no_module_is_over_450_lines():
    long = {
        p.name: n
        for p in PACKAGE.glob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


# Drawing code and argument declarations read best in one piece.
LONG_ALLOWED = {("cli", "make_parser"), ("diagrams", "_graph"), ("diagrams", "_figure")}
MAX_FUNCTION_LINES = 80


def test_no_function_is_over_80_lines():
    long = {
        (path.stem, node.name): node.end_lineno - node.lineno + 1
        for path in PACKAGE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert set(long) <= LONG_ALLOWED, long
