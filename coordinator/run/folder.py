"""The run folder (DESIGN.md §7, §10): config.json, metrics.jsonl, summary.json, checkpoint.npz,
the run key and, in a simulation, each agent process's log.

Writes are atomic (a temporary file, then os.replace), so a coordinator
killed at any moment leaves either the old or the new file, never half of one.
"""
import json
import os
from pathlib import Path

import numpy as np

from fedzo.edge.learning.saved_arrays import SavedArrays
from fedzo.edge.protocol.constants import MAX_ROUND, MAX_VECTOR_ELEMENTS

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
RUN_KEY = "run.key"
MAX_THETA_BYTES = 4 * MAX_VECTOR_ELEMENTS   # the largest theta the protocol carries, int32
MAX_TOTALS_BYTES = 64 << 20                 # the checkpoint's work and byte totals (JSON text, UCS-4)
MAX_JSON_BYTES = 16 << 20                   # config.json and summary.json


def agent_log_name(k: int) -> str:
    """The log file of agent k's process in a simulation."""
    return f"agent-{k}.log"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunFolder:
    """One run's files."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data) -> None:
        text = json.dumps(data, indent=2, sort_keys=True).encode()
        _atomic_write(self.path / name, lambda f: f.write(text))

    def read_json(self, name: str):
        """A JSON file of the run folder; ValueError naming the file if it is damaged or huge."""
        path = self.path / name
        with open(path, "rb") as f:
            text = f.read(MAX_JSON_BYTES + 1)
        if len(text) > MAX_JSON_BYTES:
            raise ValueError(f"{path}: larger than {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(text)
        except RecursionError:
            raise ValueError(f"{path}: JSON nested too deeply") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None

    def append_metrics(self, record: dict) -> None:
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def metrics(self) -> list:
        path = self.path / METRICS
        if not path.exists():
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_metrics(self, before_round: int) -> None:
        """Keep only rounds < before_round (lines a crash left past the checkpoint go)."""
        kept = [m for m in self.metrics() if m["round"] < before_round]
        text = "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept).encode()
        _atomic_write(self.path / METRICS, lambda f: f.write(text))

    def save_checkpoint(self, values: np.ndarray, frac_bits: int, next_round: int, totals: dict) -> None:
        def write(f):
            np.savez(f, values=values, frac_bits=frac_bits, next_round=next_round,
                     totals=json.dumps(totals, sort_keys=True))
        _atomic_write(self.path / CHECKPOINT, write)

    def load_checkpoint(self, d: int | None = None) -> dict:
        """The last checkpoint; a one-line ValueError naming the file and the field if there
        is none or it is damaged (sizes are checked before anything large is read).

        d: the run's parameter count, if known; a checkpoint of another size is refused.
        """
        path = self.path / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from at {path}")
        with SavedArrays(path, "readable fedzo checkpoint") as f:
            values = f.get("values", MAX_THETA_BYTES if d is None else 4 * d)   # int32 at most
            if values.ndim != 1 or values.dtype not in (np.int16, np.int32):
                raise f.error("values", f"must be a vector of int16 or int32, got {values.dtype} {values.shape}")
            if d is not None and values.size != d:
                raise f.error("values", f"holds {values.size} parameters, this run's actor has {d}")
            frac_bits = f.integer("frac_bits", 0, 8 * values.itemsize - 1)
            next_round = f.integer("next_round", 0, MAX_ROUND)
            try:
                totals = json.loads(f.text("totals", MAX_TOTALS_BYTES))
            except (ValueError, RecursionError) as exc:
                raise f.error("totals", f"is not valid JSON: {exc}") from None
            if not isinstance(totals, dict):
                raise f.error("totals", "must be a JSON object")
        return {"values": values, "frac_bits": frac_bits, "next_round": next_round, "totals": totals}
