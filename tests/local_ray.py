"""Ray for the cluster tests: imported or the test skips (with the reason), and results compared.

Ray is an optional extra (`make test` installs it); without it these tests skip and say why.
"""
import json
from pathlib import Path

import pytest

# What differs between two runs of the same seed on other processes: time, and the memory of
# the process the agents lived in (a Ray worker carries Ray's own libraries).
TIMING = {"wall_seconds", "cpu_seconds", "elapsed_s"}
PROCESS = {"peak_rss_bytes", "floor_rss_bytes", "transport"}


def import_ray():
    """The ray module, or skip the calling module saying why."""
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'fedzo[ray]'; make test does)")


def start_local_ray(num_cpus=2):
    """A local Ray of `num_cpus` CPUs in this process, or skip if it cannot start here."""
    ray = import_ray()
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    except Exception as exc:      # e.g. no shared memory for the object store on this machine
        pytest.skip(f"a local Ray does not start here: {type(exc).__name__}: {exc}")
    return ray


def results(summary: dict) -> dict:
    """A summary without its timings and per-process memory: what must match between links."""
    out = {k: v for k, v in summary.items() if k not in TIMING and k != "per_agent"}
    out["per_agent"] = [{k: v for k, v in agent.items() if k not in PROCESS} for agent in summary["per_agent"]]
    return out


def cell_results(folder: Path) -> dict:
    """{cell folder: (summary results, metrics lines without their times)} of a grid's output."""
    out = {}
    for path in sorted(Path(folder).rglob("summary.json")):
        metrics = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                   for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
        out[path.parent.relative_to(folder).as_posix()] = (results(json.loads(path.read_text())), metrics)
    return out
