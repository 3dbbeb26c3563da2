"""One serial line's ARQ: a clear channel for the handshake, a sealed one for the session.

A serial line carries two independent ARQ streams (arq.py), told apart by
the SEALED bit of each packet's kind byte:

- the clear channel carries handshake frames (Hello, Challenge, Join,
  Welcome, and Error/Bye before the Welcome). Its packets have no tag: a
  board that rebooted, or a peer that lost its session, must be able to
  start a handshake through a line whose other end still holds the old
  session's keys, and before the Welcome there is no session key anyway.
- the sealed channel carries session frames. It exists once `seal(keys)`
  was called with the session's ARQ keys (Session.arq_keys: the
  coordinator has them when it seals the Welcome, the agent when it opens
  it), and every packet on it, DATA, ACK and RESET, carries a tag under
  them. Keys of a later session replace it with a fresh channel (fresh
  numbering, nothing queued: what the old one still held belonged to a
  session that is over).

Why two channels and not one stream that starts tagging at some packet:
the two ends learn the keys at different moments (the coordinator before
the Welcome leaves, the agent after it arrived), and a Welcome retransmitted
after the agent has the keys, or a Hello from a rebooted board, must still
get through. With one channel per kind of frame, each packet's tagging is
fixed when it is first queued and both ends agree on it: no legitimate
packet is ever refused for its tag (or for its lack of one), and a sealed
packet that arrives before its keys (the first RoundStart overtaking a
Welcome that had to be resent) is dropped, counted `unkeyed`, and sent
again by its sender.

The line decodes the bytes once (SerialReader) and hands each packet to
its channel; stats and rejections cover both channels and every sealed
channel the line had.
"""
from __future__ import annotations

from .arq import ARQ_HEADER_BYTES, ARQ_STAT_KEYS, SEALED, ArqLink, PacketReceiver
from .serialframe import SerialReader


class ArqLine(PacketReceiver):
    """The ARQ channels of one serial line (see the module docstring).

    The settings are ArqLink's and apply to each channel.
    """

    def __init__(self, *, window: int = 4, rto: float = 0.25, max_retries: int = 40,
                 max_queue: int = 64, rng=None):
        self._settings = dict(window=window, rto=rto, max_retries=max_retries, max_queue=max_queue,
                              rng=rng, on_reject=self._bump)
        self.window, self.rto = window, rto
        self.clear = ArqLink(**self._settings)
        self.sealed: ArqLink | None = None
        self.keys: tuple[bytes, bytes] | None = None
        self._retired = dict.fromkeys(ARQ_STAT_KEYS, 0)   # sealed channels replaced since
        self._out = bytearray()        # their last bytes, not yet written
        self.rejections: dict[str, int] = {}
        self.on_reject = None          # on_reject(reason) for each dropped packet
        self._reader = SerialReader(on_reject=self._count_reject)

    # -- keys -----------------------------------------------------------------

    def seal(self, keys: tuple[bytes, bytes]) -> None:
        """Carry session frames on a sealed channel under keys (send key, receive key).

        Keys already in use change nothing; new keys start a fresh sealed channel.
        """
        keys = (bytes(keys[0]), bytes(keys[1]))
        if keys == self.keys:
            return
        self._retire()
        self.sealed = ArqLink(**self._settings, keys=keys)
        self.keys = keys

    def unseal(self) -> None:
        """Forget the sealed channel (the peer started over: its session is gone)."""
        self._retire()
        self.sealed = self.keys = None

    def _retire(self) -> None:
        # What the old channel already produced still goes out (it is counted as sent).
        if self.sealed is not None:
            self._out += self.sealed.output()
            for key in ARQ_STAT_KEYS:
                self._retired[key] += self.sealed.stats[key]

    def _channels(self) -> list[ArqLink]:
        return [self.clear] if self.sealed is None else [self.clear, self.sealed]

    def channel(self, sealed: bool) -> ArqLink:
        """The channel for clear (handshake) or sealed (session) payloads."""
        if not sealed:
            return self.clear
        if self.sealed is None:
            raise ValueError("no session keys on this line yet: seal(keys) first")
        return self.sealed

    # -- sending --------------------------------------------------------------

    def room(self, sealed: bool) -> bool:
        """True if that channel's window has room for another payload."""
        link = self.channel(sealed)
        return link.queued < link.window

    def send(self, payload, now: float, sealed: bool = False) -> int:
        """Queue payload on a channel; the size of its first transmission."""
        return self.channel(sealed).send(payload, now)

    def tick(self, now: float) -> None:
        """Drive both retransmission timers (LinkFailed when one gives up)."""
        for link in self._channels():
            link.tick(now)

    def output(self) -> bytes:
        """Bytes to write on the line now (and forget)."""
        out = bytes(self._out) + b"".join(link.output() for link in self._channels())
        self._out.clear()
        return out

    @property
    def queued(self) -> int:
        """Payloads not yet acknowledged, on both channels."""
        return sum(link.queued for link in self._channels())

    @property
    def idle(self) -> bool:
        """Nothing to send, retransmit or write on either channel."""
        return not self._out and all(link.idle for link in self._channels())

    @property
    def failed(self) -> bool:
        """A channel gave up (the line is gone)."""
        return any(link.failed for link in self._channels())

    # -- receiving ------------------------------------------------------------

    def feed_iter(self, data, now: float):
        """Yield (payload, line bytes, sealed) for each payload the bytes deliver.

        A generator, so that the caller may open a frame (a Welcome) and
        seal() the line before the next packet of the same read is routed.
        """
        for packet, wire in self._reader.feed_sized(data):
            sealed = len(packet) >= ARQ_HEADER_BYTES and bool(packet[0] & SEALED)
            if sealed and self.sealed is None:
                self._retired["unkeyed"] += 1      # early, or from a session that is over
                self._bump("unkeyed")
                continue
            payload = self.channel(sealed).take(packet, now)
            if payload is not None:
                yield payload, wire, sealed

    def feed(self, data, now: float) -> list[bytes]:
        """Payloads delivered by the received bytes, on either channel."""
        return [payload for payload, _, _ in self.feed_iter(data, now)]

    def feed_sized(self, data, now: float) -> list[tuple[bytes, int, bool]]:
        """feed_iter as a list."""
        return list(self.feed_iter(data, now))

    @property
    def stats(self) -> dict[str, int]:
        """ARQ_STAT_KEYS summed over every channel this line had."""
        out = dict(self._retired)
        for link in self._channels():
            for key in ARQ_STAT_KEYS:
                out[key] += link.stats[key]
        return out
