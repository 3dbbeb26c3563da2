"""The page's JSON, without I/O: a comparison going out, an answer coming in.

A comparison carries what the page draws and shows: which agent, round and
comparison, how many wait, how long the round can still wait, the scene and
both sides' clips (float32 poses, little-endian, base64). It never carries a
return or which side is the candidate.
"""
import base64
import json

import numpy as np

MAX_ANSWER_BYTES = 1024     # {"id": ..., "answer": ...} is under 50 bytes


class BadRequest(ValueError):
    """A request body the page would never send."""


def clip_json(clip) -> dict:
    poses = np.ascontiguousarray(clip.poses, dtype="<f4")
    return {"frames": int(poses.shape[0]), "geoms": int(poses.shape[1]),
            "poses": base64.b64encode(poses.tobytes()).decode("ascii")}


def comparison_json(ask, waiting: int, now: float) -> dict:
    """The page's view of an open comparison (`ask`, a desk.Ask)."""
    left_time = None if ask.deadline is None else max(0.0, round(ask.deadline - now, 1))
    return {"id": ask.id, "agent": ask.where.agent, "round": ask.where.round,
            "comparison": ask.where.comparison, "waiting": waiting, "seconds_left": left_time,
            "scene": ask.scene, "left": [clip_json(c) for c in ask.left],
            "right": [clip_json(c) for c in ask.right]}


def next_json(ask, waiting: int, answered: int, now: float) -> bytes:
    """The body of GET /api/next: the oldest open comparison (or null) and the counts."""
    body = {"waiting": waiting, "answered": answered,
            "comparison": None if ask is None else comparison_json(ask, waiting, now)}
    return json.dumps(body, separators=(",", ":")).encode()


def parse_answer(body: bytes) -> tuple:
    """(comparison id, answer) from a POST /api/answer body; BadRequest saying what is wrong."""
    if len(body) > MAX_ANSWER_BYTES:
        raise BadRequest(f"an answer is at most {MAX_ANSWER_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:     # UnicodeDecodeError is a ValueError
        raise BadRequest(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"id", "answer"}:
        raise BadRequest('an answer is a JSON object {"id": <comparison id>, "answer": "left"|"right"|"tie"}')
    if not isinstance(data["id"], int) or isinstance(data["id"], bool):
        raise BadRequest(f"id must be a whole number, got {data['id']!r}")
    return data["id"], data["answer"]
