"""The page's JSON, without I/O: a comparison going out, an answer coming in.

A comparison carries what the page draws and shows: which agent, round and
comparison, the scene and both sides' clips (float32 poses, little-endian,
base64); it is encoded once and sent once to a page (a page that has it
says so and gets only the counts). Beside it go how many comparisons wait
and how long the round can still wait. It never carries a return or which
side is the candidate.
"""
import base64
import json

import numpy as np

MAX_ANSWER_BYTES = 1024     # {"id": ..., "answer": ...} is under 50 bytes


class BadRequest(ValueError):
    """A request body the page would never send."""


def clip_json(clip) -> bytes:
    """One clip as JSON: {"frames", "geoms", "poses": base64 of the float32 poses, little-endian}."""
    poses = np.ascontiguousarray(clip.poses, dtype="<f4")
    return (b'{"frames":%d,"geoms":%d,"poses":"' % poses.shape[:2]
            + base64.b64encode(poses.data) + b'"}')


def comparison_json(ask) -> bytes:
    """The page's view of one comparison (`ask`, a desk.Ask): what never changes, encoded once.

    Built as bytes around the clips' base64, so a board holds one copy of it, not three."""
    if ask.encoded is None:
        head = json.dumps({"id": ask.id, "agent": ask.where.agent, "round": ask.where.round,
                           "comparison": ask.where.comparison, "scene": ask.scene},
                          separators=(",", ":")).encode()
        ask.encoded = b"".join([head[:-1], b',"left":[', b",".join(clip_json(c) for c in ask.left),
                                b'],"right":[', b",".join(clip_json(c) for c in ask.right), b"]}"])
    return ask.encoded


def next_json(ask, waiting: int, answered: int, now: float, have=None) -> bytes:
    """The body of GET /api/next: the counts, the oldest open comparison's id and how long its round
    can wait, and the comparison itself unless the page already has it (`have`, its id)."""
    left_time = None if ask is None or ask.deadline is None else max(0.0, round(ask.deadline - now, 1))
    head = json.dumps({"waiting": waiting, "answered": answered, "id": None if ask is None else ask.id,
                       "seconds_left": left_time}, separators=(",", ":")).encode()
    body = b"null" if ask is None or ask.id == have else comparison_json(ask)
    return head[:-1] + b',"comparison":' + body + b"}"


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
