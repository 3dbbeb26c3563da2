"""LinkCounters: the counts equal the bytes the encoders actually produced."""
import json
from dataclasses import replace

import numpy as np
import pytest
from protocol_strategies import RUN_KEY

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Bye,
    Challenge,
    Endpoint,
    Hello,
    Join,
    LengthPrefixFraming,
    LinkCounters,
    ModelDownload,
    ModelUpload,
    NoFraming,
    OversizedFrame,
    RoundResult,
    RoundStart,
    SerialFraming,
    Session,
    Vote,
    Welcome,
    model_chunks,
    serial_encode,
    sync_chunks,
)
from fedzo.edge.protocol.accounting import DirectionStats, Tally
from fedzo.edge.protocol.constants import HEADER_BYTES, PROTOCOL_VERSION, TAG_BYTES

H = bytes(8)
D = 5123
K = 5


def endpoints(framing):
    agent = Endpoint(Session(AGENT, RUN_KEY, counters=LinkCounters("agent")), framing)
    coord = Endpoint(Session(COORDINATOR, RUN_KEY, counters=LinkCounters("coord")), framing)
    return agent, coord


def script():
    """(sender, message) of a short run: handshake, 3 Par rounds, a sync, a FedAvg round, bye."""
    theta = np.arange(D, dtype=np.int16)
    yield "agent", Hello()
    yield "coord", Challenge()
    yield "agent", Join()
    yield "coord", Welcome(2, 2, K, D, 99, 0, H, '{"algo": "par"}')
    for r in (1, 2, 3):
        yield "coord", RoundStart(r)
        yield "agent", Vote(r, -1, H)
        yield "coord", RoundResult(r, (1, -1, 0, 1, 1), H)
    for chunk in sync_chunks(3, theta, 10):
        yield "coord", chunk
    for chunk in model_chunks(ModelUpload, 4, theta):
        yield "agent", chunk
    for chunk in model_chunks(ModelDownload, 4, theta):
        yield "coord", chunk
    yield "agent", Bye()


def play(framing):
    agent, coord = endpoints(framing)
    written = {"up": 0, "down": 0}
    bodies = {"up": 0, "down": 0}
    wires = {"up": [], "down": []}
    for who, msg in script():
        sender, receiver, d = (agent, coord, "up") if who == "agent" else (coord, agent, "down")
        wire = sender.send(msg)
        written[d] += len(wire)
        bodies[d] += len(msg.encode_body())
        wires[d].append(wire)
        got = receiver.feed(wire)
        if isinstance(msg, (Join, Welcome)):     # the sending session filled in its key share
            got = [replace(m, key_share=msg.key_share) for m in got]
        assert got == [msg]
    return agent, coord, written, bodies, wires


@pytest.mark.parametrize("framing", [LengthPrefixFraming(), SerialFraming(), NoFraming()],
                         ids=["tcp", "serial", "inproc"])
def test_counters_equal_the_bytes_produced(framing):
    agent, coord, written, bodies, wires = play(framing)
    for counters in (agent.counters, coord.counters):
        for d in ("up", "down"):
            t = counters.total[d]
            assert t.frame_bytes == written[d] and t.other_bytes == 0
            assert t.payload_bits == 8 * bodies[d]
            assert t.messages == len(wires[d])
            # per round adds up to the total
            for field in ("messages", "frame_bytes", "payload_bits"):
                assert sum(getattr(r[d], field) for r in counters.rounds.values()) == getattr(t, field)
    a, c = agent.counters.to_dict(), coord.counters.to_dict()
    for key in ("total", "rounds", "by_type"):
        assert a[key] == c[key]
    assert sum(agent.counters.rejected.values()) == sum(coord.counters.rejected.values()) == 0


def test_framing_overheads_and_round_attribution():
    agent, coord, written, bodies, wires = play(LengthPrefixFraming())
    c = coord.counters
    framing_per_msg = 4 + HEADER_BYTES + TAG_BYTES
    for d in ("up", "down"):
        assert c.total[d].frame_bytes == c.total[d].payload_bits // 8 + framing_per_msg * c.total[d].messages
    r2 = c.round_stats(2)
    assert r2["up"]["messages"] == 1 and r2["up"]["frame_bytes"] == 4 + 7 + 13 + 16
    assert r2["down"]["messages"] == 2 and r2["down"]["frame_bytes"] == (4 + 27) + (4 + 39)
    assert c.rounds[0]["up"].messages == 2          # hello and join (no round) count in round 0
    assert c.by_type["up"]["model_upload"] == 2 and c.by_type["down"]["sync"] == 1
    assert c.rounds[4]["up"].messages == 3          # 2 uploads + the bye after them


def test_serialisation_round_trip_and_merge():
    agent, coord, *_ = play(SerialFraming())
    d = json.loads(json.dumps(agent.counters.to_dict()))
    again = LinkCounters.from_dict(d)
    assert again.to_dict() == agent.counters.to_dict()
    total = LinkCounters("all")
    total.merge(agent.counters)
    total.merge(coord.counters)
    assert total.total["up"].frame_bytes == 2 * agent.counters.total["up"].frame_bytes
    assert total.rounds[3]["down"].messages == 2 * agent.counters.rounds[3]["down"].messages


def test_received_garbage_and_rejects_are_other_bytes():
    agent, coord = endpoints(SerialFraming())
    coord.feed(agent.send(Hello()))
    agent.feed(coord.send(Challenge()))
    coord.feed(agent.send(Join()))
    agent.feed(coord.send(Welcome(0, 0, 1, 10, 1, 0, H, "{}")))
    good = agent.send(Vote(1, 1, H))
    corrupt = bytearray(agent.send(Vote(1, 0, H)))
    corrupt[5] ^= 0x10
    # valid CRC, version and seq; a tag made up without the key
    forged = serial_encode(bytes([PROTOCOL_VERSION]) + b"\x04\x00\x00\x00\x00\x09"
                           + Vote(1, 1, H).encode_body() + bytes(16))
    noise = b"\x13\x37garbage"
    stream = noise + b"\x00" + bytes(corrupt) + forged + good
    before = coord.counters.total["up"].wire_bytes
    got = []
    for i in range(0, len(stream), 7):
        got += coord.feed(stream[i:i + 7])
    assert got == [Vote(1, 1, H)]
    up = coord.counters.total["up"]
    assert up.wire_bytes - before == len(stream)
    assert up.other_bytes == len(stream) - len(good)
    rej = coord.counters.rejected
    assert rej["bad_crc"] + rej["garbage"] >= 2 and rej["bad_tag"] == 1
    assert len(coord.errors) == 1


def test_tcp_endpoint_keeps_frames_before_a_bad_length_and_counts_it():
    agent, coord = endpoints(LengthPrefixFraming())
    hello = agent.send(Hello())
    data = hello + (2**31).to_bytes(4, "big") + bytes(100)
    with pytest.raises(OversizedFrame) as info:
        coord.feed(data)
    assert [type(m) for m in info.value.messages] == [Hello]
    assert coord.counters.total["up"].messages == 1
    assert coord.counters.total["up"].wire_bytes == len(data)
    assert coord.counters.rejected["oversized"] == 1


def test_a_tally_sums_its_links_as_they_count():
    """A coordinator reads each round's bytes and each agent's totals from a Tally; it
    must equal summing the attached links' own counters, counts made before attaching
    included, and a second attach must not count a link twice."""
    first, _, *_ = play(LengthPrefixFraming())
    tally = Tally()
    first.counters.attach(tally, "a")         # after the fact: its counts so far are folded in
    first.counters.attach(tally, "a")
    second_agent, second_coord = endpoints(SerialFraming())
    second_coord.counters.attach(tally, "b")  # before any traffic: counts stream in
    for who, msg in script():
        sender, receiver = (second_agent, second_coord) if who == "agent" else (second_coord, second_agent)
        receiver.feed(sender.send(msg))
    second_coord.counters.record_other("up", 5, round_number=4)
    for key, counters in (("a", first.counters), ("b", second_coord.counters)):
        for d in ("up", "down"):
            assert tally.key_stats(key)[d] == counters.total[d]
    for r in set(first.counters.rounds) | set(second_coord.counters.rounds):
        for d in ("up", "down"):
            want = DirectionStats()
            for counters in (first.counters, second_coord.counters):
                want.add(counters.rounds.get(r, {}).get(d, DirectionStats()))
            assert tally.round_stats(r)[d] == want
    assert tally.round_stats(99)["up"] == DirectionStats() and tally.key_stats("c")["down"] == DirectionStats()
    tally.forget_rounds_before(3)
    assert min(tally.rounds) == 3


def test_a_link_attached_with_a_round_limit_keeps_recent_rounds_and_the_tally_all():
    counters, tally = LinkCounters("agent-0"), Tally()
    counters.attach(tally, 0, keep_rounds=3)
    for r in range(100):
        counters.record_message("up", 30, 104, round_number=r)
        counters.record_message("down", 40, 200, round_number=r)
    assert sorted(counters.rounds) == [97, 98, 99]          # bounded: a long run does not grow it
    assert counters.total["up"].messages == 100 and tally.key_stats(0)["up"] == counters.total["up"]
    assert tally.round_stats(5)["down"].frame_bytes == 40
