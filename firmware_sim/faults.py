"""Fault injection on a simulated serial line, seeded so a run can be repeated.

Each direction of a line has its own FaultInjector, seeded from the spec's
seed, the board index and the direction. Every fault is decided per byte of
the stream that direction carries (the gaps between events are drawn from
geometric distributions), so the same seed and the same bytes give the same
faults; only a cut's length is measured on the wall clock.

Faults (rates are probabilities per byte):

    drop=P          the byte is lost
    flip=P          one of its 8 bits is inverted
    burst=P         a noise burst starts: this byte and the next burst_len-1
                    are replaced by random bytes (burst_len=N, default 8)
    delay=P         the line stalls for delay_ms (default 50) before the byte
    disconnect=P    the cable is cut (both directions) for disconnect_s
                    seconds (default 2): everything on the line is lost
    seed=N          the seed (default 0)

Written as one option: `--faults drop=0.005,flip=0.005,seed=3`.
"""
import math
import random
from dataclasses import asdict, dataclass, fields

NEVER = 1 << 62
KINDS = ("drop", "flip", "burst", "delay", "disconnect")


class FaultSpecError(ValueError):
    """A --faults text that does not parse; the text says what is accepted."""


@dataclass(frozen=True)
class FaultSpec:
    """What to inject on every line of a simulation (all rates 0: a clean line)."""

    drop: float = 0.0
    flip: float = 0.0
    burst: float = 0.0
    burst_len: int = 8
    delay: float = 0.0
    delay_ms: float = 50.0
    disconnect: float = 0.0
    disconnect_s: float = 2.0
    seed: int = 0

    def __post_init__(self):
        for kind in KINDS:
            p = getattr(self, kind)
            if not 0.0 <= p <= 1.0:
                raise FaultSpecError(f"fault rate {kind} must be between 0 and 1, got {p}")
        if not 1 <= self.burst_len <= 4096:
            raise FaultSpecError(f"burst_len must be between 1 and 4096, got {self.burst_len}")
        if not 0 <= self.delay_ms <= 60_000 or not 0 <= self.disconnect_s <= 3600:
            raise FaultSpecError("delay_ms must be in [0, 60000] and disconnect_s in [0, 3600]")

    @classmethod
    def parse(cls, text: str) -> "FaultSpec":
        """'drop=0.01,flip=0.001,seed=3' -> FaultSpec (empty or 'none': no faults)."""
        text = (text or "").strip()
        if text in ("", "none"):
            return cls()
        types = {f.name: f.type for f in fields(cls)}
        values = {}
        for item in text.split(","):
            name, sep, value = item.strip().partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise FaultSpecError(f"bad fault {item.strip()!r}: expected NAME=VALUE with NAME one of "
                                     f"{', '.join(types)}")
            try:
                values[name] = int(value) if types[name] in (int, "int") else float(value)
            except ValueError:
                raise FaultSpecError(f"bad value for {name}: {value!r}") from None
        return cls(**values)

    @property
    def active(self) -> bool:
        """True when any fault can happen."""
        return any(getattr(self, kind) > 0 for kind in KINDS)

    @property
    def byte_error_rate(self) -> float:
        """Expected share of bytes lost or altered (drops, flips and burst bytes; cuts not counted)."""
        return min(1.0, self.drop + self.flip + self.burst * self.burst_len)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if not self.active:
            return "none"
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                        if getattr(self, f.name) != f.default or f.name == "seed")


class FaultInjector:
    """The faults of one direction of one line (see the module docstring)."""

    def __init__(self, spec: FaultSpec, board: int = 0, direction: str = "up"):
        self.spec = spec
        # One generator per purpose, so the faults do not depend on how the
        # bytes were cut into reads. A string seed hashes the same in every process.
        base = f"fedzo-faults:{spec.seed}:{board}:{direction}"
        self._rngs = {kind: random.Random(f"{base}:{kind}") for kind in KINDS}
        self._noise = random.Random(f"{base}:noise")
        self._bits = random.Random(f"{base}:bits")
        self._until = {kind: self._gap(kind) for kind in KINDS}
        self._burst_left = 0
        self.stats = {"bytes": 0, "dropped": 0, "flipped": 0, "burst_bytes": 0, "stalls": 0,
                      "disconnects": 0}

    def _gap(self, kind: str) -> int:
        """Bytes before the next event of this kind (geometric)."""
        p = getattr(self.spec, kind)
        if p <= 0:
            return NEVER
        if p >= 1:
            return 0
        return int(math.log(1.0 - self._rngs[kind].random()) / math.log(1.0 - p))

    def apply(self, data) -> tuple[list, bool]:
        """([(stall seconds before it, bytes), ...], cut) for bytes entering the line.

        cut: the cable was cut at the end of what is returned; the rest of
        data is lost (the caller cuts the line both ways).
        """
        data = bytes(data)
        self.stats["bytes"] += len(data)
        if not self.spec.active:
            return [(0.0, data)], False
        segments, seg, stall = [], bytearray(), 0.0
        pos, n = 0, len(data)
        until = self._until
        while pos < n:
            if self._burst_left:
                k = min(self._burst_left, n - pos)
                seg += bytes(self._noise.randrange(256) for _ in range(k))
                pos += k
                self._burst_left -= k
                self.stats["burst_bytes"] += k
                for kind in KINDS:
                    until[kind] -= k
                continue
            step = min(until.values())
            if step >= n - pos:
                seg += data[pos:]
                for kind in KINDS:
                    until[kind] -= n - pos
                break
            seg += data[pos:pos + step]
            pos += step
            fired = [kind for kind in KINDS if until[kind] == step]
            for kind in KINDS:
                until[kind] = self._gap(kind) if kind in fired else until[kind] - step - 1
            if "disconnect" in fired:
                self.stats["disconnects"] += 1
                segments.append((stall, bytes(seg)))
                return segments, True
            if "delay" in fired:
                self.stats["stalls"] += 1
                segments.append((stall, bytes(seg)))
                seg, stall = bytearray(), self.spec.delay_ms / 1000.0
            if "burst" in fired:
                length = self._burst_left = self.spec.burst_len
                # The burst starts at this byte, which was not consumed: every gap
                # counts from it again. Events that would fall inside the burst
                # drown in it; the next one is drawn from its end.
                for kind in KINDS:
                    until[kind] += 1
                    if until[kind] < length:
                        until[kind] = length + self._gap(kind)
                continue
            byte = data[pos]
            pos += 1
            if "drop" in fired:
                self.stats["dropped"] += 1
                continue
            if "flip" in fired:
                byte ^= 1 << self._bits.randrange(8)
                self.stats["flipped"] += 1
            seg.append(byte)
        segments.append((stall, bytes(seg)))
        return segments, False
