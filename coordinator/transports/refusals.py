"""The coordinator's answers to Hellos it cannot accept, rate-limited per source.

A Hello whose tag does not verify (a wrong key, another run's key) or that
speaks another protocol version is rejected by the Session, which marks the
rejection with the Refusal that answers it (edge/protocol/session.py,
`exc.refusal`). Without an answer the agent would wait and retry for ever
(issue 12); with one it prints why and exits. The Refusal is not
authenticated and says nothing but a code and the Hello's own nonce, so it
tells a stranger only that a fedzo coordinator of this protocol version
listens here and does not take their key (docs/SECURITY.md).

Whoever can reach the coordinator can send bad Hellos as fast as they like,
so answers are limited per source address (a TCP peer's IP address, a serial
port's name): at most REFUSALS_PER_SOURCE in any REFUSAL_WINDOW_SECONDS;
beyond that the Hello is dropped unanswered (TCP: the connection is closed
all the same). The table of sources is bounded by MAX_SOURCES (a new source
when it is full and nothing in it has expired gets no answer). Answers sent
and withheld are counted (`sent`, `withheld`) and noted in the server's tally,
so the log carries counts per interval, never a line per Hello.
"""
import time

from fedzo.edge.protocol import ErrorCode, seal_refusal

REFUSALS_PER_SOURCE = 5          # answers to one source address ...
REFUSAL_WINDOW_SECONDS = 60.0    # ... in any window this long
MAX_SOURCES = 1024               # sources remembered at once (bounded state)

WHY = {ErrorCode.AUTH_FAILED: "wrong key", ErrorCode.BAD_VERSION: "another protocol version",
       ErrorCode.REVOKED: "revoked agent key"}


class Refusals:
    """Which refusable rejections get an answer; see the module docstring."""

    def __init__(self, tally=None, *, per_source=REFUSALS_PER_SOURCE, window=REFUSAL_WINDOW_SECONDS,
                 max_sources=MAX_SOURCES, clock=time.monotonic):
        self.tally, self.per_source, self.window = tally, per_source, window
        self.max_sources, self.clock = max_sources, clock
        self._sources: dict[str, tuple[float, int]] = {}    # source -> (window start, answers in it)
        self.sent = 0
        self.withheld = 0

    @staticmethod
    def pending(errors) -> list:
        """The Refusals that answer the refusable rejections among `errors`."""
        return [e.refusal for e in errors if getattr(e, "refusal", None) is not None]

    def answer(self, source: str, refusal) -> bytes | None:
        """The frame to send `source` for this Refusal, or None if its allowance is spent."""
        why = WHY.get(refusal.code, f"code {refusal.code}")
        if not self._allow(source):
            self.withheld += 1
            self._note(f"hellos refused without an answer ({why}; rate limit per source)")
            return None
        self.sent += 1
        self._note(f"hellos refused ({why})")
        return seal_refusal(refusal)

    def _allow(self, source: str) -> bool:
        now = self.clock()
        start, count = self._sources.get(source, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if source not in self._sources and len(self._sources) >= self.max_sources:
            self._forget_expired(now)
            if len(self._sources) >= self.max_sources:
                return False
        if count >= self.per_source:
            self._sources[source] = (start, count)
            return False
        self._sources[source] = (start, count + 1)
        return True

    def _forget_expired(self, now: float) -> None:
        for source in [s for s, (start, _) in self._sources.items() if now - start >= self.window]:
            del self._sources[source]

    def _note(self, what: str) -> None:
        if self.tally is not None:
            self.tally.note(what)
