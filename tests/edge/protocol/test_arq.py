"""ARQ over a simulated lossy serial line: exactly-once, in-order delivery."""
import random

import pytest
from protocol_strategies import RUN_KEY

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    ArqEndpoint,
    ArqLink,
    Challenge,
    Hello,
    Join,
    LinkCounters,
    LinkFailed,
    RoundResult,
    RoundStart,
    Session,
    Vote,
    Welcome,
    sync_chunks,
)

H = bytes(8)


class LossyLine:
    """One direction of a serial line: each write may be lost, cut, flipped or padded."""

    def __init__(self, rng, loss=0.0, flip=0.0, drop_byte=0.0, noise=0.0):
        self.rng, self.loss, self.flip, self.drop_byte, self.noise = rng, loss, flip, drop_byte, noise
        self.buffer = bytearray()
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)
        r = self.rng
        if not data or r.random() < self.loss:
            return
        data = bytearray(data)
        if r.random() < self.flip:
            i = r.randrange(len(data))
            data[i] ^= 1 << r.randrange(8)
        if r.random() < self.drop_byte:
            del data[r.randrange(len(data))]
        if r.random() < self.noise:
            data[r.randrange(len(data) + 1):0] = bytes(r.randrange(256) for _ in range(r.randrange(1, 8)))
        self.buffer += data

    def read(self) -> bytes:
        # Deliver in random-sized pieces, as a UART driver would.
        n = self.rng.randrange(1, len(self.buffer) + 1) if self.buffer else 0
        out, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        return out


def run(a, b, ab, ba, until, *, dt=0.01, limit=600.0, on_a=None, on_b=None):
    """Step a simulated clock until until() or limit seconds."""
    now = 0.0
    while not until() and now < limit:
        now += dt
        for link in (a, b):
            link.tick(now)
        ab.write(a.output())
        ba.write(b.output())
        got_b = b.feed(ab.read(), now)
        got_a = a.feed(ba.read(), now)
        if on_b:
            on_b(got_b, now)
        if on_a:
            on_a(got_a, now)
    return now


@pytest.mark.parametrize("window", [1, 2, 4])
@pytest.mark.parametrize("seed", [1, 2, 23])   # 23: a RESET reaches the sender late (window 2)
def test_exactly_once_in_order_over_a_bad_line(window, seed):
    rng = random.Random(seed)
    a, b = ArqLink(window=window, rto=0.08, rng=rng), ArqLink(window=window, rto=0.08, rng=rng)
    faults = dict(loss=0.15, flip=0.1, drop_byte=0.05, noise=0.05)
    ab, ba = LossyLine(rng, **faults), LossyLine(rng, **faults)
    sent_a = [rng.randbytes(rng.randrange(0, 600)) for _ in range(30)]
    sent_b = [rng.randbytes(rng.randrange(0, 600)) for _ in range(30)]
    got_a, got_b = [], []
    todo_a, todo_b = list(sent_a), list(sent_b)

    def step_b(got, now):
        got_b.extend(got)
        while todo_b and b.queued < 8:
            b.send(todo_b.pop(0), now)

    def step_a(got, now):
        got_a.extend(got)
        while todo_a and a.queued < 8:
            a.send(todo_a.pop(0), now)

    run(a, b, ab, ba, lambda: len(got_b) == 30 and len(got_a) == 30, on_a=step_a, on_b=step_b)
    assert got_b == sent_a and got_a == sent_b
    assert a.stats["retransmitted"] + b.stats["retransmitted"] > 0   # the line really was bad
    assert a.rejections or b.rejections


def test_receiver_restart_is_recovered_by_reset():
    rng = random.Random(5)
    a, b = ArqLink(window=4, rto=0.05, rng=rng), ArqLink(window=4, rto=0.05, rng=rng)
    ab, ba = LossyLine(rng), LossyLine(rng)
    got = []
    for i in range(3):
        a.send(b"first-%d" % i, 0.0)
    run(a, b, ab, ba, lambda: a.queued == 0, on_b=lambda g, now: got.extend(g))
    assert got == [b"first-0", b"first-1", b"first-2"]
    b2 = ArqLink(window=4, rto=0.05, rng=rng)      # the receiving board rebooted
    ab.buffer.clear()
    for i in range(5):
        a.send(b"second-%d" % i, 1.0)
    got2 = []
    run(a, b2, ab, ba, lambda: len(got2) == 5, on_b=lambda g, now: got2.extend(g))
    assert got2 == [b"second-%d" % i for i in range(5)]
    assert a.stats["resets_received"] >= 1 and b2.stats["resets_sent"] >= 1


def test_sender_restart_starts_a_new_stream():
    rng = random.Random(6)
    a, b = ArqLink(rto=0.05, rng=rng), ArqLink(rto=0.05, rng=rng)
    ab, ba = LossyLine(rng), LossyLine(rng)
    got = []
    a.send(b"one", 0.0)
    run(a, b, ab, ba, lambda: got, on_b=lambda g, now: got.extend(g))
    a2 = ArqLink(rto=0.05, rng=rng)                # the sending board rebooted
    a2.send(b"two", 1.0)
    run(a2, b, ab, ba, lambda: len(got) == 2, on_b=lambda g, now: got.extend(g))
    assert got == [b"one", b"two"]


def test_dead_line_fails_after_the_retries():
    link = ArqLink(rto=0.1, max_retries=3)
    link.send(b"hello?", 0.0)
    first = link.output()
    with pytest.raises(LinkFailed, match="3 retransmissions"):
        for step in range(1, 100):
            link.tick(step * 0.1)
    assert link.failed and link.stats["retransmitted"] == 3
    assert len(first) > 0
    with pytest.raises(LinkFailed):
        link.send(b"again", 10.0)


def test_send_queue_is_bounded():
    link = ArqLink(max_queue=2)
    link.send(b"1", 0)
    link.send(b"2", 0)
    with pytest.raises(BufferError):
        link.send(b"3", 0)


@pytest.mark.parametrize("faults", [{}, dict(loss=0.2, flip=0.1, noise=0.05)])
def test_sessions_over_arq_with_exact_accounting(faults):
    rng = random.Random(11)
    agent = ArqEndpoint(Session(AGENT, RUN_KEY, counters=LinkCounters("a")), ArqLink(rto=0.05, rng=rng))
    coord = ArqEndpoint(Session(COORDINATOR, RUN_KEY, counters=LinkCounters("c")),
                        ArqLink(rto=0.05, rng=rng))
    up, down = LossyLine(rng, **faults), LossyLine(rng, **faults)
    received = {"agent": [], "coord": []}
    agent.send(Hello(), 0.0)
    theta = __import__("numpy").arange(3000, dtype="int16")

    def coord_step(msgs, now):
        for m in msgs:
            received["coord"].append(m)
            if isinstance(m, Hello):
                coord.send(Challenge(), now)
            elif isinstance(m, Join):
                coord.send(Welcome(0, 0, 1, 3000, 1, 0, H, "{}"), now)
                for chunk in sync_chunks(0, theta, 8, max_frame=2048):
                    coord.send(chunk, now)
                coord.send(RoundStart(1), now)
            elif isinstance(m, Vote):
                coord.send(RoundResult(m.round, (m.vote,), H), now)
                if m.round < 5:
                    coord.send(RoundStart(m.round + 1), now)

    def agent_step(msgs, now):
        for m in msgs:
            received["agent"].append(m)
            if isinstance(m, Challenge):
                agent.send(Join(), now)
            elif isinstance(m, RoundStart):
                agent.send(Vote(m.round, 1, H), now)

    run(agent, coord, up, down,
        lambda: sum(isinstance(m, RoundResult) for m in received["agent"]) == 5
        and agent.arq.idle and coord.arq.idle and not up.buffer and not down.buffer,
        on_a=agent_step, on_b=coord_step)
    assert [m.round for m in received["agent"] if isinstance(m, RoundResult)] == [1, 2, 3, 4, 5]
    a, c = agent.counters, coord.counters
    # every byte each side wrote is accounted for, as a message or as other bytes
    assert a.total["up"].wire_bytes == up.written
    assert c.total["down"].wire_bytes == down.written
    # both ends agree on the messages and their payloads
    for d in ("up", "down"):
        assert a.total[d].messages == c.total[d].messages
        assert a.total[d].payload_bits == c.total[d].payload_bits
    rejected = sum(a.rejected.values()) + sum(c.rejected.values())
    if not faults:
        assert a.total["down"].wire_bytes == down.written and c.total["up"].wire_bytes == up.written
        assert a.total["up"].frame_bytes == c.total["up"].frame_bytes
        assert rejected == 0
    else:
        # What the line mangled was caught and counted, never delivered (the messages above agree).
        assert rejected > 0
        assert agent.arq.stats["retransmitted"] + coord.arq.stats["retransmitted"] > 0
