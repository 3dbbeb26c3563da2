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
from fedzo.edge.protocol.constants import MAX_AGENTS, MAX_ROUND, MAX_VECTOR_ELEMENTS

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
RUN_KEY = "run.key"
RUN_RECORD = "run.json"                     # how the coordinator served the run (coordinator/run/record.py)
RUN_FILES = (CONFIG, METRICS, SUMMARY, CHECKPOINT, RUN_RECORD)   # any of them: the folder holds a run
MAX_THETA_BYTES = 4 * MAX_VECTOR_ELEMENTS   # the largest theta the protocol carries, int32
MAX_TOTALS_BYTES = 64 << 20                 # the checkpoint's work and byte totals (JSON text, UCS-4)
MAX_JSON_BYTES = 16 << 20                   # config.json and summary.json
# The checkpoint's per-agent byte table: a row per agent id, these columns, int64.
BYTE_COLUMNS = tuple((d, field) for d in ("up", "down") for field in ("frame_bytes", "payload_bits", "wire_bytes"))
BYTE_TABLE_COLUMNS = len(BYTE_COLUMNS)


def agent_log_name(k: int) -> str:
    """The log file of agent k's process in a simulation."""
    return f"agent-{k}.log"


class FolderWriteError(OSError):
    """A file of the run folder could not be written (a full disk, say); names the file."""


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:                  # the old file stays whole; the temporary goes
        tmp.unlink(missing_ok=True)
        raise FolderWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc


def holds_run(path) -> bool:
    """Whether the folder at path holds (part of) a run."""
    return any((Path(path) / name).exists() for name in RUN_FILES)


class RunFolder:
    """One run's files."""

    def __init__(self, path, create=True):
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise FileNotFoundError(f"no run folder at {self.path}")

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
        path = self.path / METRICS
        try:
            with open(path, "a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:              # a torn last line is cut on --resume
            raise FolderWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc

    def metrics(self, torn=None) -> list:
        """metrics.jsonl's records. A last line that is not whole JSON (a crash or a full disk
        cut it) is left out, and torn(text) is told; a bad line before it is a ValueError
        naming the file and the line."""
        path = self.path / METRICS
        if not path.exists():
            return []
        with open(path, errors="replace") as f:
            lines = f.read().split("\n")
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("round"), int):
                    raise ValueError("not a round's record")
            except ValueError as exc:
                if any(rest.strip() for rest in lines[number:]):
                    raise ValueError(f"{path}: line {number} is damaged ({exc})") from None
                if torn is not None:
                    torn(line)
                break
            out.append(record)
        return out

    def truncate_metrics(self, before_round: int, log=print) -> None:
        """Keep only rounds < before_round (lines a crash left past the checkpoint go, and a
        torn last line is cut and logged)."""
        path = self.path / METRICS
        kept = [m for m in self.metrics(torn=lambda line: log(
            f"{path}: cut a torn last line ({len(line)} characters) left by an interrupted write"))
            if m["round"] < before_round]
        text = "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept).encode()
        _atomic_write(path, lambda f: f.write(text))

    def save_checkpoint(self, values: np.ndarray, frac_bits: int, next_round: int, totals: dict,
                        agent_bytes: np.ndarray | None = None) -> None:
        """Write theta, its scale, the next round, the work totals and the per-agent byte
        table (BYTE_COLUMNS) atomically."""
        table = np.zeros((0, BYTE_TABLE_COLUMNS), np.int64) if agent_bytes is None else agent_bytes
        def write(f):
            np.savez(f, values=values, frac_bits=frac_bits, next_round=next_round,
                     totals=json.dumps(totals, sort_keys=True), agent_bytes=table)
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
            if "agent_bytes" in f:
                table = f.get("agent_bytes", 8 * BYTE_TABLE_COLUMNS * (MAX_AGENTS + 1))
                if table.ndim != 2 or table.shape[1] != BYTE_TABLE_COLUMNS or table.dtype != np.int64:
                    raise f.error("agent_bytes", f"must be an int64 table of {BYTE_TABLE_COLUMNS} columns, "
                                                 f"got {table.dtype} {table.shape}")
            else:
                table = _byte_table_from_json(totals.get("agent_bytes"), f)
        return {"values": values, "frac_bits": frac_bits, "next_round": next_round, "totals": totals,
                "agent_bytes": table}


def _byte_table_from_json(entries, f) -> np.ndarray:
    """The byte table of a checkpoint written before it was an array: the totals' JSON
    "agent_bytes" ({agent id: {"up": {...}, "down": {...}}}), or none at all."""
    if not entries:
        return np.zeros((0, BYTE_TABLE_COLUMNS), np.int64)
    try:
        rows = len(entries)
        table = np.zeros((rows, BYTE_TABLE_COLUMNS), np.int64)
        for agent in range(rows):
            entry = entries[str(agent)]
            table[agent] = [entry[d].get(field, 0) for d, field in BYTE_COLUMNS]
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise f.error("totals", f"has an unreadable agent_bytes entry: {exc!r}") from None
    return table
