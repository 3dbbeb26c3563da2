"""Run code in a fresh interpreter, away from what other tests left behind.

tracemalloc's peak counts every allocation in the process, so a measurement
taken inside a long pytest session can pick up work that is not the code
under test (caches, lazy imports, other tests' leftovers). A fresh Python
with the tests folder on its path has none of that. A result that must not
depend on the process (a replica's bits) is compared across such
interpreters, with another hash seed or kernel backend each.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def in_fresh_interpreter(code: str, timeout=120, env=None) -> dict:
    """Run `code` in a fresh Python with the tests folder on its path; returns what it
    left in a dict called `report` (JSON-able values only). `env` adds environment
    variables (e.g. FEDZO_KERNEL, PYTHONHASHSEED) for that interpreter."""
    script = "\n".join([
        "import json, sys",
        f"sys.path.insert(0, {str(TESTS)!r})",
        "report = {}",
        code,
        "print(json.dumps(report))",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"the fresh interpreter failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_allocation(setup: str, measured: str, timeout=120, env=None) -> dict:
    """Run `setup`, then `measured` under tracemalloc, in a fresh interpreter; returns the
    peak bytes `measured` allocated beyond what was live before it, with what the code
    left in `report` (see in_fresh_interpreter)."""
    return in_fresh_interpreter("\n".join([
        "import tracemalloc",
        setup,
        "tracemalloc.start()",
        "tracemalloc.reset_peak()",
        "_before = tracemalloc.get_traced_memory()[0]",
        measured,
        "report['peak'] = tracemalloc.get_traced_memory()[1] - _before",
        "tracemalloc.stop()",
    ]), timeout, env)
