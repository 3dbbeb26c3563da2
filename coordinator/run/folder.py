"""The run folder (DESIGN.md §7, §10): config.json, metrics.jsonl, summary.json, checkpoint.npz,
the run key and, in a simulation, each agent process's log.

Writes are atomic (a temporary file, then os.replace), so a coordinator
killed at any moment leaves either the old or the new file, never half of one.
"""
import json
import os
from pathlib import Path

import numpy as np

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
RUN_KEY = "run.key"


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
        with open(self.path / name) as f:
            return json.load(f)

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

    def load_checkpoint(self) -> dict:
        """The last checkpoint; a clear error if there is none or it is damaged."""
        path = self.path / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from at {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                return {"values": f["values"], "frac_bits": int(f["frac_bits"]),
                        "next_round": int(f["next_round"]), "totals": json.loads(str(f["totals"]))}
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path} is not a readable fedzo checkpoint: {exc}") from exc
