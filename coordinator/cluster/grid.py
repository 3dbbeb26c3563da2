"""`fedzo experiment CONFIG --out DIR --ray [ADDRESS]`: a grid's cells as Ray tasks.

Each cell not yet done (no summary.json in DIR) becomes one task asking for
CPUS_PER_CELL CPUs. The driver sends the task the cell's folder as it stands (so a
cell stopped part-way resumes from its checkpoint, as in the process pool); the task
runs the cell with the pool's own `run_cell` in a temporary folder on its node and
returns every file of it as bytes; the driver writes them into DIR. So results land
on the launching machine whatever node ran the cell, and a cell's numbers are the
pool's (same code, same in-process link, same seed).

Cells are submitted in the pool's order (first seed first), no more at a time than
the cluster has CPUs for (re-read as cells finish: a node that joins mid-grid gets
work), so the driver knows which are running and a grid stopped part-way has every
series at the same number of seeds. A failing cell (its exception, or its worker or
node lost) is reported and the others go on; ExperimentFailed at the end lists them.
compute.jsonl gets this session's line after every cell, as with the pool.
"""
import json
import socket
import tempfile
import time
from pathlib import Path

from fedzo.coordinator.analysis.experiment import (
    COMPUTE_FILE,
    EXPERIMENT_FILE,
    ExperimentFailed,
    _ComputeRecord,
    cells,
    run_cell,
    seed_major,
)
from fedzo.coordinator.cluster.cell_files import read_folder, write_folder
from fedzo.coordinator.cluster.code_check import check_same_code, code_digest
from fedzo.coordinator.cluster.connect import cluster_cpus, ray_session
from fedzo.coordinator.cluster.progress import GridProgress
from fedzo.coordinator.run.folder import SUMMARY

# run_cell steps a cell's agents on one thread (workers=1), as the pool does.
CPUS_PER_CELL = 1


def cell_task(cell: dict, files: dict, digest: str) -> dict:
    """Run one cell on a Ray worker, in a temporary folder seeded with `files`.

    Returns the folder's files as bytes with the outcome; never raises for the cell's own
    failure (its error text is returned, with whatever files it left, as the pool keeps them).
    """
    started = time.monotonic()
    node = _node_name()
    summary, ran, error, out = None, True, None, {}
    with tempfile.TemporaryDirectory(prefix="fedzo-cell-") as tmp:
        folder = Path(tmp) / cell["folder"]
        try:
            check_same_code(digest, where=f"node {node}")
            write_folder(folder, files)
            summary, ran = run_cell(tmp, cell)
        except Exception as exc:   # a failing cell is reported, not raised: the grid goes on
            error = f"{type(exc).__name__}: {exc}"
        out = read_folder(folder)
    return {"folder": cell["folder"], "summary": summary, "ran": ran, "error": error, "files": out,
            "seconds": time.monotonic() - started, "node": node}


def _node_name() -> str:
    """Host name and the start of the Ray node id: where a cell ran."""
    node_id = "-"                 # outside Ray (called directly)
    try:
        import ray
        if ray.is_initialized():      # (asking for the context otherwise starts a Ray)
            node_id = ray.get_runtime_context().get_node_id()[:8]
    except ImportError:
        pass
    return f"{socket.gethostname()}/{node_id}"


def run_experiment_ray(spec: dict, out_dir, address=None, workers=None, log=print) -> list:
    """Run every cell not yet done as a Ray task; returns (folder, summary) pairs, skipped cells first.

    `address`: a Ray cluster's address, or None to start a local Ray with `workers` CPUs (default:
    this machine's). `workers` also caps the cells that run at once (default: the cluster's CPUs).
    Raises ExperimentFailed after all cells ran if any of them failed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / EXPERIMENT_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    every = seed_major(cells(spec))
    results, todo = [], []
    for cell in every:
        summary_path = out_dir / cell["folder"] / SUMMARY
        if summary_path.exists():
            results.append((cell["folder"], json.loads(summary_path.read_text())))
        else:
            todo.append(cell)
    progress = GridProgress(len(every), done_before=len(results))
    failures = []
    with ray_session(address, num_cpus=workers, log=log) as ray:
        cores = cluster_cpus(ray)
        log(f"experiment: {len(every)} runs in {out_dir} ({len(results)} done before), on Ray with "
            f"{cores} CPUs, {CPUS_PER_CELL} per run")
        session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "workers": workers or cores, "cores": cores,
                   "ray": address or "local", "cells_run": 0, "cpu_seconds": 0.0}
        compute = _ComputeRecord(out_dir / COMPUTE_FILE)
        started = time.monotonic()
        task = ray.remote(num_cpus=CPUS_PER_CELL)(cell_task)
        digest = code_digest()
        pending = {}            # ObjectRef -> cell
        queue = list(todo)
        try:
            while queue or pending:
                slots = workers or cluster_cpus(ray) // CPUS_PER_CELL or 1
                while queue and len(pending) < slots:
                    cell = queue.pop(0)
                    pending[task.remote(cell, read_folder(out_dir / cell["folder"]), digest)] = cell
                    progress.started()
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                result = _outcome(ray, ref, pending.pop(ref))
                write_folder(out_dir / result["folder"], result["files"])
                progress.finished(result["seconds"], ok=result["error"] is None, ran=result["ran"])
                position = f"[{progress.done + progress.failed}/{len(every)}] {result['folder']}"
                if result["error"]:
                    log(f"{position}: FAILED on {result['node']}: {result['error']} ({progress.line(slots)})")
                    failures.append(f"{result['folder']}: {result['error']}")
                    continue
                summary = result["summary"]
                log(f"{position}: return {summary['return_initial']:.1f} -> {summary['return_final']:.1f} "
                    f"({result['seconds']:.0f} s on {result['node']}; {progress.line(slots)})")
                results.append((result["folder"], summary))
                if result["ran"]:
                    session["cells_run"] += 1
                    session["cpu_seconds"] = round(session["cpu_seconds"] + summary["cpu_seconds"], 2)
                    session["wall_seconds"] = round(time.monotonic() - started, 1)
                    session["workers"] = slots
                    compute.write(session)   # after every cell: a grid stopped part-way keeps its record
        finally:
            for ref in pending:       # interrupted: the cells in flight stop (each resumes from its folder)
                ray.cancel(ref, force=True)
    if failures:
        raise ExperimentFailed(f"{len(failures)} of {len(every)} runs failed:\n" + "\n".join(failures))
    return results


def _outcome(ray, ref, cell) -> dict:
    """The task's result, or a failure saying what Ray reported (a worker or node lost)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return {"folder": cell["folder"], "summary": None, "ran": True, "files": {}, "seconds": 0.0,
                "node": "?", "error": f"{type(exc).__name__}: {first}"}

