"""Sealed ARQ links: a forged packet changes nothing (issue 11, item 5), sans I/O.

Before, any packet with a valid CRC acted on the ARQ: an ACK for a packet
the line had lost made the sender forget it (the message vanished), a RESET
renumbered the stream, a DATA packet was delivered. A sealed link (keys
from the session) takes only packets whose tag verifies; everything else
is dropped and counted as forged.
"""
import random
import struct

import pytest

from fedzo.edge.protocol.arq import ACK, ARQ_TAG_BYTES, DATA, RESET, SEALED, SEQ_MOD, ArqLink
from fedzo.edge.protocol.arqline import ArqLine
from fedzo.edge.protocol.serialframe import SerialReader, serial_encode

UP_KEY, DOWN_KEY = b"u" * 32, b"d" * 32
_HDR = struct.Struct(">BHH")


def sealed_pair(**settings):
    a = ArqLink(keys=(UP_KEY, DOWN_KEY), **settings)
    b = ArqLink(keys=(DOWN_KEY, UP_KEY), **settings)
    return a, b


def packets(wire: bytes) -> list[tuple[int, int, int]]:
    """(kind, epoch, seq) of each packet in line bytes: what an eavesdropper reads."""
    return [_HDR.unpack_from(p) for p in SerialReader().feed(wire)]


def forgeries(kind: int, epoch: int, seq: int, payload: bytes = b"") -> list[bytes]:
    """The same packet clear, sealed with a random tag, and sealed with the tag cut off."""
    head = _HDR.pack(kind | SEALED, epoch, seq)
    return [serial_encode(_HDR.pack(kind, epoch, seq) + payload),
            serial_encode(head + payload + random.Random(seq).randbytes(ARQ_TAG_BYTES)),
            serial_encode(head + payload)]


def test_sealed_links_deliver_exactly_once_and_every_packet_is_sealed():
    a, b = sealed_pair()
    for i in range(6):
        a.send(b"m%d" % i, 0.0)
    wire = a.output()
    assert all(kind & SEALED for kind, _, _ in packets(wire))
    assert b.feed(wire, 0.0) == [b"m0", b"m1", b"m2", b"m3"]          # window 4
    ack = b.output()
    assert [k for k, _, _ in packets(ack)] == [ACK | SEALED]
    a.feed(ack, 0.1)
    assert b.feed(a.output(), 0.1) == [b"m4", b"m5"]
    a.feed(b.output(), 0.2)
    assert a.idle and a.stats["forged"] == b.stats["forged"] == 0


def test_a_forged_ack_for_a_lost_packet_does_not_make_the_sender_forget_it():
    a, b = sealed_pair(rto=0.25)
    a.send(b"vote", 0.0)
    lost = a.output()                                   # the line loses it
    (_, epoch, seq), = packets(lost)
    for forged in forgeries(ACK, epoch, seq + 1):       # "received", says the attacker
        a.feed(forged, 0.1)
    assert a.queued == 1 and a.stats["forged"] == 3     # before: forgotten, never resent
    a.tick(0.3)
    assert b.feed(a.output(), 0.3) == [b"vote"]         # the retransmission arrives
    a.feed(b.output(), 0.3)
    assert a.queued == 0


def test_a_forged_reset_does_not_renumber_the_stream():
    a, b = sealed_pair()
    a.send(b"one", 0.0)
    wire = a.output()
    (_, epoch, _), = packets(wire)
    for forged in forgeries(RESET, epoch, 0):
        a.feed(forged, 0.1)
    assert a.stats["resets_received"] == 0 and a.stats["forged"] == 3
    assert a.output() == b""                            # nothing renumbered, nothing resent
    assert b.feed(wire, 0.2) == [b"one"]
    a.feed(b.output(), 0.2)
    assert a.idle


def test_a_forged_data_packet_is_neither_delivered_nor_acknowledged():
    a, b = sealed_pair()
    a.send(b"join", 0.0)
    wire = a.output()
    (_, epoch, _), = packets(wire)
    b.feed(wire, 0.0)
    b.output()
    for forged in forgeries(DATA, epoch, 1, b"forged"):
        assert b.feed(forged, 0.1) == []
    assert b.output() == b""                            # no acknowledgement either
    assert b.stats["forged"] == 3 and b.stats["conflicts"] == 0
    a.feed(b"", 0.1)
    a.send(b"vote", 0.2)
    assert b.feed(a.output(), 0.2) == [b"vote"]


def test_a_new_numbering_is_adopted_only_with_a_valid_tag():
    _, b = sealed_pair()
    for forged in forgeries(DATA, 1234, 0, b"first"):
        assert b.feed(forged, 0.0) == []
    assert b.output() == b"" and b.stats["forged"] == 3


def test_a_recorded_ack_replayed_after_the_sequence_numbers_wrap_fails_its_tag():
    a, b = sealed_pair(window=64, max_queue=64)
    recorded = None
    for _ in range(SEQ_MOD // 64):
        for i in range(64):
            a.send(b"p%d" % i, 0.0)
        b.feed(a.output(), 0.0)
        ack = b.output()
        recorded = recorded or ack                      # acknowledges seqs 0..63
        a.feed(ack, 0.0)
    assert a.idle
    a.send(b"after the wrap", 0.0)                      # seq 0 again, 65536 packets later
    lost = a.output()
    assert packets(lost)[0][2] == 0
    a.feed(recorded, 0.1)                               # a valid tag, but for the old cycle
    assert a.queued == 1 and a.stats["forged"] == 1
    a.tick(1.0)
    assert b.feed(a.output(), 1.0) == [b"after the wrap"]


def test_clear_packets_on_a_sealed_link_and_sealed_ones_on_a_clear_link_are_refused():
    clear, (sealed, _) = ArqLink(), sealed_pair()
    clear.send(b"x", 0.0)
    assert sealed.feed(clear.output(), 0.0) == [] and sealed.stats["forged"] == 1
    sealed.send(b"y", 0.0)
    assert ArqLink().feed(sealed.output(), 0.0) == []
    other = ArqLink()
    other.feed(sealed.output() or serial_encode(_HDR.pack(DATA | SEALED, 1, 0) + bytes(7)), 0.0)
    assert other.stats["unkeyed"] == 1


def test_the_tag_depends_on_the_key_and_on_the_direction():
    a, b = sealed_pair()
    a.send(b"x", 0.0)
    wire = a.output()
    assert a.feed(wire, 0.0) == [] and a.stats["forged"] == 1         # reflected back to its sender
    stranger = ArqLink(keys=(DOWN_KEY, b"k" * 32))
    assert stranger.feed(wire, 0.0) == [] and stranger.stats["forged"] == 1
    assert b.feed(wire, 0.0) == [b"x"]


# -- the line: a clear channel and a sealed one ---------------------------------


def lines():
    return ArqLine(rto=0.25), ArqLine(rto=0.25)


def test_the_line_carries_clear_and_sealed_payloads_side_by_side():
    a, b = lines()
    a.seal((UP_KEY, DOWN_KEY))
    b.seal((DOWN_KEY, UP_KEY))
    a.send(b"hello", 0.0)
    a.send(b"vote", 0.0, sealed=True)
    got = b.feed_sized(a.output(), 0.0)
    assert [(p, s) for p, _, s in got] == [(b"hello", False), (b"vote", True)]
    a.feed(b.output(), 0.0)
    assert a.idle


def test_a_sealed_packet_before_the_keys_is_dropped_and_arrives_once_they_are_there():
    a, b = lines()
    a.seal((UP_KEY, DOWN_KEY))
    a.send(b"round start", 0.0, sealed=True)
    assert b.feed(a.output(), 0.0) == [] and b.stats["unkeyed"] == 1
    b.seal((DOWN_KEY, UP_KEY))                          # the Welcome arrived meanwhile
    a.tick(0.3)
    assert b.feed(a.output(), 0.3) == [b"round start"]


def test_a_rebooted_peer_gets_a_handshake_through_a_sealed_line():
    a, b = lines()
    a.seal((UP_KEY, DOWN_KEY))
    b.seal((DOWN_KEY, UP_KEY))
    a.send(b"vote", 0.0, sealed=True)
    b.feed(a.output(), 0.0)
    a.feed(b.output(), 0.0)
    reborn = ArqLine(rto=0.25)                          # no keys, fresh numbering
    reborn.send(b"hello", 1.0)
    assert b.feed(reborn.output(), 1.0) == [b"hello"]
    reborn.feed(b.output(), 1.0)
    assert reborn.idle


def test_new_keys_start_a_fresh_sealed_channel_and_the_counts_stay():
    a, b = lines()
    a.seal((UP_KEY, DOWN_KEY))
    b.seal((DOWN_KEY, UP_KEY))
    a.send(b"old session", 0.0, sealed=True)
    b.feed(a.output(), 0.0)
    a.feed(b.output(), 0.0)
    sent = a.stats["data_sent"]
    a.seal((b"U" * 32, b"D" * 32))
    b.seal((b"D" * 32, b"U" * 32))
    a.send(b"new session", 1.0, sealed=True)
    assert b.feed(a.output(), 1.0) == [b"new session"]
    assert a.stats["data_sent"] == sent + 1
    with pytest.raises(ValueError):
        ArqLine().send(b"x", 0.0, sealed=True)


def test_hostile_packets_of_every_shape_never_raise_and_change_nothing_delivered():
    """Between the genuine packets, valid-CRC packets of any kind byte, length,
    epoch and seq (the real epochs and seqs among them) go both ways."""
    rng = random.Random(11)
    a, b = lines()
    a.seal((UP_KEY, DOWN_KEY))
    b.seal((DOWN_KEY, UP_KEY))
    seen = [(1, 0)]                                  # (epoch, seq) read off the line

    def hostile():
        epoch, seq = rng.choice(seen)
        if rng.random() < 0.5:
            epoch, seq = rng.randrange(SEQ_MOD), rng.randrange(SEQ_MOD)
        body = rng.randbytes(rng.choice((0, 1, 5, 6, 7, 40)))
        kind = rng.choice((DATA, ACK, RESET, rng.randrange(128))) | rng.choice((0, SEALED))
        packet = bytes([kind]) + struct.pack(">HH", epoch, (seq + rng.choice((0, 1))) % SEQ_MOD)
        return serial_encode((packet + body)[:rng.choice((1, 4, 5, 200))])

    sent = [b"m%d" % i for i in range(40)]
    todo, got, now = list(sent), [], 0.0
    while len(got) < len(sent) and now < 600:
        now += 0.05
        while todo and a.room(True):
            a.send(todo.pop(0), now, sealed=True)
        for link in (a, b):
            link.tick(now)
        down = a.output()
        seen.extend((e, s) for _, e, s in packets(down))
        got += b.feed(b"".join(hostile() for _ in range(10)) + down, now)
        a.feed(b"".join(hostile() for _ in range(10)) + b.output(), now)
    assert got == sent
    assert a.stats["forged"] > 10 and b.stats["forged"] > 10
