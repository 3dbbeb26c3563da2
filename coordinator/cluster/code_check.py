"""A digest of fedzo's Python source: every node of a grid must run the same code.

The process pool imports every task module before it forks, so all of a grid's cells
run one version of the code. Ray workers on other machines import their own copy;
the driver sends its digest with each task, and a worker whose copy differs refuses
the task with a message saying so (rather than silently mixing results of two versions).
"""
import hashlib
from pathlib import Path

# The import names whose folders hold fedzo's source (see [tool.setuptools.package-dir]).
PACKAGES = ("fedzo", "fedzo.edge", "fedzo.coordinator", "fedzo.firmware_sim")


class CodeMismatch(RuntimeError):
    """A worker's fedzo source differs from the driver's."""


def code_digest() -> str:
    """SHA-256 (hex, 16 digits) over the relative paths and bytes of fedzo's .py files."""
    import importlib
    h = hashlib.sha256()
    for name in PACKAGES:
        root = Path(importlib.import_module(name).__file__).parent
        for path in sorted(root.rglob("*.py")):
            if name == "fedzo" and path.parent != root:
                continue        # fedzo/ holds only its own modules; the subpackages are hashed above
            h.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def check_same_code(expected: str, where: str = "this node"):
    """CodeMismatch unless this machine's fedzo source has the digest `expected`."""
    mine = code_digest()
    if mine != expected:
        raise CodeMismatch(f"{where} runs other fedzo code (source digest {mine}, the driver's {expected}); "
                           f"install the same fedzo on every node")
