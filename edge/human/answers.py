"""The person's answers, one JSON line each, appended as they come.

A line: {"agent", "round", "comparison", "candidate": "left"|"right" (where
the candidate was shown), "answer": "left"|"right"|"tie", "outcome": +1|-1|0
(for the candidate), "seconds" (how long the person looked)}. That is all a
replay needs to answer the same comparisons the same way (replay.py); it
holds no return and nothing of the clips.
"""
import json
import os
import threading

MAX_LINE_BYTES = 4096       # a line is under 200 bytes; anything longer is not ours


def outcome(answer: str, candidate_side: str) -> int:
    """+1 if the person preferred the candidate, -1 the baseline, 0 if they could not tell."""
    if answer == "tie":
        return 0
    return 1 if answer == candidate_side else -1


class AnswerLog:
    """Appends answer lines to a file, flushed and synced one by one (a crash loses none)."""

    def __init__(self, path):
        self.path = str(path)
        self._lock = threading.Lock()     # agents of one simulation share the file

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read_answers(path) -> list:
    """Every record of an answers file, in order; ValueError naming the line if one is bad."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                raise ValueError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
            try:
                record = json.loads(line)
                key = (int(record["agent"]), int(record["round"]), int(record["comparison"]))
                if record["candidate"] not in ("left", "right") or record["outcome"] not in (-1, 0, 1):
                    raise ValueError("candidate or outcome out of range")
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not an answer line ({exc})") from None
            records.append((key, record))
    return records
