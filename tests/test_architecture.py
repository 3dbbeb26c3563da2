"""The import rules of docs/ARCHITECTURE.md, checked on the source and in a fresh interpreter."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set:
    """Every absolute module name a Python file imports (at any depth, lazily or not)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_edge_side_never_imports_the_coordinator_or_the_board_simulation():
    offenders = {}
    for path in sorted((ROOT / "edge").rglob("*.py")):
        bad = {m for m in imported_modules(path)
               if m.startswith(("fedzo.coordinator", "fedzo.firmware_sim", "coordinator", "firmware_sim"))}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_every_module_imports_through_the_one_namespace():
    old_names = ("edge", "coordinator", "firmware_sim")
    offenders = {}
    for folder in ("fedzo", "edge", "coordinator", "firmware_sim", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            bad = {m for m in imported_modules(path) if m.split(".")[0] in old_names}
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def _loaded_after(statement: str) -> list:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_protocol_does_not_load_the_kernel_or_the_simulator():
    loaded = _loaded_after("import fedzo.edge.protocol")
    assert not [m for m in loaded if m.startswith(("fedzo.edge.kernel", "mujoco", "fedzo.coordinator"))]


def test_the_agent_command_does_not_load_the_coordinator():
    loaded = _loaded_after("from fedzo.cli import build_parser; build_parser('agent')")
    assert "fedzo.edge.commands.agent" in loaded
    assert not [m for m in loaded if m.startswith(("fedzo.coordinator", "fedzo.firmware_sim"))]
