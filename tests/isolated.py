"""Run a measurement in a fresh interpreter, away from what other tests left behind.

tracemalloc's peak counts every allocation in the process, so a measurement
taken inside a long pytest session can pick up work that is not the code
under test (caches, lazy imports, other tests' leftovers). A fresh Python
with the tests folder on its path has none of that.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def peak_allocation(setup: str, measured: str, timeout=120, env=None) -> dict:
    """Run `setup`, then `measured` under tracemalloc; returns the peak bytes it
    allocated beyond what was live before it, and the names `measured` left in
    a dict called `report` (JSON-able values only). `env` adds environment
    variables (e.g. FEDZO_KERNEL) for the fresh interpreter."""
    script = "\n".join([
        "import json, sys, tracemalloc",
        f"sys.path.insert(0, {str(TESTS)!r})",
        "report = {}",
        setup,
        "tracemalloc.start()",
        "tracemalloc.reset_peak()",
        "_before = tracemalloc.get_traced_memory()[0]",
        measured,
        "report['peak'] = tracemalloc.get_traced_memory()[1] - _before",
        "tracemalloc.stop()",
        "print(json.dumps(report))",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"the isolated measurement failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
