"""Authenticated-but-malformed messages for the fuzzing tests: a seeded generator.

`malformed(rng, kind, d, round_, digest)` builds one message of class `kind`
whose fields are valid on the wire (the constructors accept them) but wrong
for a running round: rounds one off or anywhere, vector totals of d +- 1 or
anything, chunks that do not start at 0 or do not continue, models of NaN,
infinity or 3e38, hashes of another theta, any error or bye code, reports of
huge numbers. Same seed, same messages.
"""
import numpy as np

from fedzo.edge.protocol import (
    Bye,
    Capabilities,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Join,
    ModelDownload,
    ModelUpload,
    Refusal,
    Report,
    RoundResult,
    RoundResultNext,
    RoundStart,
    Sync,
    Vote,
    Welcome,
)
from fedzo.edge.protocol.constants import MAX_ROUND

AGENT_KINDS = (Vote, ModelUpload, Error, Report, Hello, Bye)
COORDINATOR_KINDS = (Challenge, Welcome, RoundStart, RoundResult, RoundResultNext, Sync, ModelDownload, Refusal)
EVERY_KIND = (Join,) + AGENT_KINDS + COORDINATOR_KINDS


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _round(rng, round_):
    return int(_pick(rng, [round_, round_ + 1, max(round_ - 1, 0), int(rng.integers(0, MAX_ROUND))]))


def _hash(rng, digest):
    return _pick(rng, [digest, bytes(rng.integers(0, 256, 8, dtype=np.uint8))])


def _floats(rng, n):
    value = _pick(rng, [np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, 1e-3])
    return np.full(n, value, "<f4").tobytes() if rng.random() < 0.8 else rng.bytes(4 * n)


def _chunk(rng, d, itemsize):
    """(total, offset, n) with offset + n <= total, as the wire requires."""
    total = int(_pick(rng, [d, d + 1, max(d - 1, 1), int(rng.integers(1, 2 * d + 2))]))
    n = int(min(total, _pick(rng, [1, 16, 1024 // itemsize])))
    offset = int(_pick(rng, [0, 0, 1, total - n]))
    return total, offset, n


def malformed(rng, kind, d: int, round_: int, digest: bytes):
    """One message of class `kind`, wire-valid but wrong for the run (see the module docstring)."""
    r = _round(rng, round_)
    if kind in (Hello, Challenge):   # a new handshake in the middle of a session
        return kind()
    if kind is Join:
        return Join(int(_pick(rng, [0, 1, 2**32 - 2, 0xFFFFFFFF])), Capabilities(),
                    *(_pick(rng, [(None, None), (r, _hash(rng, digest))])))
    if kind is Vote:
        return Vote(r, int(rng.integers(-1, 2)), _hash(rng, digest))
    if kind in (ModelUpload, ModelDownload):
        total, offset, n = _chunk(rng, d, 4)
        return kind(r, total, offset, _floats(rng, n))
    if kind is Sync:
        total, offset, n = _chunk(rng, d, 2)
        return Sync(r, total, offset, "int16", int(rng.integers(0, 16)), _hash(rng, digest), rng.bytes(2 * n))
    if kind is Error:
        return Error(int(_pick(rng, [ErrorCode.DIVERGED, ErrorCode.BAD_MESSAGE, int(rng.integers(0, 65536))])),
                     "fuzz")
    if kind is Bye:
        return Bye(int(rng.integers(0, 65536)), "fuzz")
    if kind is Report:
        return Report(r, *(int(x) for x in rng.integers(0, 2**63, len(Report.COUNTS), dtype=np.uint64)))
    if kind is RoundStart:
        return RoundStart(r)
    if kind in (RoundResult, RoundResultNext):     # the merged one needs a round after it
        return kind(min(r, MAX_ROUND - 1), tuple(int(v) for v in rng.integers(-1, 2, int(rng.integers(1, 9)))),
                    _hash(rng, digest))
    if kind is Welcome:
        return Welcome(0, 0, 2, d, 7, r, _hash(rng, digest), "{}", bytes(32))   # key share (protocol 2)
    if kind is Refusal:
        return Refusal(int(_pick(rng, [ErrorCode.AUTH_FAILED, ErrorCode.BAD_VERSION, int(rng.integers(0, 65536))])),
                       rng.bytes(16))
    raise TypeError(f"no fuzzing rule for {kind}")
