"""Byte and message accounting of one link, per direction and per round.

Directions: "up" is agent -> coordinator, "down" is coordinator -> agent. Both
ends of a link keep their own LinkCounters and, on a clean link, agree.

Per direction (in total and for every round with traffic):

- messages: messages sent (on the sending side) or accepted (on the
  receiving side).
- frame_bytes: every byte those messages occupy on the link as fedzo writes
  it: transport framing (TCP: the 4-byte length prefix; serial: the ARQ
  header if any, the 4-byte CRC, the COBS overhead and the 0x00 delimiter)
  + the 7-byte header + the body + the 16-byte tag. TCP/IP, Ethernet or UART
  start/stop bits are not included; they are reported separately.
- payload_bits: 8 x the body length of those messages, i.e. the message
  fields of the table in edge/protocol/__init__.py only, without header, tag
  or any framing. (A vote body is 13 bytes = 104 bits: round, vote, hash.)
- other_bytes: link bytes that are not part of a counted message: on the
  sending side, retransmissions and ARQ acknowledgements; on the receiving
  side, rejected frames, duplicates, acknowledgements and garbage.
  frame_bytes + other_bytes is what a capture of the link shows.

Round attribution: a message that carries a round number counts for that
round; any other (Join, Error, Bye, ...) and any other_bytes count for the
most recent round seen on this link (0 before any).

Rejections (`rejected`) are counted by reason (see errors.REJECTION_REASONS),
on the receiving side only.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .auth import DIRECTIONS
from .errors import REJECTION_REASONS


@dataclass
class DirectionStats:
    """Counts of one direction (in total or for one round)."""

    messages: int = 0
    frame_bytes: int = 0
    payload_bits: int = 0
    other_bytes: int = 0

    @property
    def wire_bytes(self) -> int:
        """All bytes seen on the link in this direction."""
        return self.frame_bytes + self.other_bytes

    def add(self, other: DirectionStats) -> None:
        """Add another set of counts to this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready), wire_bytes included."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["wire_bytes"] = self.wire_bytes
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DirectionStats:
        """Inverse of to_dict (wire_bytes is derived and ignored)."""
        return cls(**{f.name: int(d[f.name]) for f in fields(cls)})


def _pair() -> dict[str, DirectionStats]:
    return {direction: DirectionStats() for direction in DIRECTIONS}


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")


class Tally:
    """Running sums over many links: per key (an agent) and per round, both directions.

    A coordinator with a thousand agents needs each round's bytes and each agent's
    totals after every round; summing every link's counters for that was O(links)
    of Python per round (issue 13). Links attached here (LinkCounters.attach) add
    each count as they make it, so reading a round or an agent is O(1).
    """

    def __init__(self):
        self.keys: dict = {}                                  # key -> {"up": stats, "down": stats}
        self.rounds: dict[int, dict[str, DirectionStats]] = {}

    def _add(self, key, round_number: int, direction: str, messages: int, frame: int, payload: int,
             other: int) -> None:
        pair = self.keys.get(key)
        if pair is None:
            pair = self.keys[key] = _pair()
        per_round = self.rounds.get(round_number)
        if per_round is None:
            per_round = self.rounds[round_number] = _pair()
        for stats in (pair[direction], per_round[direction]):
            stats.messages += messages
            stats.frame_bytes += frame
            stats.payload_bits += payload
            stats.other_bytes += other

    def round_stats(self, round_number: int) -> dict[str, DirectionStats]:
        """The counts of one round over every attached link (zeros if none)."""
        return self.rounds.get(round_number) or _pair()

    def key_stats(self, key) -> dict[str, DirectionStats]:
        """One key's counts over its attached links, whole life (zeros if none)."""
        return self.keys.get(key) or _pair()

    def forget_rounds_before(self, round_number: int) -> None:
        """Drop the per-round sums of rounds before `round_number` (a long run's memory)."""
        for r in [r for r in self.rounds if r < round_number]:
            del self.rounds[r]


class LinkCounters:
    """Messages, bytes and rejections of one link, per direction and round."""

    def __init__(self, name: str = ""):
        self.name = name
        self.tally: Tally | None = None     # running sums this link also adds to (attach)
        self.tally_key = None
        self.keep_rounds: int | None = None  # per-round counts kept (None: every round's)
        self.total = _pair()
        self.rounds: dict[int, dict[str, DirectionStats]] = {}
        self.by_type: dict[str, dict[str, int]] = {d: {} for d in DIRECTIONS}
        self.rejected: dict[str, int] = {reason: 0 for reason in REJECTION_REASONS}
        self.current_round = 0

    def _round(self, round_number: int | None) -> dict[str, DirectionStats]:
        if round_number is not None:
            self.current_round = round_number
        stats = self.rounds.get(self.current_round)
        if stats is None:
            stats = self.rounds[self.current_round] = _pair()
            if self.keep_rounds is not None and len(self.rounds) > self.keep_rounds:
                del self.rounds[next(iter(self.rounds))]     # the longest-held round
        return stats

    def record_message(self, direction: str, frame_bytes: int, payload_bits: int, *,
                       round_number: int | None = None, type_name: str | None = None) -> None:
        """Count one message of frame_bytes link bytes and payload_bits body bits."""
        _check_direction(direction)
        for stats in (self.total[direction], self._round(round_number)[direction]):
            stats.messages += 1
            stats.frame_bytes += frame_bytes
            stats.payload_bits += payload_bits
        if type_name is not None:
            counts = self.by_type[direction]
            counts[type_name] = counts.get(type_name, 0) + 1
        if self.tally is not None:
            self.tally._add(self.tally_key, self.current_round, direction, 1, frame_bytes, payload_bits, 0)

    def record_other(self, direction: str, nbytes: int, *, round_number: int | None = None) -> None:
        """Count link bytes that are not part of a counted message."""
        _check_direction(direction)
        if nbytes:
            self.total[direction].other_bytes += nbytes
            self._round(round_number)[direction].other_bytes += nbytes
            if self.tally is not None:
                self.tally._add(self.tally_key, self.current_round, direction, 0, 0, 0, nbytes)

    def attach(self, tally: Tally, key, keep_rounds: int | None = None) -> None:
        """Add this link's counts so far to `tally` under `key`, and every later count as it
        is made. A link is attached once (again: nothing happens). With `keep_rounds`, the
        link itself keeps the counts of its last that many rounds only (the tally has the
        sums), so a link that lives for days does not grow by a pair of counts a round."""
        if self.tally is not None:
            return
        self.keep_rounds = keep_rounds
        for r, pair in self.rounds.items():
            for d, s in pair.items():
                tally._add(key, r, d, s.messages, s.frame_bytes, s.payload_bits, s.other_bytes)
        self.tally, self.tally_key = tally, key

    def reject(self, reason: str, count: int = 1) -> None:
        """Count rejected input by reason (unknown reasons get their own key)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + count

    @property
    def rejected_total(self) -> int:
        """All rejections, any reason."""
        return sum(self.rejected.values())

    def round_stats(self, round_number: int) -> dict:
        """The counts of one round as a dict {"up": {...}, "down": {...}}."""
        stats = self.rounds.get(round_number) or _pair()
        return {d: s.to_dict() for d, s in stats.items()}

    def merge(self, other: LinkCounters) -> None:
        """Add another link's counts to this one (to total several links)."""
        for d in DIRECTIONS:
            self.total[d].add(other.total[d])
            for name, n in other.by_type[d].items():
                self.by_type[d][name] = self.by_type[d].get(name, 0) + n
        for r, pair in other.rounds.items():
            mine = self.rounds.setdefault(r, _pair())
            for d in DIRECTIONS:
                mine[d].add(pair[d])
        for reason, n in other.rejected.items():
            self.reject(reason, n)

    def to_dict(self) -> dict:
        """JSON-ready dict: name, total, rounds (a list sorted by round), by_type, rejected."""
        return {
            "name": self.name,
            "total": {d: s.to_dict() for d, s in self.total.items()},
            "rounds": [{"round": r, **{d: s.to_dict() for d, s in self.rounds[r].items()}}
                       for r in sorted(self.rounds)],
            "by_type": {d: dict(sorted(c.items())) for d, c in self.by_type.items()},
            "rejected": dict(self.rejected),
            "current_round": self.current_round,
        }

    @classmethod
    def from_dict(cls, d: dict) -> LinkCounters:
        """Inverse of to_dict."""
        c = cls(d.get("name", ""))
        c.total = {k: DirectionStats.from_dict(v) for k, v in d["total"].items()}
        c.rounds = {int(r["round"]): {k: DirectionStats.from_dict(r[k]) for k in DIRECTIONS}
                    for r in d["rounds"]}
        c.by_type = {k: {n: int(v) for n, v in counts.items()} for k, counts in d["by_type"].items()}
        for reason, n in d["rejected"].items():
            c.rejected[reason] = int(n)
        c.current_round = int(d.get("current_round", 0))
        return c

    def __repr__(self) -> str:
        up, down = self.total["up"], self.total["down"]
        return (f"LinkCounters({self.name!r}, up={up.messages} msgs/{up.wire_bytes} B, "
                f"down={down.messages} msgs/{down.wire_bytes} B, rejected={self.rejected_total})")
