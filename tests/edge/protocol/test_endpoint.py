"""Endpoints fed mutated byte streams: only genuine messages, in order, ever come out."""
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import COORDINATOR_MESSAGES, RUN_KEY

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Endpoint,
    Challenge,
    Hello,
    Join,
    LengthPrefixFraming,
    OversizedFrame,
    SerialFraming,
    Session,
    StreamBroken,
    Welcome,
)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def linked(framing):
    agent = Endpoint(Session(AGENT, RUN_KEY), framing)
    coord = Endpoint(Session(COORDINATOR, RUN_KEY), framing)
    coord.feed(agent.send(Hello()))
    agent.feed(coord.send(Challenge()))
    coord.feed(agent.send(Join()))
    agent.feed(coord.send(Welcome(0, 0, 1, 10, 1, 0, bytes(8), "{}")))
    return agent, coord


def mutate(wire: bytearray, rng: random.Random, tcp: bool) -> bytearray:
    op = rng.choice(["flip", "drop", "insert", "truncate", "splice", "length"])
    i = rng.randrange(len(wire))
    if op == "flip":
        wire[i] ^= 1 << rng.randrange(8)
    elif op == "drop":
        del wire[i]
    elif op == "insert":
        wire[i:i] = rng.randbytes(rng.randrange(1, 6))
    elif op == "truncate":
        del wire[i:]
    elif op == "splice":             # a run of the stream repeated elsewhere
        j = rng.randrange(len(wire))
        wire[j:j] = wire[i:i + rng.randrange(1, 64)]
    elif tcp:                        # rewrite the first length prefix
        wire[0:4] = rng.randrange(0, 1 << rng.choice([8, 16, 32])).to_bytes(4, "big")
    return wire


def feed_all(endpoint, stream, rng):
    got = []
    pos = 0
    try:
        while pos < len(stream):
            n = rng.randrange(1, 200)
            got += endpoint.feed(stream[pos:pos + n])
            pos += n
    except OversizedFrame as exc:     # a broken TCP stream: the caller would close it
        got += exc.messages
        with pytest.raises(StreamBroken):
            endpoint.feed(b"\x00")
    return got


@SETTINGS
@given(st.lists(COORDINATOR_MESSAGES, min_size=1, max_size=6), st.integers(0, 2**32),
       st.sampled_from(["tcp", "serial"]))
def test_mutated_streams_yield_an_ordered_subset(messages, seed, kind):
    rng = random.Random(seed)
    framing = LengthPrefixFraming() if kind == "tcp" else SerialFraming()
    agent, coord = linked(framing)
    wire = bytearray(b"".join(coord.send(m) for m in messages))
    for _ in range(rng.randrange(1, 4)):
        if wire:
            wire = mutate(wire, rng, kind == "tcp")
    got = feed_all(agent, bytes(wire), rng)
    it = iter(messages)
    assert all(any(g == m for m in it) for g in got), "a message out of order or not sent"
    down = agent.counters.total["down"]
    assert down.messages == 2 + len(got)              # challenge and welcome, then what came out
    rejected = sum(agent.counters.rejected.values())
    # no silent loss: with nothing rejected and nothing pending, only a cut-off end is missing
    if rejected == 0 and agent._reader.pending == 0:
        assert got == messages[:len(got)]
